"""The Binance public data archive (venues-more.md §3): daily USD-M ``metrics`` files, their checksums, and the
pure parser from a zip's bytes to the same rows the REST history gives (``/futures/data/*``, 30 days only).

A file is ``data/futures/um/daily/metrics/<SYMBOL>/<SYMBOL>-metrics-<YYYY-MM-DD>.zip`` (one CSV inside, header
row present in every known file, tolerated when absent) with ``<file>.zip.CHECKSUM`` beside it
(``<sha256 hex>  <file name>``; a few published checksums are wrong, so a mismatch is reported, never loaded).
Columns, with their misleading names (§3.1): ``sum_open_interest`` OI in coins, ``sum_open_interest_value`` in
USD, ``sum_toptrader_long_short_ratio`` the top-trader *position* ratio, ``count_toptrader_long_short_ratio`` the
top-trader *account* ratio, ``count_long_short_ratio`` the all-account ratio (no long/short shares anywhere),
``sum_taker_long_short_vol_ratio`` the taker buy/sell volume ratio (``takerlongshortRatio``'s ``buySellRatio``).

Labels (§3.1, unannounced change of 2026-06-25): a file's ``create_time`` labelled the *end* of each 5-minute period
(``00:05:00`` … ``00:00:00`` of the next day) and labels its *start* since (``00:00:00`` … ``23:55:00``), the REST
convention. Rows are stamped with the period start: a file whose first label is ``00:05:00`` (or, without that
evidence, a file dated before the change) has 5 minutes taken off every label, so the changeover files, which
share the label 2026-06-25 00:00, no longer share a period; nothing else is shifted. Off-grid labels are snapped down to the 5-minute
grid; empty cells are missing values; a date-only ``create_time`` (the one-row-per-day files of January 2023) is a
``1d`` bucket.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from positioning.ingest.endpoints import Endpoint, EnvelopeError, FetchResult
from positioning.ingest.limits import RateLimit
from positioning.rows import ParseError

if TYPE_CHECKING:
    from positioning.ingest.http import VenueClient

VENUE = "binance"  # the archive's rows are Binance USD-M's figures, the same metrics as its REST history
ENDPOINT = "archive_metrics"
PUBLIC_URL = "https://data.binance.vision"
STEP_MS = 300_000
END_LABELLED_UNTIL = date(2026, 6, 24)  # the last file day whose labels were period ends
COLUMNS = (
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
RATIO_COLUMNS = {
    "sum_toptrader_long_short_ratio": "ls_top_position",
    "count_toptrader_long_short_ratio": "ls_top_account",
    "count_long_short_ratio": "ls_global_account",
    "sum_taker_long_short_vol_ratio": "taker_buy_sell",
}
NUMBER_COLUMNS = ("sum_open_interest", "sum_open_interest_value", *RATIO_COLUMNS)
_CHECKSUM = re.compile(r"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")

# The archive documents no limit (§3.0: S3 behind CloudFront). Ours, to stay a polite client of a free service:
# at most 20 requests a second and 4 at a time (a year of the top 50, about 32,000 files, takes 27 minutes).
CONNECTION_ID = "positioning_binance_archive"
CONCURRENCY = 4
NOT_LOADED = "recorded, not loaded"  # how a file that failed its checksum twice is marked
LIMITS = {"archive": RateLimit(20, 1.0, "venues-more.md §3.0: none documented; ours: 20 requests / s")}
_FILE = "/data/futures/um/daily/metrics/{instrument}/{instrument}-metrics-{day}.zip"
METRICS = Endpoint(ENDPOINT, _FILE, {"archive": 1}, body="bytes")
CHECKSUM = Endpoint("archive_checksum", _FILE + ".CHECKSUM", {"archive": 1}, body="bytes")


class ChecksumMismatch(ValueError):
    """A downloaded file whose SHA-256 is not the published one (or whose checksum file does not parse)."""


def metrics_path(instrument: str, day: date) -> str:
    """The archive path of one symbol's metrics file for one UTC day."""
    return f"/data/futures/um/daily/metrics/{instrument}/{instrument}-metrics-{day:%Y-%m-%d}.zip"


def checksum_path(instrument: str, day: date) -> str:
    return metrics_path(instrument, day) + ".CHECKSUM"


def verify_checksum(content: bytes, checksum_text: str, file_name: str) -> None:
    """Raise :class:`ChecksumMismatch` unless ``checksum_text`` (``<sha256>  <name>``) matches ``content``."""
    match = _CHECKSUM.match(checksum_text.strip().splitlines()[0] if checksum_text.strip() else "")
    if match is None:
        raise ChecksumMismatch(
            f"{file_name}: the checksum file does not read '<sha256>  <name>': {checksum_text[:80]!r}"
        )
    expected, named = match.group(1).lower(), match.group(2)
    if named != file_name:
        raise ChecksumMismatch(f"{file_name}: the checksum file names {named!r}")
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(f"{file_name}: sha256 {actual} differs from the published {expected}")


def read_csv_text(content: bytes, file_name: str) -> str:
    """The text of the zip's first entry (its name varies); a truncated or non-zip body is a ParseError."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
            if not names:
                raise ParseError(VENUE, ENDPOINT, f"{file_name}: the zip holds no file")
            return archive.read(names[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
        raise ParseError(VENUE, ENDPOINT, f"{file_name}: not a readable zip ({exc})") from None


def parse_metrics(content: bytes, instrument: str, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One metrics zip → (OI history rows, ratio rows), in the columns of ``OpenInterestHistory`` and
    ``LongShortRatio`` (as ``warehouse.parse.rows_frame`` builds them). Pure: bytes in, frames out."""
    file_name = metrics_path(instrument, day).rsplit("/", 1)[-1]
    return parse_metrics_text(read_csv_text(content, file_name), day, file_name)


