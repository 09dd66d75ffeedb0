"""Raw landing: every HTTP response (good or bad) written verbatim with its request metadata.

Layout (the design's)::

    $POSITIONING_DATA_DIR/raw/venue=<v>/endpoint=<e>/date=<YYYY-MM-DD>/<interval_end>__<run_id>__<n>.json

Each file is one JSON object ``{"meta": {...}, "body": "<response text, verbatim>"}``. The body is kept as a
string so malformed JSON and HTML error pages are landed exactly as received. Files are written to a temporary
name and hard-linked into place, so a reader never sees half a file and an existing file is never replaced.

Raw files older than a few days can be compacted (:mod:`positioning.ingest.compact`) into a partitioned Parquet archive::

    $POSITIONING_DATA_DIR/archive/raw/venue=<v>/endpoint=<e>/date=<YYYY-MM-DD>/part-<hash>.parquet

(one row per raw file: ``path`` relative to the data directory, ``meta`` as JSON text, ``body`` verbatim).
:func:`read_raw` falls back to the archive when a file is gone, so manifests and re-parsing keep working.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(value: str, *, max_len: int = 120) -> str:
    """A path component that cannot escape its directory (no separators, no dots-only names)."""
    cleaned = _UNSAFE.sub("_", value).strip("._")[:max_len]
    return cleaned or "_"


def interval_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class RawResponse:
    path: Path
    meta: dict[str, Any]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    def content(self) -> bytes:
        """The body as the venue sent it: bytes of a file landed base64 (``meta.body_encoding``), else UTF-8."""
        if self.meta.get("body_encoding") == "base64":
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")


def read_raw(path: str | Path) -> RawResponse:
    """A landed raw file; from the Parquet archive when compaction has moved it there."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        archived = read_archived(path)
        if archived is None:
            raise FileNotFoundError(
                f"raw file {path} is neither on disk nor in the raw archive (pruned by POSITIONING_RAW_RETENTION_DAYS?)"
            ) from None
        return archived
    return RawResponse(Path(path), record["meta"], record["body"])


def read_raw_bodies(paths: list[str]) -> pl.DataFrame:
    """Many landed raw files at once: columns ``endpoint``, ``period`` (from the request's params) and ``body``,
    one row per path in order.

    A raw file is one line of JSON, so the files together are NDJSON that polars reads without a Python object
    per file. A file that is missing (archived) or a set that polars cannot read falls back to :func:`read_raw`.
    """
    import polars as pl

    schema = {"meta": pl.Struct({"endpoint": pl.String, "params": pl.Struct({"period": pl.String})}), "body": pl.String}
    buffer = io.BytesIO()  # written file by file, read by polars in place: no second copy of every file
    one_line = True
    for path in paths:
        try:
            with open(path, "rb") as handle:
                content = handle.read().rstrip(b"\n")
        except FileNotFoundError:
            archived = read_raw(path)  # from the archive, or the same clear error
            content = json.dumps({"meta": archived.meta, "body": archived.body}).encode("utf-8")
        one_line = one_line and b"\n" not in content
        buffer.write(content)
        buffer.write(b"\n")
    frame = None
    if paths and one_line:
        try:
            buffer.seek(0)
            frame = pl.read_ndjson(buffer, schema=schema)
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
            frame = None
    buffer.close()
    if frame is None or frame.height != len(paths):
        records = [read_raw(path) for path in paths]
        return pl.DataFrame(
            {
                "endpoint": [r.meta.get("endpoint") for r in records],
                "period": [str((r.meta.get("params") or {}).get("period", "")) for r in records],
                "body": [r.body for r in records],
            },
            schema={"endpoint": pl.String, "period": pl.String, "body": pl.String},
        )
    return frame.select(
        endpoint=pl.col("meta").struct.field("endpoint"),
        period=pl.col("meta").struct.field("params").struct.field("period").fill_null(""),
        body=pl.col("body"),
    )


