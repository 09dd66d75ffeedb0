"""The bulk fill's window audit (issue 17 point 4): validating a window of hours with one great-expectations run per
suite gives every hour what auditing it alone gives: what publishes, what is quarantined and why, the warning and
blocking lines, and the per-hour records of every expectation.

The hours come from a real bulk fill against the simulator, with faults that make the gate act: an out-of-range
Binance ratio for ETH and a Binance response repeating SOL's rows with another ratio (both quarantined), and OKX
responses repeating BTC's rows exactly (a warning).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import duckdb
import polars as pl
from conftest import SIM_NOW_MS
from positioning.backfill import run_fill
from positioning.ingest.bulk import BulkPlan
from positioning.ingest.http import RetryPolicy
from positioning.ingest.manifests import ManifestStore, latest_tries
from positioning.quality import GxSession, QualityConfig
from positioning.quality.frames import Window, previous_oi
from positioning.quality.gate import audit
from positioning.quality.window import _advance, audit_window
from positioning.sim import VenueSimulator
from positioning.sim.venues.base import Limit
from positioning.warehouse import bulk_stage
from positioning.warehouse.load import interval_start_of
from positioning.warehouse.normalize import bucket_facts, symbol_map
from positioning.warehouse.parse import parse_manifests

FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, seed=1)
RESULT_KEYS = ["suite", "expectation", "level", "success", "element_count", "unexpected_count", "exception"]
RUN_KEYS = ["suite", "success", "blocked", "evaluated_expectations", "failed_expectations", "rows_validated",
            "rows_quarantined"]  # fmt: skip


def staged_hours(data, now):
    """The staged hours of a finished fill, rebuilt as its load builds them."""
    store = ManifestStore(data)
    (state,) = [p for p in store.bulk_dir().glob("fill-*.json")]
    plan = BulkPlan.from_json(__import__("json").loads(state.read_text())["plan"])
    chunks = [c for c in store.chunks(plan.run_id) if c.status == "ok"]
    parsed = parse_manifests(chunks)
    ends_ms = [int(end.timestamp() * 1000) for end in plan.ends]
    facts = bucket_facts(symbol_map([c for c in chunks if c.chunk != "listing"]), parsed, ends_ms)
    rows = bulk_stage.FillRows(facts, parsed.files)
    unavailable = bulk_stage.unavailable_by_end(plan)
    listing = {c.venue: c for c in chunks if c.chunk == "listing"}
    hours = [bulk_stage.stage_interval(plan, end, ms, rows, unavailable[end], listing)
             for end, ms in zip(plan.ends, ends_ms, strict=True)]  # fmt: skip
    return plan, [
        (staged, latest_tries(manifests), end) for (staged, manifests), end in zip(hours, plan.ends, strict=True)
    ]


def test_a_window_audit_gives_every_hour_what_auditing_it_alone_gives(tmp_path):
    from datetime import UTC, datetime

    now = datetime.fromtimestamp(SIM_NOW_MS / 1000, UTC)
    relaxed = {"okx:long-short-account-ratio": Limit(50, 1, "test"), "okx:taker-volume": Limit(50, 1, "test")}
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=relaxed) as sim:
        sim.add_fault("binance", "topLongShortPositionRatio", kind="override", symbol="ETHUSDT",
                      field="longShortRatio", value="250.0")  # fmt: skip
        sim.add_fault(
            "binance",
            "globalLongShortAccountRatio",
            kind="duplicate_rows",
            symbol="SOLUSDT",
            field="longShortRatio",
            value="1.5",
        )  # a repeat that disagrees: quarantined
        sim.add_fault("okx", "long-short-account-ratio", kind="duplicate_rows", symbol="BTC")  # exact: a warning
        result = run_fill(0.25, ["BTC", "ETH", "SOL"], data=tmp_path, base_urls={"binance": sim.base_url,
                          "okx": sim.base_url}, venues=["binance", "okx"], now=now, retry=FAST_RETRY,
                          log=lambda _: None)  # fmt: skip
    assert result["published"] == 6
    plan, hours = staged_hours(tmp_path, now)
    config = dataclasses.replace(QualityConfig(), data_docs=0.0)
    session = GxSession(None)
    tolerance = timedelta(minutes=config.current_value_tolerance_minutes)
    windows = [Window(interval_start_of(m, end), end, tolerance) for _, m, end in hours]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        empty_previous = previous_oi(con, plan.ends[0])  # nothing before the window
    together = audit_window([s for s, _, _ in hours], [m for _, m, _ in hours], windows, plan.run_id,
                            empty_previous, config=config, session=session)  # fmt: skip
    previous = empty_previous
    for (staged, manifests, _end), window, shared in zip(hours, windows, together, strict=True):
        alone = audit(staged, manifests, window, plan.run_id, previous, config=config, session=session)
        if not alone.blocked:
            previous = _advance(previous, alone.publish, staged.ts)
        assert shared.publish.equals(alone.publish)
        assert shared.blocking == alone.blocking and shared.warnings == alone.warnings
        assert shared.quarantined == alone.quarantined
        quarantine_columns = [c for c in alone.quarantine.columns if c != "quarantined_at"]
        assert shared.quarantine.select(quarantine_columns).equals(alone.quarantine.select(quarantine_columns))
        order = ["suite", "expectation"]
        assert (
            shared.expectation_results.select(RESULT_KEYS)
            .sort(order)
            .equals(alone.expectation_results.select(RESULT_KEYS).sort(order))
        )
        assert (
            shared.validation_runs.select(RUN_KEYS)
            .sort("suite")
            .equals(alone.validation_runs.select(RUN_KEYS).sort("suite"))
        )
    # The faults did make the gate act, in every hour whose buckets they touched.
    assert any(r.quarantined for r in together) and any(r.warnings for r in together)
    quarantined = pl.concat([r.quarantine for r in together])
    assert set(quarantined["symbol"]) == {"ETH", "SOL"}
