"""Years of history (issue 17): the bulk fill takes the days before Binance's 30-day REST history from its data
archive, compares the day both have, and records what the archive lacks as a gap.

The simulator's clock is set to 2026-07-27, so a 33-day window starts on 2026-06-24: the archive fills its first
days (across the unannounced 2026-06-25 change of its time labels) and the REST history the last 30 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from positioning.backfill import run_fill
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.sim import VenueSimulator

NOW = datetime(2026, 7, 27, 12, 1, 30, tzinfo=UTC)
DAYS = 33
SYMBOLS = ["BTC", "PEPE", "ETH"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, seed=1)
FAST_ARCHIVE = {"binance_archive": {"archive": RateLimit(500, 1.0, "test")}}
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """One 33-day fill of BTC, PEPE and ETH from Binance, with ETH's archive files missing (S3's 404)."""
    data = tmp_path_factory.mktemp("archive") / "data"
    lines: list[str] = []
    with VenueSimulator(port=0, seed=7, now_ms=int(NOW.timestamp() * 1000)) as sim:
        for endpoint in ("archive_metrics", "archive_checksum"):
            sim.add_fault("binance", endpoint, kind="status", symbol="ETHUSDT", status=404)

        def fill():
            return run_fill(DAYS, SYMBOLS, data=data, base_urls={"binance": sim.base_url, "binance_archive":
                            sim.base_url, "okx": sim.base_url}, venues=["binance", "okx"], now=NOW, retry=FAST_RETRY,
                            limits=FAST_ARCHIVE, log=lines.append)  # fmt: skip

        first = fill()
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            facts = con.execute(
                "SELECT * EXCLUDE (run_id, loaded_at) FROM core.fact_positioning ORDER BY ALL"
            ).fetchall()
        again = fill()  # the same window: every chunk and interval already done
        yield {"data": data, "sim": sim, "first": first, "again": again, "facts_before": facts, "lines": lines}


def query(data, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_hour_of_the_window_has_one_binance_oi_from_the_best_source(filled):
    data, sim, result = filled["data"], filled["sim"], filled["first"]
    assert result["complete"] and result["rate_limited"] == 0
    ends = [datetime.fromisoformat(result["plan"]["first_end"]) + i * HOUR for i in range(DAYS * 24)]
    rows = query(data, "SELECT ts, symbol, value, source, period FROM core.fact_positioning WHERE venue = 'binance' "
                       "AND metric = 'oi_coins'")  # fmt: skip
    by_key = {(ts.replace(tzinfo=UTC), symbol): (value, source, period) for ts, symbol, value, source, period in rows}
    assert len(by_key) == len(rows)  # one fact per interval and symbol: never both sources
    rest_edge = NOW - timedelta(days=30)
    sources = {"archive": 0, "rest": 0}
    for end in ends:
        for symbol in ("BTC", "PEPE"):
            value, source, period = by_key[(end, symbol)]
            sources[source] += 1
            if source == "archive":  # the latest 5-minute bucket ended by the interval end
                bucket, expected_period = end - timedelta(minutes=5), "5m"
                assert end < rest_edge + timedelta(days=1), end
            else:
                bucket, expected_period = end - HOUR, "1h"
                assert end > rest_edge, end
            truth = sim.state.binance_oi_hist(symbol, expected_period, int(bucket.timestamp() * 1000))["coins"]
            assert (value, period) == (pytest.approx(truth, rel=1e-9), expected_period), (end, symbol, source)
    assert sources["archive"] >= 2 * 24 * 3 and sources["rest"] >= 2 * 24 * 29  # both sources really used
    # The archive's taker ratio and three positioning ratios are there too, on the same hours.
    metrics = dict(query(data, "SELECT metric, count(*) FROM core.fact_positioning WHERE source = 'archive' "
                               "AND symbol = 'BTC' GROUP BY metric"))  # fmt: skip
    assert set(metrics) == {"oi_coins", "oi_usd", "ls_top_position", "ls_top_account", "ls_global_account",
                            "taker_buy_sell"} and len(set(metrics.values())) == 1  # fmt: skip


def test_the_overlap_day_agrees_and_a_missing_archive_day_is_a_gap_not_a_failure(filled):
    data, result, lines = filled["data"], filled["first"], filled["lines"]
    assert result["source_disagreements"] == 0
    compared = [line for line in lines if "archive buckets compared" in line]
    assert compared and int(compared[0].split("overlap: ")[1].split()[0]) >= 2 * 2 * 24  # two symbols, OI coins+usd
    # ETH: no archive file (404) -> its old hours are gaps with the reason, its recent ones are REST facts.
    eth = query(data, "SELECT min(ts), count(*) FROM core.fact_positioning WHERE symbol = 'ETH' AND metric = 'oi_usd'")
    assert eth[0][0].replace(tzinfo=UTC) > NOW - timedelta(days=31)
    reasons = query(data, "SELECT DISTINCT reason FROM ops.interval_unavailable WHERE venue = 'binance' "
                          "AND metric = 'oi_usd'")  # fmt: skip
    assert reasons == []  # BTC and PEPE filled every hour: the venue's metric is present, not unavailable
    failures = query(data, "SELECT count(*), min(status) FROM ops.extract_failures WHERE symbol = 'ETH'")
    assert failures[0][0] > 0 and failures[0][1] == 404  # every missing file is on record
    coverage = query(data, "SELECT sum(intervals_from_archive), sum(intervals_from_rest), sum(intervals_missing) "
                           "FROM marts.coverage WHERE venue = 'binance' AND metric = 'oi_usd'")  # fmt: skip
    assert coverage[0][0] > 0 and coverage[0][1] > 0 and coverage[0][2] == 0


def test_the_30_day_windows_are_full_on_the_first_day_after_the_fill(filled):
    data = filled["data"]
    last = query(data, "SELECT max(ts) FROM marts.skew_history")[0][0]
    observations = query(data, "SELECT consensus_obs_30d, consensus_z_30d FROM marts.skew_history "
                               "WHERE ts = ? AND symbol = 'BTC'", [last])  # fmt: skip
    assert observations[0][0] == 30 * 24 + 1 and observations[0][1] is not None


def test_okx_hours_its_1h_history_no_longer_reaches_come_from_its_1d_history(filled):
    data, sim = filled["data"], filled["sim"]
    rows = query(data, "SELECT ts, value, period, source_ts FROM core.fact_positioning WHERE venue = 'okx' "
                       "AND symbol = 'BTC' AND metric = 'ls_account' ORDER BY ts")  # fmt: skip
    assert len(rows) == DAYS * 24  # every hour, from one period or the other, never both
    periods = [period for _, _, period, _ in rows]
    assert periods[0] == "1D" and periods[-1] == "1H" and periods == sorted(periods, key=lambda p: p != "1D")
    for ts, value, period, source_ts in rows[:48]:
        truth = sim.state.ratio("okx", "long-short-account-ratio", "BTC", period, int(source_ts.replace(
            tzinfo=UTC).timestamp() * 1000))["ratio"]  # fmt: skip
        assert value == pytest.approx(truth), ts


def test_a_rerun_of_the_same_window_changes_nothing(filled):
    data, again = filled["data"], filled["again"]
    assert again["published"] == 0 and again["skipped"] == DAYS * 24
    assert again["requests_sent"].get("binance_archive", 0) == 0
    after = query(data, "SELECT * EXCLUDE (run_id, loaded_at) FROM core.fact_positioning ORDER BY ALL")
    assert after == filled["facts_before"]
