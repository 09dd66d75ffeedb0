"""The Binance public data archive (venues-more.md §3), served by the Binance simulated venue under its real paths.

``/data/futures/um/daily/metrics/<SYMBOL>/<SYMBOL>-metrics-<YYYY-MM-DD>.zip`` holds one CSV (header row, 288
five-minute rows) whose values are the REST history's for the same buckets (``openInterestHist`` and the three
ratio endpoints and ``takerlongshortRatio`` at ``5m``), so a fill that overlaps both sources can compare them; ``….zip.CHECKSUM`` holds
``<sha256>  <file name>``. Labels follow the archive's history: files up to 2026-06-24 label each period's end
(``00:05:00`` … ``00:00:00`` of the next day), later files its start. A day is published once it has ended plus
:data:`PUBLISH_DELAY`; an unknown symbol, a day before :data:`FIRST_DAY` or not yet published is S3's 404. The
archive documents no rate limit and the simulator enforces none. Zips are byte-for-byte deterministic (fixed
entry dates), so checksums are stable.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from positioning.sim.common import DAY_MS, HOUR_MS, fmt
from positioning.sim.venues.base import Reply, Request

if TYPE_CHECKING:
    from positioning.sim.state import SimState
    from positioning.sim.venues.binance import Binance

METRICS, CHECKSUM = "archive_metrics", "archive_checksum"
ENDPOINTS = frozenset({METRICS, CHECKSUM})
PATH = re.compile(r"^/data/futures/um/daily/metrics/([A-Z0-9]+)/\1-metrics-(\d{4}-\d{2}-\d{2})\.zip(\.CHECKSUM)?$")
FIRST_DAY = date(2021, 12, 1)  # §3.1 "metrics start 2021-12-01"
END_LABELLED_UNTIL = date(2026, 6, 24)  # §3.1 the labelling change of 2026-06-25
PUBLISH_DELAY_MS = 6 * HOUR_MS  # §3.0 "1-2 days" is unconfirmed; the simulator publishes 6 h after the day
STEP_MS = 300_000
HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"
)
RATIO_ENDPOINTS = ("topLongShortAccountRatio", "topLongShortPositionRatio", "globalLongShortAccountRatio")
NO_SUCH_KEY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not '
    "exist.</Message><Key>{key}</Key></Error>"
)


def route(path: str) -> tuple[str, str] | None:
    """(endpoint, instrument) of an archive path, else None."""
    match = PATH.match(path)
    if match is None:
        return None
    return (CHECKSUM if match.group(3) else METRICS), match.group(1)


def _day(request: Request) -> date:
    match = PATH.match(request.path)
    assert match is not None  # routed here only on a match
    return date.fromisoformat(match.group(2))


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def metrics_csv(venue: Binance, state: SimState, instrument: str, day: date) -> str:
    """The CSV of one day: the REST history's 5-minute buckets, labelled the way the archive did that day."""
    shift = STEP_MS if day <= END_LABELLED_UNTIL else 0
    lines = [HEADER]
    start = _epoch_ms(day)
    for bucket in range(start, start + DAY_MS, STEP_MS):
        oi = venue.oi_hist_strings(state, instrument, "5m", bucket)
        account, position, global_ = (
            state.ratio_strings(venue.name, endpoint, instrument, "5m", bucket)["ratio"] for endpoint in RATIO_ENDPOINTS
        )
        label = datetime.fromtimestamp((bucket + shift) / 1000, UTC)
        buy, sell = state.taker_volumes(venue.name, instrument, "5m", bucket)
        taker = fmt(buy / sell, 4)  # takerlongshortRatio's buySellRatio at 5m
        lines.append(f"{label:%Y-%m-%d %H:%M:%S},{instrument},{oi['coins']},{oi['usd']},{account},{position},"
                     f"{global_},{taker}")  # fmt: skip
    return "\n".join(lines) + "\n"


def metrics_zip(venue: Binance, state: SimState, instrument: str, day: date) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo(f"{instrument}-metrics-{day:%Y-%m-%d}.csv", date_time=(day.year, day.month, day.day,
                                                                                      0, 0, 0))  # fmt: skip
        entry.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(entry, metrics_csv(venue, state, instrument, day))
    return buffer.getvalue()


def respond(venue: Binance, request: Request, state: SimState) -> Reply:
    """A metrics zip or its checksum, or S3's 404."""
    day = _day(request)
    instrument = state.instrument(venue.name, request.path_symbol or "")
    published = _epoch_ms(day) + DAY_MS + PUBLISH_DELAY_MS <= request.now_ms
    if instrument is None or instrument.instrument_id != request.path_symbol or day < FIRST_DAY or not published:
        key = request.path.lstrip("/")
        return Reply(404, text=NO_SUCH_KEY.format(key=key), content_type="application/xml")
    content = metrics_zip(venue, state, instrument.instrument_id, day)
    headers = {
        "Last-Modified": datetime.fromtimestamp(_epoch_ms(day + timedelta(days=1)) / 1000 + 3600, UTC).strftime(
            "%a, %d %b %Y %H:%M:%S GMT"
        ),
        "ETag": f'"{hashlib.md5(content).hexdigest()}"',  # S3: the MD5 of a single-part upload
    }
    if request.endpoint == CHECKSUM:
        name = f"{instrument.instrument_id}-metrics-{day:%Y-%m-%d}.zip"
        text = f"{hashlib.sha256(content).hexdigest()}  {name}\n"
        return Reply(200, text=text, headers=headers, content_type="application/octet-stream")
    return Reply(200, content=content, headers=headers, content_type="application/zip")
