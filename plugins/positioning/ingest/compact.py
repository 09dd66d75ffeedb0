"""Raw-file compaction and retention: old raw files into a partitioned Parquet archive, old archives pruned.

Raw files are the system of record (a parser bug is fixed by re-parsing them), but one JSON file per response
adds up: about 300 files an hour for 50 symbols. :func:`compact` moves every raw partition older than
``older_than_days`` (by its ``date=`` partition, the interval's date) into

    archive/raw/venue=<v>/endpoint=<e>/date=<YYYY-MM-DD>/part-<hash>.parquet

one row per raw file (``path`` relative to the data directory, ``meta`` JSON text, ``body`` verbatim), and
:func:`positioning.ingest.raw.read_raw` reads archived files transparently, so manifests keep pointing at the old paths
and re-parsing an archived interval gives the same facts. Then archive partitions older than the retention
(``POSITIONING_RAW_RETENTION_DAYS``, default 400; 0 keeps them forever) are deleted.

Crash safety and idempotency: a part is written under a temporary name, fsynced and renamed; it is read back and
compared with the source files (count, paths, content) before any source file is deleted; a part's name is a
hash of its content, so a re-run after a crash writes the same part (or finds it) and only then deletes; files
already in the archive are deleted without being written again. Only the files listed at the start are deleted,
so a backfill landing new files into an old partition meanwhile loses nothing (they are compacted next time).
Temporary files left by a killed writer (``.tmp-*``, older than an hour) are removed with their partition.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from positioning.ingest.raw import ARCHIVE_COLUMNS, ARCHIVE_ROOT, archived_records, locate_raw

RETENTION_ENV = "POSITIONING_RAW_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 400
DEFAULT_OLDER_THAN_DAYS = 7
STALE_TEMP_SECONDS = 3600.0  # a writer's temporary file lives milliseconds; one this old is a crash's leftover


@dataclass
class CompactionReport:
    partitions_compacted: int = 0
    files_archived: int = 0  # written into a new part
    files_deleted: int = 0  # removed from raw/ (archived now or before)
    bytes_deleted: int = 0
    parts_written: int = 0
    bytes_written: int = 0
    archive_partitions_pruned: int = 0
    temp_files_removed: int = 0
    unreadable_files: list[str] | None = None  # left in place: not valid raw records

    def as_dict(self) -> dict:
        return asdict(self)


def retention_days_from_env() -> int:
    value = os.environ.get(RETENTION_ENV, "")
    try:
        days = int(value) if value.strip() else DEFAULT_RETENTION_DAYS
    except ValueError:
        raise ValueError(f"{RETENTION_ENV}={value!r} must be a whole number of days (0 = keep forever)") from None
    if days < 0:
        raise ValueError(f"{RETENTION_ENV}={value!r} must be >= 0 (0 = keep forever)")
    return days


def _partition_date(directory: Path) -> date | None:
    try:
        return date.fromisoformat(directory.name.removeprefix("date="))
    except ValueError:
        return None


def _fsync_dir(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def _load_record(path: Path) -> tuple[str, str] | None:
    """(meta JSON text, body) of a raw file, or None if it is not a complete raw record."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        meta, body = record["meta"], record["body"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or not isinstance(body, str):
        return None
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":"), sort_keys=True), body


