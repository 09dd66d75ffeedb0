"""Raw files → typed rows: the venue adapters' pure parsers applied to what the manifests point at.

:func:`parse_manifests` reads the final attempt of every successful request; endpoints with a vectorised (polars)
parser are read together in one batch per venue and endpoint, the others file by file with the row parser. The
result, :class:`ParsedRows`, keeps the rows by type and, per raw file, what the quality gate's raw-row checks need.
:func:`rows_frame` turns rows of one type into a polars frame (the form both paths share).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import polars as pl

from positioning import registry
from positioning.ingest.manifests import Manifest
from positioning.ingest.raw import read_raw, read_raw_bodies
from positioning.rows import LongShortRatio, OpenInterestHistory, ParseError


@dataclass
class ParsedRows:
    rows: dict[type, list[Any]] = field(default_factory=lambda: defaultdict(list))
    errors: list[dict[str, Any]] = field(default_factory=list)
    # (venue, endpoint, raw_path, rows) per parsed raw file, before any de-duplication: the quality gate checks
    # that no response carries the same key twice (the facts keep only the latest row per key, so a venue that
    # repeats its rows would otherwise pass unnoticed).
    # A vectorised batch (see ``parse_manifests``) is one entry ``(venue, "", "", lazy_frame)`` whose frame gives
    # the raw-row keys: columns venue, endpoint, raw_path, row_type, row_key (``quality.raw_row_frame``).
    files: list[tuple[str, str, str, list[Any] | pl.LazyFrame]] = field(default_factory=list)
    # Rows parsed by the venues' frame parsers, already in ``_frame`` form: read them with :meth:`frame`.
    frames: dict[type, list[pl.DataFrame]] = field(default_factory=lambda: defaultdict(list))

    def frame(self, row_type: type) -> pl.DataFrame:
        """Every row of ``row_type``, from the row parsers and the frame parsers, as one ``_frame`` frame."""
        rows = rows_frame(self.rows[row_type], row_type)
        frames = [f for f in self.frames.get(row_type, []) if f.height]
        return pl.concat([rows, *frames], how="vertical") if frames else rows

    def count(self) -> int:
        """How many rows were parsed (both paths)."""
        return sum(len(rows) for rows in self.rows.values()) + sum(
            f.height for frames in self.frames.values() for f in frames
        )


def _received_ms(meta: dict[str, Any]) -> int:
    """When the venue answered: its HTTP ``Date`` header (the venue's clock), else our receive time."""
    date = meta.get("headers", {}).get("date")
    if date:
        try:
            return int(parsedate_to_datetime(date).timestamp() * 1000)
        except (TypeError, ValueError):
            pass
    return int(datetime.fromisoformat(meta["received_at"]).timestamp() * 1000)


# Row type and raw-row key columns (``quality.frames.RAW_KEY_FIELDS`` the type has) of the frame parsers' output.
_FRAME_KEYS = {"metric": (LongShortRatio, ("key", "metric", "period", "ts_ms"))}
_FRAME_KEYS_DEFAULT = (OpenInterestHistory, ("key", "period", "ts_ms"))


def parse_manifests(
    manifests: list[Manifest], parsed: ParsedRows | None = None, *, vectorised: bool = True
) -> ParsedRows:
    """Parse the final attempt of every successful request in the manifests.

    ``vectorised``: endpoints with a frame parser (the adapter's ``frame_parsers``) are read together
    (:func:`positioning.ingest.raw.read_raw_bodies`) and parsed in one polars batch per venue and endpoint, however many
    manifests they come from; a page the frame parser does not take is parsed by the row parser, so the result is
    the same as parsing every file with the row parser.
    """
    parsed = parsed if parsed is not None else ParsedRows()
    batched: dict[tuple[str, str], list[str]] = defaultdict(list)  # (venue, endpoint) -> raw paths
    for manifest in manifests:
        venue = manifest.venue
        spec = registry.get(venue)
        frame_parsers = spec.frame_parsers() if vectorised else {}
        for request in manifest.requests:
            if not request.ok or not request.raw_paths:
                continue
            path = request.raw_paths[-1]
            if request.endpoint in frame_parsers:
                batched[(venue, request.endpoint)].append(str(path))
                continue
            _parse_file(parsed, venue, spec.parsers, path)
    # One endpoint at a time, so that only its files' bodies are in memory at once.
    for (venue, endpoint), paths in batched.items():
        spec = registry.get(venue)
        pages = read_raw_bodies(paths).with_columns(raw_path=pl.Series(paths, dtype=pl.String))
        landed_as = pages["endpoint"] == endpoint
        if not landed_as.all():  # a file whose meta names another endpoint: parse it the way its meta says
            for path in pages.filter(~landed_as)["raw_path"]:
                _parse_file(parsed, venue, spec.parsers, path)
            pages = pages.filter(landed_as)
        _parse_frames(parsed, venue, spec, endpoint, pages)
        del pages
    return parsed


def _parse_file(parsed: ParsedRows, venue: str, parsers: Any, path: str) -> None:
    raw = read_raw(path)
    endpoint = raw.meta["endpoint"]
    parser = parsers.get(endpoint)
    if parser is not None:
        params = {**raw.meta.get("params", {}), "_received_at_ms": _received_ms(raw.meta)}
        _parse_rows(parsed, venue, parser, raw, str(path), endpoint, params)


def _parse_rows(
    parsed: ParsedRows, venue: str, parser: Any, raw: Any, path: str, endpoint: str, params: dict[str, Any]
) -> None:
    try:
        rows = parser(raw.json(), params)
    except (ParseError, ValueError, TypeError, KeyError) as exc:
        parsed.errors.append({"venue": venue, "endpoint": endpoint, "raw_path": path, "error": str(exc)})
        return
    parsed.files.append((venue, endpoint, path, rows))
    for row in rows:
        parsed.rows[type(row)].append(row)


def _parse_frames(parsed: ParsedRows, venue: str, spec: Any, endpoint: str, pages: pl.DataFrame) -> None:
    """``pages``: one endpoint's raw files (``raw_path``, ``body``, ``period``) through its frame parser."""
    frame, rejected = spec.frame_parsers()[endpoint](pages.select("body", "period"))
    row_type, key_fields = _FRAME_KEYS_DEFAULT
    for column, (candidate, fields) in _FRAME_KEYS.items():
        if column in frame.columns:
            row_type, key_fields = candidate, fields
    if frame.height:
        # The gate's raw-row keys, lazily: built (a string per row) only if the gate asks for them.
        values = [name for name in frame.columns if name != "_page"]
        keys = frame.lazy().select(
            venue=pl.lit(venue, pl.String),
            endpoint=pl.lit(endpoint, pl.String),
            raw_path=pl.lit(pages["raw_path"]).gather(pl.col("_page")),
            row_type=pl.lit(row_type.__name__, pl.String),
            row_key=pl.concat_str([pl.col(name).cast(pl.String) for name in key_fields], separator="|"),
            row_subject=pl.col("key").cast(pl.String),
            row_metric=pl.col("metric").cast(pl.String) if "metric" in frame.columns else pl.lit(None, pl.String),
            row_values=pl.struct(values).hash(),
        )
        parsed.files.append((venue, "", "", keys))
        parsed.frames[row_type].append(frame.drop("_page"))
    for path in pages["raw_path"].gather(rejected):
        _parse_file(parsed, venue, spec.parsers, path)


def rows_frame(rows: list[Any], row_type: type) -> pl.DataFrame:
    columns = [f.name for f in dataclasses.fields(row_type)]
    schema = {name: (pl.Int64 if name.endswith("_ms") else pl.Float64) for name in columns}
    for name in ("venue", "instrument", "symbol", "key", "metric", "period", "quote", "status"):
        if name in schema:
            schema[name] = pl.String
    if "tradable" in schema:
        schema["tradable"] = pl.Boolean
    # Column by column with plain attribute reads: dataclasses.astuple deep-copies every row, and a row-oriented
    # frame infers types row by row; both dominated the load of a long history.
    return pl.DataFrame({name: [getattr(row, name) for row in rows] for name in columns}, schema=schema, strict=False)
