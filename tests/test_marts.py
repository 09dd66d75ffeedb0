"""The SQL marts (include/sql/models) against values computed independently here, from 30 days of hourly history
written straight into core.fact_positioning from the simulator's deterministic state (no DAG runs needed).

Also: each signal firing and not firing at its threshold edges (crafted facts), incremental refresh equal to a
full rebuild after many hourly runs, a re-run and a late-filled gap, the sortBy views, the Parquet exports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from positioning import pipeline, warehouse
from positioning.sim.state import SimState
from positioning.warehouse import marts

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000
START = datetime(2026, 10, 21, 0, 0)  # naive UTC, as the warehouse stores ts
HISTORY_HOURS = 30 * 24 + 1  # 30 days of hourly intervals, both ends included
SYMBOLS = ["BTC", "ETH", "HYPE", "PEPE", "ORDI"]  # HYPE: no OKX; ORDI: no Bitget; BTC, ETH, HYPE on Strike
MIN_OBSERVATIONS = 24  # SignalThresholds.window_min_observations
VENUE_RATIOS = {  # fact metric -> (venue, sim endpoint metric, sim period)
    "binance": [
        ("ls_top_position", "topLongShortPositionRatio", "1h"),
        ("ls_top_account", "topLongShortAccountRatio", "1h"),
        ("ls_global_account", "globalLongShortAccountRatio", "1h"),
    ],
    "okx": [("ls_account", "long-short-account-ratio", "1H")],
    "bitget": [("ls_account", "account-long-short", "1h")],
    "strike": [],
}
TAKER_PERIODS = {"binance": "1h", "okx": "1H"}
FACT_COLUMNS = ["ts", "venue", "symbol", "metric", "period", "value", "unit", "usd_source", "long_share", "short_share"]


# ------------------------------------------------------------------------------------------ building history
def sim_facts(symbols: list[str], start: datetime, hours: int, seed: int = 7) -> pl.DataFrame:
    """core.fact_positioning rows (documented units) for hourly intervals from the simulator's state.

    Like the pipeline: OI and marks at the interval end, ratios of the latest 1h bucket ended by it,
    Strike's ratio = long OI / short OI with its OI row carrying the side shares.
    """
    state = SimState(seed)
    listed = {venue: state.listed(venue) for venue in VENUE_RATIOS}
    rows = []
    for hour in range(hours):
        ts = start + hour * HOUR
        now_ms = int(ts.replace(tzinfo=UTC).timestamp() * 1000)
        for symbol in symbols:
            for venue, ratios in VENUE_RATIOS.items():
                if symbol not in listed[venue]:
                    continue
                oi = state.open_interest(venue, symbol, now_ms)
                if venue == "strike":
                    long_share, short_share = oi["long_usd"] / oi["usd"], oi["short_usd"] / oi["usd"]
                    rows.append((ts, venue, symbol, "oi_usd", "", oi["usd"], "USD", "venue", long_share, short_share))
                    ratio = oi["long_usd"] / oi["short_usd"]
                    rows.append((ts, venue, symbol, "ls_oi", "", ratio, "ratio", None, long_share, short_share))
                else:
                    source = "venue" if venue == "okx" else "mark"
                    rows.append((ts, venue, symbol, "oi_usd", "", oi["usd"], "USD", source, None, None))
                    rows.append((ts, venue, symbol, "oi_coins", "", oi["coins"], "coin", None, None, None))
                mark = state.mark_price(venue, symbol, now_ms)
                rows.append((ts, venue, symbol, "mark_price", "", mark, "USD", None, None, None))
                for metric, endpoint_metric, period in ratios:
                    served = state.ratio(venue, endpoint_metric, symbol, period, now_ms - HOUR_MS)
                    shares = (served["long_share"], served["short_share"])
                    rows.append((ts, venue, symbol, metric, period, served["ratio"], "ratio", None, *shares))
                if venue != "strike":
                    rate, hours = state.funding_rate(venue, symbol, now_ms), state.funding_interval_hours(venue, symbol)
                    rows.append((ts, venue, symbol, "funding_rate", "", rate, "fraction", None, None, None))
                    rows.append((ts, venue, symbol, "funding_interval_hours", "", hours, "hours", None, None, None))
                if venue in TAKER_PERIODS:
                    buy, sell = state.taker_volumes(venue, symbol, TAKER_PERIODS[venue], now_ms - HOUR_MS)
                    row = (ts, venue, symbol, "taker_buy_sell", TAKER_PERIODS[venue], buy / sell, "ratio")
                    rows.append((*row, None, None, None))
    return pl.DataFrame(rows, schema=FACT_COLUMNS, orient="row", infer_schema_length=None)


def write_facts(con: duckdb.DuckDBPyConnection, facts: pl.DataFrame) -> None:
    """Replace the facts' intervals in core.fact_positioning (as the loader does: delete + insert by ts)."""
    con.register("_new_facts", facts)
    try:
        con.execute("DELETE FROM core.fact_positioning WHERE ts IN (SELECT DISTINCT ts FROM _new_facts)")
        con.execute(
            "INSERT INTO core.fact_positioning BY NAME "
            "SELECT *, 'test' AS run_id, TIMESTAMP '2026-01-01' AS loaded_at FROM _new_facts"
        )
    finally:
        con.unregister("_new_facts")