# ---------------------------------------------------------------------------------------------- the archive

ARCHIVE_ROOT = PurePosixPath("archive") / "raw"  # under the data directory
ARCHIVE_COLUMNS = ("path", "meta", "body")


@dataclass(frozen=True)
class RawLocation:
    """Where a landed raw file belongs: its data directory, its path relative to it, its archive partition."""

    data_dir: Path
    relative: str  # raw/venue=<v>/endpoint=<e>/date=<d>/<name>.json, POSIX separators
    archive_partition: Path


def locate_raw(path: str | Path) -> RawLocation | None:
    """Split a raw file path (``.../raw/venue=v/endpoint=e/date=d/name.json``); None if it is not one."""
    parts = Path(path).parts
    if len(parts) < 5:
        return None
    raw, venue, endpoint, date, _name = parts[-5:]
    if raw != "raw" or not (
        venue.startswith("venue=") and endpoint.startswith("endpoint=") and date.startswith("date=")
    ):
        return None
    data = Path(*parts[:-5]) if len(parts) > 5 else Path(".")
    return RawLocation(data, "/".join(parts[-5:]), data.joinpath(*ARCHIVE_ROOT.parts, venue, endpoint, date))


def archive_parts(partition: Path) -> list[Path]:
    return sorted(p for p in partition.glob("part-*.parquet")) if partition.is_dir() else []


def archived_records(partition: Path) -> dict[str, tuple[str, str]]:
    """relative path -> (meta JSON text, body) of every file archived in one archive partition."""
    signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in archive_parts(partition))
    return _archived_records(str(partition), signature)


@functools.lru_cache(maxsize=16)
def _archived_records(partition: str, signature: tuple) -> dict[str, tuple[str, str]]:
    # A re-parse reads many files of one partition: each partition is read once (the signature changes when a
    # part is added or pruned, which invalidates the entry).
    import pyarrow.parquet as pq

    records: dict[str, tuple[str, str]] = {}
    for name, _mtime, _size in signature:
        table = pq.read_table(Path(partition) / name, columns=list(ARCHIVE_COLUMNS))
        for path, meta, body in zip(*(table.column(c).to_pylist() for c in ARCHIVE_COLUMNS), strict=True):
            records[path] = (meta, body)
    return records


def read_archived(path: str | Path) -> RawResponse | None:
    """The raw file at ``path`` from the archive, or None if it is not archived."""
    location = locate_raw(path)
    if location is None:
        return None
    found = archived_records(location.archive_partition).get(location.relative)
    if found is None:
        return None
    meta, body = found
    return RawResponse(Path(path), json.loads(meta), body)


class RawLander:
    """Writes one venue's responses for one run of one interval. Safe from several threads: a file is written under
    a temporary name and linked to a numbered name that no other write can take."""

    def __init__(self, root: Path, venue: str, interval_end: datetime, run_id: str, attempt: int = 1):
        self.root = Path(root)
        self.venue = safe_component(venue)
        self.interval_end = interval_end.astimezone(UTC)
        self.run_id = run_id
        self._prefix = f"{interval_stamp(self.interval_end)}__{safe_component(run_id)}__{attempt:02d}-"
        self._counter = itertools.count(1)

    def land(self, endpoint: str, meta: dict[str, Any], body: bytes) -> Path:
        directory = (
            self.root
            / f"venue={self.venue}"
            / f"endpoint={safe_component(endpoint)}"
            / f"date={self.interval_end:%Y-%m-%d}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        text = body.decode("utf-8", errors="replace")
        record = {"meta": {**meta, "run_id": self.run_id, "interval_end": self.interval_end.isoformat()}, "body": text}
        payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            while True:
                target = directory / f"{self._prefix}{next(self._counter):05d}.json"
                try:
                    os.link(temp_name, target)  # fails if target exists: nothing is ever overwritten
                    return target
                except FileExistsError:
                    continue
        finally:
            os.unlink(temp_name)