def _write_part(partition: Path, rows: list[tuple[str, str, str]]) -> tuple[Path, int]:
    """Write one Parquet part atomically (temp + fsync + rename); its name is a hash of its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for row in rows:
        for cell in row:
            digest.update(cell.encode("utf-8"))
            digest.update(b"\0")
    target = partition / f"part-{digest.hexdigest()[:20]}.parquet"
    if target.exists():  # a previous run wrote exactly this part and crashed before deleting the sources
        return target, 0
    partition.mkdir(parents=True, exist_ok=True)
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(ARCHIVE_COLUMNS)})
    temp = partition / f".tmp-{target.name}"
    pq.write_table(table, temp, compression="zstd")
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    _fsync_dir(partition)
    return target, target.stat().st_size


def _verify_part(part: Path, rows: list[tuple[str, str, str]]) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(part, columns=list(ARCHIVE_COLUMNS))
    stored = set(zip(*(table.column(c).to_pylist() for c in ARCHIVE_COLUMNS), strict=True))
    if table.num_rows != len(rows) or stored != set(rows):
        raise RuntimeError(f"archive part {part} does not hold the {len(rows)} raw files just written: not deleting")


def _compact_partition(data: Path, partition: Path, report: CompactionReport, now: float) -> None:
    for temp in partition.glob(".tmp-*"):
        if now - temp.stat().st_mtime > STALE_TEMP_SECONDS:
            temp.unlink(missing_ok=True)
            report.temp_files_removed += 1
    files = sorted(p for p in partition.glob("*.json") if not p.name.startswith(".tmp-"))
    if not files:
        _remove_empty_parents(partition, data / "raw")
        return
    location = locate_raw(files[0])
    assert location is not None, files[0]
    archive = location.archive_partition
    already = archived_records(archive)
    new_rows: list[tuple[str, str, str]] = []
    deletable: list[Path] = []
    for path in files:
        record = _load_record(path)
        if record is None:  # never produced by the lander; kept for a human to look at
            report.unreadable_files = [*(report.unreadable_files or []), str(path)]
            continue
        relative = locate_raw(path).relative  # type: ignore[union-attr]
        if relative in already:
            if tuple(already[relative]) != record:
                raise RuntimeError(f"{path} differs from its archived copy in {archive}: not deleting")
        else:
            new_rows.append((relative, *record))
        deletable.append(path)
    if new_rows:
        part, written = _write_part(archive, new_rows)
        if written:
            _verify_part(part, new_rows)
        else:
            _verify_contains(archive, new_rows)
        report.parts_written += 1 if written else 0
        report.bytes_written += written
        report.files_archived += len(new_rows)
    for path in deletable:
        size = path.stat().st_size
        path.unlink()
        report.files_deleted += 1
        report.bytes_deleted += size
    report.partitions_compacted += 1
    _remove_empty_parents(partition, data / "raw")


def _verify_contains(archive: Path, rows: list[tuple[str, str, str]]) -> None:
    stored = archived_records(archive)
    missing = [relative for relative, meta, body in rows if stored.get(relative) != (meta, body)]
    if missing:
        raise RuntimeError(f"archive {archive} lacks {len(missing)} raw files, e.g. {missing[0]}: not deleting")


def prune_archive(data: Path, retention_days: int, today: date, report: CompactionReport | None = None) -> int:
    """Delete archive partitions whose date is older than ``retention_days`` (0 = keep forever)."""
    report = report or CompactionReport()
    if retention_days == 0:
        return 0
    root = data.joinpath(*ARCHIVE_ROOT.parts)
    edge = today - timedelta(days=retention_days)
    pruned = 0
    for partition in sorted(root.glob("venue=*/endpoint=*/date=*")):
        day = _partition_date(partition)
        if day is not None and day < edge:
            shutil.rmtree(partition)
            _remove_empty_parents(partition.parent, root)
            pruned += 1
    report.archive_partitions_pruned += pruned
    return pruned


def compact(
    data_dir: Path | str | None = None,
    older_than_days: int = DEFAULT_OLDER_THAN_DAYS,
    retention_days: int | None = None,
    *,
    now: datetime | None = None,
    log: Callable[[str], None] | None = None,
) -> CompactionReport:
    """Archive raw partitions dated before ``today - older_than_days``, then prune archive partitions dated before
    ``today - retention_days`` (default: ``POSITIONING_RAW_RETENTION_DAYS``, 400; 0 = keep forever)."""
    from positioning.config import data_dir as configured_data_dir

    data = Path(data_dir) if data_dir is not None else configured_data_dir()
    retention = retention_days_from_env() if retention_days is None else int(retention_days)
    if older_than_days < 0 or retention < 0:
        raise ValueError("older_than_days and retention_days must be >= 0")
    if retention and older_than_days > retention:
        raise ValueError(
            f"older_than_days={older_than_days} > retention_days={retention}: raw files would outlive the archive"
        )
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    cutoff = today - timedelta(days=older_than_days)
    report = CompactionReport()
    wall = time.time()
    for partition in sorted((data / "raw").glob("venue=*/endpoint=*/date=*")):
        day = _partition_date(partition)
        if day is not None and day < cutoff and partition.is_dir():
            _compact_partition(data, partition, report, wall)
    prune_archive(data, retention, today, report)
    if log:
        log(
            f"compact {data}: {report.files_deleted} raw files from {report.partitions_compacted} partitions "
            f"({report.bytes_deleted / 1e6:.1f} MB) into {report.parts_written} Parquet parts "
            f"({report.bytes_written / 1e6:.1f} MB); {report.archive_partitions_pruned} archive partitions pruned "
            f"(retention {retention or 'forever'} days)"
        )
    return report