def build_warehouse(path: Path, facts: pl.DataFrame) -> None:
    with warehouse.writer(path) as con:
        write_facts(con, facts)
        con.execute("BEGIN TRANSACTION")
        marts.refresh(con, None)
        con.execute("COMMIT")


def frame(path: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).df()


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A warehouse with 30 days of hourly simulator history for five symbols, marts fully built."""
    path = tmp_path_factory.mktemp("history") / "data" / "warehouse.duckdb"
    facts = sim_facts(SYMBOLS, START, HISTORY_HOURS)
    build_warehouse(path, facts)
    return path, facts.to_pandas()


# ------------------------------------------------------------------------------- independent computations
def wide(facts: pd.DataFrame) -> pd.DataFrame:
    """One row per (ts, symbol) with one column per venue_metric."""
    keyed = facts.assign(column=facts["venue"] + "_" + facts["metric"])
    return keyed.pivot_table(index=["ts", "symbol"], columns="column", values="value", aggfunc="max").reset_index()


RATIO_COLUMNS = [
    "binance_ls_top_position",
    "binance_ls_top_account",
    "binance_ls_global_account",
    "okx_ls_account",
    "bitget_ls_account",
    "strike_ls_oi",
]


def consensus(row: pd.Series) -> float | None:
    ratios = [row[c] for c in RATIO_COLUMNS if c in row and pd.notna(row[c]) and row[c] > 0]
    if not ratios:
        return None
    return ratios[0] if len(ratios) == 1 else math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def rolling_stats(times: np.ndarray, values: np.ndarray, days: int) -> tuple[list, list, list]:
    """Per point: observations, z-score (sample stddev) and percentile over [t - days, t] (both ends included)."""
    counts, zs, pcts = [], [], []
    for index, (moment, value) in enumerate(zip(times, values, strict=True)):
        window = values[(times >= moment - np.timedelta64(days, "D")) & (times <= moment)]
        counts.append(len(window))
        assert window[-1] == value and index >= 0
        if len(window) < MIN_OBSERVATIONS:
            zs.append(None)
            pcts.append(None)
            continue
        spread = window.std(ddof=1)
        zs.append((value - window.mean()) / spread if spread >= 1e-9 else None)
        pcts.append(100 * np.count_nonzero(window <= value) / len(window))
    return counts, zs, pcts


def change(now: float | None, then: float | None) -> float | None:
    if now is None or then is None or pd.isna(now) or pd.isna(then) or then == 0:
        return None
    return 100 * (now - then) / then


def assert_close(actual, expected, where) -> None:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        assert actual is None or (isinstance(actual, float) and math.isnan(actual)), where
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), where


def value_or_none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


# ------------------------------------------------------------------------------------------- the marts
def test_skew_history_rolling_z_scores_and_percentiles_match_an_independent_computation(history):
    path, facts = history
    expected = wide(facts)
    expected["consensus"] = expected.apply(consensus, axis=1)
    actual = frame(path, "SELECT * FROM marts.skew_history ORDER BY symbol, ts")
    assert len(actual) == len(SYMBOLS) * HISTORY_HOURS
    checked_z = 0
    for symbol, rows in expected.sort_values("ts").groupby("symbol"):
        mine = actual[actual["symbol"] == symbol].reset_index(drop=True)
        assert list(mine["ts"]) == list(rows["ts"])
        times, logs = rows["ts"].to_numpy(), np.log(rows["consensus"].to_numpy(dtype=float))
        for days in (7, 30):
            counts, zs, pcts = rolling_stats(times, logs, days)
            assert list(mine[f"consensus_obs_{days}d"]) == counts
            for index in range(len(rows)):
                where = (symbol, rows["ts"].iloc[index], days)
                assert_close(value_or_none(mine[f"consensus_z_{days}d"][index]), zs[index], where)
                assert_close(value_or_none(mine[f"consensus_pct_{days}d"][index]), pcts[index], where)
                checked_z += zs[index] is not None
        for index, row in enumerate(rows.itertuples()):
            got = mine.iloc[index]
            assert got["consensus_ls_ratio"] == pytest.approx(row.consensus, rel=1e-12)
            c = row.consensus
            assert got["consensus_imbalance_pct"] == pytest.approx((c - 1) / (c + 1) * 100, rel=1e-9, abs=1e-9)
            averaged = [
                getattr(row, name)
                for name in ("binance_ls_top_position", "binance_ls_global_account", "okx_ls_account")
                if hasattr(row, name) and pd.notna(getattr(row, name))
            ]
            assert got["ls_metrics_count"] == len(averaged)
            assert got["avg_ls_ratio"] == pytest.approx(sum(averaged) / len(averaged), rel=1e-12)
    assert checked_z > len(SYMBOLS) * (HISTORY_HOURS - 2 * MIN_OBSERVATIONS) * 2
    # Percentiles span their whole range, and the 7-day window forgets what the 30-day one remembers.
    assert actual["consensus_pct_30d"].max() == 100 and actual["consensus_pct_30d"].min() < 5
    assert (actual["consensus_z_7d"] - actual["consensus_z_30d"]).abs().max() > 0.1


def test_skew_history_windows_need_enough_observations(history):
    path, _ = history
    early = frame(path, "SELECT * FROM marts.skew_history WHERE ts < ? ORDER BY ts", [START + 23 * HOUR])
    assert early["consensus_z_7d"].isna().all() and early["consensus_pct_30d"].isna().all()
    first_full = frame(path, "SELECT * FROM marts.skew_history WHERE ts = ?", [START + 23 * HOUR])
    assert (first_full["consensus_obs_7d"] == MIN_OBSERVATIONS).all()
    assert first_full["consensus_pct_7d"].notna().all()


def test_imbalance_by_venue_matches_an_independent_computation(history):
    path, facts = history
    actual = frame(path, "SELECT * FROM marts.imbalance_by_venue ORDER BY ts, symbol, venue")
    per_venue_ratios = {
        "binance": ["ls_top_position", "ls_top_account", "ls_global_account"],
        "okx": ["ls_account"],
        "bitget": ["ls_account"],
        "strike": ["ls_oi"],
    }
    values = facts.set_index(["ts", "symbol", "venue", "metric"])["value"].to_dict()
    oi_sides = facts[facts["metric"] == "oi_usd"].set_index(["ts", "symbol", "venue"])[["value", "long_share"]]
    expected_rows = 0
    latest = START + (HISTORY_HOURS - 1) * HOUR
    for ts in (START + 30 * HOUR, latest):  # two intervals in full; the rest by the cross-venue identities below
        for symbol in SYMBOLS:
            rows = {}
            for venue, metrics in per_venue_ratios.items():
                ratios = [values[(ts, symbol, venue, m)] for m in metrics if (ts, symbol, venue, m) in values]
                if not ratios:
                    continue
                ratio = ratios[0] if len(ratios) == 1 else math.exp(np.mean(np.log(ratios)))
                rows[venue] = (ratio, (ratio - 1) / (ratio + 1) * 100)
            imbalances = [imbalance for _, imbalance in rows.values()]
            got = actual[(actual["ts"] == ts) & (actual["symbol"] == symbol)].set_index("venue")
            assert set(got.index) == set(rows)
            expected_rows += len(rows)
            for venue, (ratio, imbalance) in rows.items():
                assert got.loc[venue, "ls_ratio"] == pytest.approx(ratio, rel=1e-12)
                assert got.loc[venue, "imbalance_pct"] == pytest.approx(imbalance, rel=1e-9, abs=1e-9)
                assert got.loc[venue, "long_share"] == pytest.approx(ratio / (1 + ratio), rel=1e-12)
                assert got.loc[venue, "imbalance_deviation_pct"] == pytest.approx(
                    imbalance - np.mean(imbalances), abs=1e-9
                )
                assert got.loc[venue, "imbalance_dispersion_pct"] == pytest.approx(np.std(imbalances), abs=1e-9)
                assert got.loc[venue, "imbalance_range_pct"] == pytest.approx(
                    max(imbalances) - min(imbalances), abs=1e-9
                )
                assert got.loc[venue, "oi_usd"] == pytest.approx(oi_sides.loc[(ts, symbol, venue), "value"])
            weights = [oi_sides.loc[(ts, symbol, v), "value"] for v in rows]
            assert got["oi_weighted_imbalance_pct"].iloc[0] == pytest.approx(
                np.average(imbalances, weights=weights), abs=1e-9
            )
            if "strike" in rows:
                # Strike is its own venue, its imbalance is its long/short OI split: (long - short) / total x 100.
                total, long_share = oi_sides.loc[(ts, symbol, "strike")]
                strike = got.loc["strike"]
                assert strike["ratio_basis"] == "open_interest"
                assert strike["long_oi_usd"] == pytest.approx(total * long_share, rel=1e-12)
                assert strike["imbalance_pct"] == pytest.approx(
                    (strike["long_oi_usd"] - strike["short_oi_usd"]) / total * 100, rel=1e-9, abs=1e-9
                )
    assert expected_rows == 2 * sum(
        len([v for v in per_venue_ratios if (START, s, v, per_venue_ratios[v][0]) in values]) for s in SYMBOLS
    )
    # Everywhere: the deviations around the cross-venue mean sum to zero.
    sums = actual.groupby(["ts", "symbol"])["imbalance_deviation_pct"].sum()
    assert sums.abs().max() < 1e-9


def test_oi_change_matches_an_independent_computation(history):
    path, facts = history
    oi = facts[facts["metric"] == "oi_usd"].pivot_table(
        index=["symbol", "ts"], columns="venue", values="value", aggfunc="max"
    )
    marks = facts[facts["metric"] == "mark_price"].groupby(["symbol", "ts"])["value"].median()
    actual = frame(path, "SELECT * FROM marts.oi_change ORDER BY symbol, ts").set_index(["symbol", "ts"])
    assert len(actual) == len(SYMBOLS) * HISTORY_HOURS
    venues = ["binance", "okx", "bitget", "strike"]
    for symbol in SYMBOLS:
        series = oi.loc[symbol].reindex(columns=venues)
        totals = series.sum(axis=1, min_count=1)
        counts, _, pcts = rolling_stats(totals.index.to_numpy(), totals.to_numpy(dtype=float), 30)
        for position, ts in enumerate(series.index):
            got = actual.loc[(symbol, ts)]
            where = (symbol, ts)
            now = series.loc[ts]
            assert got["total_oi_usd"] == pytest.approx(totals.loc[ts], rel=1e-12), where
            assert got["mark_price"] == pytest.approx(marks.loc[(symbol, ts)], rel=1e-12), where
            assert got["total_oi_obs_30d"] == counts[position], where
            assert_close(value_or_none(got["total_oi_pct_30d"]), pcts[position], where)
            for venue in venues:
                share = 100 * now[venue] / totals.loc[ts] if pd.notna(now[venue]) else None
                assert_close(value_or_none(got[f"{venue}_oi_share_pct"]), share, (*where, venue))
            for hours in (1, 4, 24):
                earlier = ts - timedelta(hours=hours)
                then = series.loc[earlier] if earlier in series.index else pd.Series(dtype=float)
                for venue in venues:
                    expected = change(now[venue], then.get(venue))
                    assert_close(value_or_none(got[f"{venue}_oi_change_{hours}h_pct"]), expected, (*where, venue))
                both = [v for v in venues if pd.notna(now[v]) and pd.notna(then.get(v))]
                expected_total = change(sum(now[v] for v in both), sum(then[v] for v in both)) if both else None
                assert_close(value_or_none(got[f"total_oi_change_{hours}h_pct"]), expected_total, (*where, hours))
                mark_then = marks.get((symbol, earlier))
                assert_close(
                    value_or_none(got[f"mark_price_change_{hours}h_pct"]),
                    change(marks.loc[(symbol, ts)], mark_then),
                    (*where, "mark", hours),
                )
    assert actual["total_oi_change_24h_pct"].notna().sum() == len(SYMBOLS) * (HISTORY_HOURS - 24)


def test_total_oi_change_is_like_for_like_when_a_venue_is_missing(tmp_path):
    """A venue outage at one end of the window does not read as an OI move."""
    ts = START + 4 * HOUR
    rows = []
    for hour, venues in ((0, {"binance": 100.0, "okx": 50.0}), (4, {"binance": 110.0})):  # okx down at the end
        for venue, value in venues.items():
            rows.append((START + hour * HOUR, venue, "XYZ", "oi_usd", "", value, "USD", "venue", None, None))
    build_warehouse(tmp_path / "w.duckdb", pl.DataFrame(rows, schema=FACT_COLUMNS, orient="row"))
    got = frame(tmp_path / "w.duckdb", "SELECT * FROM marts.oi_change WHERE ts = ?", [ts]).iloc[0]
    assert got["total_oi_change_4h_pct"] == pytest.approx(10.0)  # binance only, at both ends
    assert got["binance_oi_change_4h_pct"] == pytest.approx(10.0)
    assert pd.isna(got["okx_oi_change_4h_pct"]) and got["total_oi_usd"] == 110.0


def evaluate_rules(row: pd.Series) -> dict[str, float | None]:
    """The documented rules (SignalThresholds defaults), evaluated here: signal -> score, or None."""
    z, oi_pct = value_or_none(row["consensus_z_30d"]), value_or_none(row["total_oi_pct_30d"])
    oi_change, price = value_or_none(row["total_oi_change_4h_pct"]), value_or_none(row["mark_price_change_4h_pct"])
    scores: dict[str, float | None] = dict.fromkeys(
        ["CASCADE_DOWN_RISK", "SQUEEZE_RISK", "SHORT_CAPITULATION", "BUILDUP"]
    )
    if z is not None and oi_pct is not None and oi_pct >= 80:
        if z >= 2:
            scores["CASCADE_DOWN_RISK"] = z / 2 * oi_pct / 80
        if z <= -2:
            scores["SQUEEZE_RISK"] = -z / 2 * oi_pct / 80
    if oi_change is not None and price is not None:
        if oi_change <= -2 and price >= 1:
            scores["SHORT_CAPITULATION"] = -oi_change / 2 * price / 1
        if oi_change >= 3 and abs(price) <= 0.5:
            scores["BUILDUP"] = oi_change / 3
    return scores


def check_signal_row(row: pd.Series) -> list[str]:
    scores = evaluate_rules(row)
    fired = [name for name, score in scores.items() if score is not None]
    columns = {
        "CASCADE_DOWN_RISK": "cascade_down_risk",
        "SQUEEZE_RISK": "squeeze_risk",
        "SHORT_CAPITULATION": "short_capitulation",
        "BUILDUP": "buildup",
    }
    for name, column in columns.items():
        assert bool(row[column]) == (scores[name] is not None), (row["symbol"], row["ts"], name)
        assert_close(value_or_none(row[f"{column}_score"]), scores[name], (row["symbol"], row["ts"], name))
    assert list(row["signals"]) == fired and row["signal_count"] == len(fired)
    if fired:
        best = max(fired, key=lambda name: scores[name])
        assert row["top_signal"] == best and row["top_score"] == pytest.approx(scores[best])
    else:
        assert value_or_none(row["top_signal"]) is None and pd.isna(row["top_score"])
    return fired


def test_positioning_signals_follow_the_documented_rules_over_the_history(history):
    path, _ = history
    signals = frame(path, "SELECT * FROM marts.positioning_signals ORDER BY ts, symbol")
    inputs = frame(
        path,
        "SELECT k.ts, k.symbol, k.consensus_z_30d, o.total_oi_pct_30d, o.total_oi_change_4h_pct, "
        "o.mark_price_change_4h_pct FROM marts.skew_history AS k JOIN marts.oi_change AS o USING (ts, symbol) "
        "ORDER BY ts, symbol",
    )
    assert len(signals) == len(inputs) == len(SYMBOLS) * HISTORY_HOURS
    for column in ("consensus_z_30d", "total_oi_pct_30d", "total_oi_change_4h_pct", "mark_price_change_4h_pct"):
        assert signals[column].equals(inputs[column]), column
    fired: set[str] = set()
    for _, row in signals.iterrows():
        fired.update(check_signal_row(row))
    assert fired == {"CASCADE_DOWN_RISK", "SQUEEZE_RISK", "SHORT_CAPITULATION", "BUILDUP"}  # all exercised


# ------------------------------------------------------------------------------ signals at their edges
def z_of_last(logs: np.ndarray) -> float:
    return float((logs[-1] - logs.mean()) / logs.std(ddof=1))


def log_ratio_for_z(base: np.ndarray, target: float) -> float:
    """The last log-ratio that gives the series ``base + [x]`` a z-score of ``target`` (bisection; z rises with x)."""
    low, high = (float(base.mean()), float(base.mean()) + 50) if target > 0 else (float(base.mean()) - 50, 0.0)
    for _ in range(200):
        middle = (low + high) / 2
        if z_of_last(np.append(base, middle)) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def crafted_symbol(
    symbol: str,
    *,
    z: float = 0.0,
    oi_rank: int | None = None,
    oi_4h: tuple[float, float] | None = None,
    price_4h: tuple[float, float] = (100.0, 100.0),
) -> list[tuple]:
    """30 days of hourly facts for one Binance-only symbol whose last interval has the given numbers.

    ``z``: the consensus 30-day z-score of the last interval (history alternates ln ratio +-0.05);
    ``oi_rank``: how many of the 720 earlier totals lie below the last one (its percentile is
    100 x (oi_rank + 1) / 721), else OI is flat except ``oi_4h`` = (4 h earlier, last);
    ``price_4h``: the mark 4 h earlier and at the last interval (100 elsewhere).
    """
    hours = HISTORY_HOURS
    base_logs = np.array([0.05 if hour % 2 else -0.05 for hour in range(hours - 1)])
    logs = np.append(base_logs, log_ratio_for_z(base_logs, z) if z else 0.0)
    oi = np.full(hours, 1e9)
    if oi_rank is not None:
        earlier = 1e9 + 1e6 * np.arange(hours - 1)  # distinct and increasing: 4 h changes stay tiny
        oi = np.append(earlier, (earlier[oi_rank - 1] + earlier[oi_rank]) / 2 if oi_rank else 1e8)
    if oi_4h is not None:
        oi[-5], oi[-1] = oi_4h
    prices = np.full(hours, 100.0)
    prices[-5], prices[-1] = price_4h
    rows = []
    for hour in range(hours):
        ts = START + hour * HOUR
        rows.append((ts, "binance", symbol, "ls_top_position", "1h", math.exp(logs[hour]), "ratio", None, None, None))
        rows.append((ts, "binance", symbol, "oi_usd", "", float(oi[hour]), "USD", "mark", None, None))
        rows.append((ts, "binance", symbol, "mark_price", "", float(prices[hour]), "USD", None, None, None))
    return rows


EDGE_CASES = {
    # symbol: (crafted numbers, the signals that must fire at the last interval)
    "CASC": ({"z": 2.01, "oi_rank": 576}, ["CASCADE_DOWN_RISK"]),  # OI pct 577/721 = 80.03 >= 80
    "CASCZ": ({"z": 1.99, "oi_rank": 576}, []),  # skew just short of extreme
    "CASCOI": ({"z": 2.01, "oi_rank": 575}, []),  # OI pct 576/721 = 79.89 < 80
    "SQZ": ({"z": -2.01, "oi_rank": 700}, ["SQUEEZE_RISK"]),
    "SQZZ": ({"z": -1.99, "oi_rank": 700}, []),
    "SQZOI": ({"z": -2.01, "oi_rank": 500}, []),
    "CAP": ({"oi_4h": (100.0, 98.0), "price_4h": (100.0, 101.0)}, ["SHORT_CAPITULATION"]),  # exactly -2 %, +1 %
    "CAPOI": ({"oi_4h": (100.0, 98.01), "price_4h": (100.0, 101.0)}, []),  # OI fell 1.99 %
    "CAPPX": ({"oi_4h": (100.0, 98.0), "price_4h": (100.0, 100.99)}, []),  # price rose 0.99 %
    "BUILD": ({"oi_4h": (100.0, 103.0), "price_4h": (100.0, 100.5)}, ["BUILDUP"]),  # exactly +3 %, +0.5 %
    "BUILDDN": ({"oi_4h": (100.0, 103.0), "price_4h": (100.0, 99.5)}, ["BUILDUP"]),  # -0.5 % is flat too
    "BUILDOI": ({"oi_4h": (100.0, 102.99), "price_4h": (100.0, 100.0)}, []),
    "BUILDPX": ({"oi_4h": (100.0, 103.0), "price_4h": (100.0, 100.51)}, []),  # price moved 0.51 %
}


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> pd.DataFrame:
    rows = [row for symbol, (numbers, _) in EDGE_CASES.items() for row in crafted_symbol(symbol, **numbers)]
    path = tmp_path_factory.mktemp("edges") / "warehouse.duckdb"
    build_warehouse(path, pl.DataFrame(rows, schema=FACT_COLUMNS, orient="row"))
    last = START + (HISTORY_HOURS - 1) * HOUR
    return frame(path, "SELECT * FROM marts.positioning_signals WHERE ts = ?", [last]).set_index("symbol")


@pytest.mark.parametrize("symbol", list(EDGE_CASES))
def test_each_signal_fires_at_its_threshold_and_not_just_short_of_it(edges, symbol):
    numbers, expected = EDGE_CASES[symbol]
    row = edges.loc[symbol]
    if "z" in numbers:
        assert row["consensus_z_30d"] == pytest.approx(numbers["z"], abs=1e-6)
        assert row["total_oi_pct_30d"] == pytest.approx(100 * (numbers["oi_rank"] + 1) / HISTORY_HOURS)
    else:
        (oi_then, oi_now), (price_then, price_now) = numbers["oi_4h"], numbers["price_4h"]
        assert row["total_oi_change_4h_pct"] == pytest.approx(100 * (oi_now - oi_then) / oi_then)
        assert row["mark_price_change_4h_pct"] == pytest.approx(100 * (price_now - price_then) / price_then)
    row = row.copy()
    row["symbol"] = symbol
    assert check_signal_row(row) == expected
    if symbol in ("CAP", "BUILD"):
        assert row["top_score"] == 1.0  # exactly at the thresholds


def test_signal_thresholds_come_from_settings_and_the_environment(monkeypatch, tmp_path):
    rows = crafted_symbol("CAP", oi_4h=(100.0, 98.0), price_4h=(100.0, 101.0))
    monkeypatch.setenv("POSITIONING_SIGNAL_CAPITULATION_OI_DROP_PCT", "2.5")
    build_warehouse(tmp_path / "w.duckdb", pl.DataFrame(rows, schema=FACT_COLUMNS, orient="row"))
    last = START + (HISTORY_HOURS - 1) * HOUR
    row = frame(tmp_path / "w.duckdb", "SELECT * FROM marts.positioning_signals WHERE ts = ?", [last]).iloc[0]
    assert not row["short_capitulation"]
    monkeypatch.setenv("POSITIONING_SIGNAL_CAPITULATION_OI_DROP_PCT", "-1")
    from positioning.settings import SignalThresholds

    with pytest.raises(ValueError, match="capitulation_oi_drop_pct"):
        SignalThresholds.from_env()


# ------------------------------------------------------------------------- incremental == full rebuild
def dump(path: Path) -> dict[str, list[tuple]]:
    """Every model table, rows sorted by their keys."""
    tables = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for model in marts.load_models():
            keys = [c for c in ("ts", "symbol", "venue") if c in dict(marts.relation_columns(con, model.target))]
            tables[model.target] = con.execute(f"SELECT * FROM {model.target} ORDER BY {', '.join(keys)}").fetchall()
    return tables


def rows_equal(left: tuple, right: tuple) -> bool:
    for a, b in zip(left, right, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            if not (a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)):
                return False
        elif a != b:
            return False
    return True


@pytest.fixture
def hourly_runs(tmp_path) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    path = tmp_path / "incremental.duckdb"
    with warehouse.writer(path) as con:
        yield con, path


def run_interval(con: duckdb.DuckDBPyConnection, facts: pl.DataFrame, ts: datetime) -> dict[str, int]:
    """One DAG run's load + marts for ``ts``: replace its facts, refresh its interval."""
    write_facts(con, facts.filter(pl.col("ts") == ts))
    con.execute("BEGIN TRANSACTION")
    written = marts.refresh(con, [ts.replace(tzinfo=UTC)])
    con.execute("COMMIT")
    return written


