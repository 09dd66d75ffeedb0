"""Raw-file compaction into the Parquet archive, retention, and re-parsing from the archive.

Compaction must never lose the ability to re-parse: a load of a compacted run publishes the same facts; running it
again is a no-op; a crash between writing the archive and deleting the raw files is finished by the next run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning import VENUES
from positioning.ingest.compact import compact, retention_days_from_env
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.ingest.raw import RawLander, read_raw
from positioning.sim import Limit, VenueSimulator
from positioning.venues.base import ExtractRequest

RUN_ID = "scheduled__2026-11-20T11"
LATER = INTERVAL_END + timedelta(days=10)  # "now" for compaction: the interval's files are 10 days old


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("compaction") / "source"
    request = ExtractRequest(("BTC", "ETH"), "1h", INTERVAL_END - timedelta(hours=1), INTERVAL_END)
    with VenueSimulator(
        port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits={"bitget:account-long-short": Limit(50, 1, "test")}
    ) as sim:

        async def main():
            await asyncio.gather(
                *(
                    extract_venue(
                        venue,
                        sim.base_url,
                        request,
                        data_dir=data,
                        run_id=RUN_ID,
                        retry=RetryPolicy(seed=1),
                        limits={"account-long-short": RateLimit(50, 1.0)} if venue == "bitget" else None,
                    )
                    for venue in VENUES
                )
            )

        asyncio.run(main())
    return data


@pytest.fixture
def data(extracted, tmp_path) -> Path:
    """A copy with manifests rewritten to point into it (manifests hold absolute raw paths)."""
    copy = tmp_path / "data"
    for source in extracted.rglob("*"):
        target = copy / source.relative_to(extracted)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text(encoding="utf-8")
            target.write_text(text.replace(str(extracted), str(copy)) if "manifests" in source.parts else text)
    return copy


def load(data: Path) -> list[tuple]:
    from positioning.warehouse.load import load_interval

    load_interval(INTERVAL_END, RUN_ID, data=data)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (loaded_at) FROM core.fact_positioning ORDER BY ALL").fetchall()


def raw_files(data: Path) -> list[Path]:
    return sorted(p for p in (data / "raw").rglob("*.json") if not p.name.startswith(".tmp-"))


def archive_parts(data: Path) -> list[Path]:
    return sorted((data / "archive" / "raw").rglob("part-*.parquet"))


def test_compacted_raw_files_reparse_to_identical_facts(data):
    before = load(data)
    originals = {str(p): read_raw(p) for p in raw_files(data)}
    report = compact(data, older_than_days=7, retention_days=400, now=LATER)
    assert report.files_deleted == report.files_archived == len(originals) > 0
    assert raw_files(data) == [] and not list((data / "raw").rglob("date=*")), "compacted partitions are removed"
    parts = archive_parts(data)
    assert parts and all("date=2026-11-20" in str(p) for p in parts)
    assert report.bytes_written < report.bytes_deleted
    # Every manifest path still reads, from the archive, exactly as it was landed.
    for path, original in originals.items():
        archived = read_raw(path)
        assert (archived.meta, archived.body) == (original.meta, original.body)
    assert load(data) == before


def test_compaction_twice_is_a_no_op(data):
    compact(data, older_than_days=7, retention_days=400, now=LATER)
    parts = {p: p.stat().st_mtime_ns for p in archive_parts(data)}
    again = compact(data, older_than_days=7, retention_days=400, now=LATER)
    assert (again.files_deleted, again.parts_written, again.archive_partitions_pruned) == (0, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in archive_parts(data)} == parts


def test_recent_partitions_are_left_alone(data):
    count = len(raw_files(data))
    report = compact(data, older_than_days=7, retention_days=400, now=INTERVAL_END + timedelta(days=3))
    assert report.files_deleted == 0 and len(raw_files(data)) == count and not archive_parts(data)


def test_a_crash_between_archiving_and_deleting_is_finished_by_the_next_run(data, monkeypatch):
    count = len(raw_files(data))
    real_unlink = Path.unlink
    calls = {"n": 0}

    def unlink_then_crash(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the archive part is written and verified; two raw files deleted so far
            raise KeyboardInterrupt("simulated crash")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink_then_crash)
    with pytest.raises(KeyboardInterrupt):
        compact(data, older_than_days=7, retention_days=400, now=LATER)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert 0 < len(raw_files(data)) < count
    parts_after_crash = archive_parts(data)
    report = compact(data, older_than_days=7, retention_days=400, now=LATER)
    assert raw_files(data) == []
    assert report.files_deleted == count - 2
    # The files already archived were deleted without being written again (no duplicate rows, same parts plus
    # the parts of the partitions the crash did not reach).
    assert set(parts_after_crash) <= set(archive_parts(data))
    assert load(data)  # re-parses entirely from the archive


def test_files_landed_later_into_a_compacted_partition_get_their_own_part(data):
    compact(data, older_than_days=7, retention_days=400, now=LATER)
    parts = archive_parts(data)
    lander = RawLander(data / "raw", "binance", INTERVAL_END, "backfill__late")
    late = lander.land("exchangeInfo", {"venue": "binance", "endpoint": "exchangeInfo", "status": 200}, b"{}")
    report = compact(data, older_than_days=7, retention_days=400, now=LATER)
    assert (report.files_archived, report.parts_written) == (1, 1)
    assert len(archive_parts(data)) == len(parts) + 1
    assert read_raw(late).body == "{}" and not late.exists()


def test_stale_temporary_files_of_killed_writers_are_removed(data):
    partition = raw_files(data)[0].parent
    stale, fresh = partition / ".tmp-dead.json", partition / ".tmp-live.json"
    stale.write_text('{"meta": {')
    fresh.write_text('{"meta": {')
    old = time.time() - 2 * 3600  # temporary files age on the real clock
    os.utime(stale, (old, old))
    report = compact(data, older_than_days=7, retention_days=400, now=LATER)
    assert report.temp_files_removed == 1 and not stale.exists() and fresh.exists()
    assert not any(p.name.startswith(".tmp-") for p in archive_parts(data))


def test_retention_prunes_old_archive_partitions(data):
    compact(data, older_than_days=7, retention_days=400, now=LATER)
    path = json.loads(next((data / "manifests").rglob("venue=binance__try=*.json")).read_text())["requests"][0][
        "raw_paths"
    ][0]
    kept = compact(data, older_than_days=7, retention_days=0, now=INTERVAL_END + timedelta(days=5000))
    assert kept.archive_partitions_pruned == 0 and read_raw(path)  # 0 = keep forever
    report = compact(data, older_than_days=7, retention_days=400, now=INTERVAL_END + timedelta(days=401))
    assert report.archive_partitions_pruned > 0 and not archive_parts(data)
    with pytest.raises(FileNotFoundError, match="POSITIONING_RAW_RETENTION_DAYS"):
        read_raw(path)


def test_settings_are_validated(data, monkeypatch):
    monkeypatch.setenv("POSITIONING_RAW_RETENTION_DAYS", "30")
    assert retention_days_from_env() == 30
    monkeypatch.setenv("POSITIONING_RAW_RETENTION_DAYS", "a year")
    with pytest.raises(ValueError, match="POSITIONING_RAW_RETENTION_DAYS"):
        retention_days_from_env()
    monkeypatch.delenv("POSITIONING_RAW_RETENTION_DAYS")
    assert retention_days_from_env() == 400
    with pytest.raises(ValueError, match="outlive"):
        compact(data, older_than_days=30, retention_days=7, now=LATER)