def parse_metrics_empty() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frames of a file without rows (the schema of :func:`parse_metrics`'s output)."""
    return parse_metrics_text("", date(2000, 1, 1), "empty")


def parse_metrics_text(text: str, day: date, file_name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`parse_metrics` of the CSV text already out of its zip."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("create_time")]
    raw = pl.read_csv(
        io.StringIO("\n".join(lines)),
        has_header=False,
        new_columns=list(COLUMNS),
        schema_overrides=dict.fromkeys(COLUMNS, pl.String),
    ) if lines else pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.String))  # fmt: skip
    if raw.width != len(COLUMNS):
        raise ParseError(VENUE, ENDPOINT, f"{file_name}: expected {len(COLUMNS)} columns, got {raw.width}")
    numbers = {name: pl.col(name).str.strip_chars() for name in NUMBER_COLUMNS}
    frame = raw.with_columns(
        **{name: pl.when(expr != "").then(expr) for name, expr in numbers.items()},  # "" and null: missing
        moment=pl.coalesce(
            pl.col("create_time").str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False),
            pl.col("create_time").str.strptime(pl.Datetime("ms"), "%Y-%m-%d", strict=False),
        ),
        daily=pl.col("create_time").str.strip_chars().str.len_chars() <= 10,
    )
    bad_time = frame.filter(pl.col("moment").is_null())
    if bad_time.height:
        raise ParseError(VENUE, ENDPOINT, f"{file_name}: create_time {bad_time['create_time'][0]!r} is not a time")
    for name in NUMBER_COLUMNS:
        bad = frame.filter(pl.col(name).is_not_null() & pl.col(name).cast(pl.Float64, strict=False).is_null())
        if bad.height:
            raise ParseError(VENUE, ENDPOINT, f"{file_name}: {bad[name][0]!r} is not a number", field=name)
    shift = STEP_MS if _end_labelled(frame, day) else 0
    epoch = pl.col("moment").dt.epoch("ms")
    frame = frame.with_columns(
        period=pl.when("daily").then(pl.lit("1d")).otherwise(pl.lit("5m")),
        ts_ms=pl.when("daily").then(epoch).otherwise((epoch - shift) // STEP_MS * STEP_MS),
        key=pl.col("symbol").str.strip_chars(),
        venue=pl.lit(VENUE),
        **{name: pl.col(name).cast(pl.Float64) for name in NUMBER_COLUMNS},
    )
    oi = frame.filter(pl.col("sum_open_interest").is_not_null() | pl.col("sum_open_interest_value").is_not_null())
    oi = oi.select(
        "venue", "key", "period", "ts_ms", coins="sum_open_interest", usd="sum_open_interest_value",
        contracts=pl.lit(None, pl.Float64),
    )  # fmt: skip
    ratios = pl.concat(
        [
            frame.filter(pl.col(column).is_not_null()).select(
                "venue",
                "key",
                metric=pl.lit(metric),
                period="period",
                ts_ms="ts_ms",
                ratio=column,
                long_share=pl.lit(None, pl.Float64),
                short_share=pl.lit(None, pl.Float64),
            )
            for column, metric in RATIO_COLUMNS.items()
        ]
    )
    return oi, ratios


def _end_labelled(frame: pl.DataFrame, day: date) -> bool:
    """Whether the file labels period ends: its first 5-minute label is 00:05 (the old convention's first row),
    00:00 of its own day says starts; without either, its date decides (see the module docstring)."""
    intraday = frame.filter(~pl.col("daily"))
    if intraday.is_empty():
        return False
    first = intraday["moment"].min()
    if first.date() == day and (first.hour, first.minute) == (0, 5):
        return True
    if first.date() == day and (first.hour, first.minute) == (0, 0):
        return False
    return day <= END_LABELLED_UNTIL


# ----------------------------------------------------------------------------------------------- fetching


def envelope_error(payload: Any) -> EnvelopeError | None:
    """Files have no JSON envelope: the HTTP status says everything (see ``ingest.http``)."""
    return None


async def fetch_day(client: VenueClient, instrument: str, day: date, symbol: str | None = None) -> list[FetchResult]:
    """The checksum and the zip of one symbol's day, the zip verified against the checksum.

    A mismatch is downloaded once more (a truncated transfer), then recorded on the zip's result (``ok`` False,
    not retryable: never loaded). A day the archive does not have is a 404 on both (a gap, the caller's call).
    """
    where = {"instrument": instrument, "day": f"{day:%Y-%m-%d}"}
    checksum = await client.get(CHECKSUM, symbol=symbol, path_params=where)
    content = await client.get(METRICS, symbol=symbol, path_params=where)
    if not (checksum.ok and content.ok):
        return [checksum, content]
    name = metrics_path(instrument, day).rsplit("/", 1)[-1]
    text = checksum.payload.decode("utf-8", "replace")
    for attempt in (1, 2):
        try:
            verify_checksum(content.payload, text, name)
            return [checksum, content]
        except ChecksumMismatch as exc:
            if attempt == 2:
                content.ok, content.retryable = False, False
                content.error = f"{exc} (downloaded twice; {NOT_LOADED})"
                return [checksum, content]
            retry = await client.get(METRICS, symbol=symbol, path_params=where)
            retry.raw_paths = content.raw_paths + retry.raw_paths
            content = retry
            if not content.ok:
                return [checksum, content]
    return [checksum, content]  # pragma: no cover - the loop returns


def days_between(start_ms: int, end_ms: int) -> list[date]:
    """The UTC days that hold the buckets from ``start_ms`` to ``end_ms`` inclusive."""
    first = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    last = datetime.fromtimestamp(end_ms / 1000, UTC).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