def test_incremental_refresh_equals_a_full_rebuild_after_hourly_runs_a_rerun_and_a_late_gap(hourly_runs, tmp_path):
    con, incremental_path = hourly_runs
    symbols = ["BTC", "HYPE", "ORDI"]
    hours = 9 * 24  # beyond the 7-day window, so rows enter and leave it
    facts = sim_facts(symbols, START, hours)
    every_ts = [START + h * HOUR for h in range(hours)]
    # Catch-up: the first 7 days in one refresh of many intervals.
    first = [ts for ts in every_ts if ts < START + timedelta(days=7)]
    write_facts(con, facts.filter(pl.col("ts") < START + timedelta(days=7)))
    con.execute("BEGIN TRANSACTION")
    marts.refresh(con, first)
    con.execute("COMMIT")
    # Then hourly runs, with a 5-hour gap (the runs failed) filled later by a backfill.
    gap = every_ts[7 * 24 + 10 : 7 * 24 + 15]
    for ts in every_ts[len(first) :]:
        if ts not in gap:
            written = run_interval(con, facts, ts)
            if ts > gap[-1]:
                assert written["marts.skew_history"] == len(symbols)  # a live run rewrites its own interval only
    for ts in reversed(gap):  # backfilled newest first, the worst order for windows
        written = run_interval(con, facts, ts)
        later = sum(1 for other in every_ts if ts <= other <= ts + timedelta(days=30))
        assert written["marts.skew_history"] == later * len(symbols)  # and every later interval it feeds
        assert written["marts.symbol_snapshot"] == len(symbols)
    # A re-run of an old interval whose venues answered differently this time.
    rerun = every_ts[3 * 24 + 5]
    corrected = facts.with_columns(
        value=pl.when((pl.col("ts") == rerun) & (pl.col("venue") == "binance"))
        .then(pl.col("value") * 1.07)
        .otherwise(pl.col("value"))
    )
    run_interval(con, corrected, rerun)
    con.execute("CHECKPOINT")

    full_path = tmp_path / "full.duckdb"
    build_warehouse(full_path, corrected)
    con.close()
    incremental, full = dump(incremental_path), dump(full_path)
    assert set(incremental) == set(full)
    for table, rows in full.items():
        assert len(incremental[table]) == len(rows) > 0, table
        mismatched = [(a, b) for a, b in zip(incremental[table], rows, strict=True) if not rows_equal(a, b)]
        assert not mismatched, (table, mismatched[:2])


def test_lookback_scope_rewrites_the_window_after_a_backfill_and_nothing_beyond(tmp_path):
    """The runner's touched set for a 30-day model: the interval and the 30 days after it present in core."""
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        hours = 40 * 24
        con.execute(
            "INSERT INTO core.fact_positioning (ts, venue, symbol, metric, period, value, unit, run_id, loaded_at) "
            "SELECT ?::TIMESTAMP + to_hours(h), 'binance', 'BTC', 'oi_usd', '', 1.0, 'USD', 'r', now()::TIMESTAMP "
            "FROM range(?) AS r(h) WHERE h % 24 <> 7",  # one interval a day is missing
            [START, hours],
        )
        backfilled = START + timedelta(days=3, hours=5)
        marts.request_intervals(con, [backfilled])
        marts.scope_intervals(con, 30 * 24, everything=False)
        touched = [row[0] for row in con.execute("SELECT ts FROM _touched_intervals ORDER BY ts").fetchall()]
        present = [START + h * HOUR for h in range(hours) if h % 24 != 7]
        assert touched == [backfilled] + [ts for ts in present if backfilled < ts <= backfilled + timedelta(days=30)]
        ranges = con.execute("SELECT lo, hi FROM _lookback_ranges").fetchall()
        assert ranges == [(backfilled - timedelta(days=30), touched[-1])]
        marts.scope_intervals(con, 0, everything=False)
        assert con.execute("SELECT ts FROM _touched_intervals").fetchall() == [(backfilled,)]


def test_a_first_full_build_inside_one_transaction_sees_its_own_large_tables(tmp_path):
    """Models larger than a DuckDB row group (122,880 rows), created and filled in the caller's transaction, must
    be readable by the next model in it (an empty CREATE TABLE AS SELECT loses its zone maps in DuckDB 2.0.0)."""
    hours, symbols = 660, 50
    with warehouse.writer(tmp_path / "w.duckdb") as con:
        con.execute(
            "INSERT INTO core.fact_positioning (ts, venue, symbol, metric, period, value, unit, run_id, loaded_at) "
            "SELECT ?::TIMESTAMP + to_hours(h), venue, 'S' || s, 'oi_usd', '', 1e6 + h, 'USD', 'r', now()::TIMESTAMP "
            "FROM range(?) AS hours(h), range(?) AS symbols(s), "
            "(VALUES ('binance'), ('okx'), ('bitget'), ('strike')) AS venues(venue)",
            [START, hours, symbols],
        )
        con.execute("BEGIN TRANSACTION")
        written = marts.refresh(con, None)
        con.execute("COMMIT")
        assert written["stg.venue_interval"] == hours * symbols * 4 > 122_880
        for table in ("intermediate.symbol_interval", "marts.symbol_snapshot", "marts.oi_change"):
            assert written[table] == hours * symbols, table
            assert con.execute(f"SELECT count(*) FROM {table} WHERE ts >= ?", [START]).fetchone()[0] == hours * symbols


# ------------------------------------------------------------------------ views, CLI and the exports
def test_sort_views_and_the_cli_read_the_latest_snapshot(history, monkeypatch, capsys):
    path, _ = history
    latest = START + (HISTORY_HOURS - 1) * HOUR
    for sort_by in marts.SORT_ORDERS:
        view = frame(path, f"SELECT * FROM marts.snapshot_{sort_by}")
        documented = frame(path, marts.snapshot_query(sort_by), [latest])
        assert list(view["sort_rank"]) == list(range(1, len(SYMBOLS) + 1))
        assert list(view["symbol"]) == list(documented["symbol"])
        assert (view["ts"] == latest).all()
    assert list(frame(path, "SELECT symbol FROM marts.snapshot_symbol_asc")["symbol"]) == sorted(SYMBOLS)
    monkeypatch.setenv("POSITIONING_DATA_DIR", str(path.parent))
    from positioning import cli

    assert cli.main(["top", "--sort", "oi_desc", "--limit", "3"]) == 0
    printed = capsys.readouterr().out
    assert "2026-11-20 00:00 UTC" in printed
    assert printed.index("BTC") < printed.index("ETH")  # BTC has the larger OI
    assert len(printed.strip().splitlines()) == 3 + 3  # title, header, rule, three symbols


def test_build_marts_exports_every_mart_to_parquet_atomically(history):
    path, _ = history
    data = path.parent
    latest = START.replace(tzinfo=UTC) + (HISTORY_HOURS - 1) * HOUR
    result = pipeline.build_marts(latest, "oi_desc", data=data)
    directory = data / "exports" / "marts"
    expected = {"symbol_snapshot", "skew_history", "imbalance_by_venue", "oi_change", "positioning_signals",
                "taker_flow", "funding"}  # fmt: skip
    assert set(result["mart_exports"]) == expected
    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{name}.parquet" for name in expected)
    for name in expected:
        with duckdb.connect() as reader:  # no warehouse needed: a BI tool's view of the files
            exported = reader.execute("SELECT count(*) FROM read_parquet(?)", [str(directory / f"{name}.parquet")])
            assert exported.fetchone()[0] == frame(path, f"SELECT count(*) AS n FROM marts.{name}")["n"][0], name
    before = (directory / "skew_history.parquet").stat().st_ino
    pipeline.build_marts(latest, "oi_desc", data=data)
    assert (directory / "skew_history.parquet").stat().st_ino != before  # replaced by rename, never rewritten
