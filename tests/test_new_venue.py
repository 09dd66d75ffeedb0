"""A fifth venue is one adapter plus one simulator module: both are defined in this file, registered, and the venue
flows through extract → raw → load → audit → marts into its own ``fifth_oi_usd`` snapshot column, with no other
file of the repository edited (the DAG, params, normaliser, gate and SQL models take it from the registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb
import pytest
from conftest import INTERVAL_END, REPO, SIM_NOW_MS
from positioning import pipeline, registry
from positioning.ingest.endpoints import Endpoint, EnvelopeError
from positioning.ingest.limits import RateLimit
from positioning.rows import Instrument, MarkPrice, OpenInterest, ParseError, field, number
from positioning.sim import VenueSimulator
from positioning.sim import venues as sim_venues
from positioning.sim.venues.base import Instrument as SimInstrument
from positioning.sim.venues.base import Limit, Reply, SimVenue
from positioning.venues.base import (
    Column,
    ExtractRequest,
    Listing,
    VenueExtract,
    VenueSpec,
    fetch_listing,
    snapshot_only,
)

if TYPE_CHECKING:
    from positioning.ingest.http import VenueClient


VENUE = "fifth"
LISTED = ("BTC", "ETH")
SYMBOLS = ["BTC", "ETH", "SOL"]  # SOL: not listed on the fifth venue, skipped there

# ------------------------------------------------------------------------------------------- the adapter

MARKETS = Endpoint("markets", "/fifth/api/markets", {"public": 1})


def envelope_error(payload: Any) -> EnvelopeError | None:
    if isinstance(payload, dict) and "error" in payload:
        return EnvelopeError(str(payload["error"]), str(payload.get("message", "")), retryable=False)
    return None


def _markets(payload: Any) -> list[dict]:
    rows = field(payload, "data", VENUE, MARKETS.name)
    if not isinstance(rows, list):
        raise ParseError(VENUE, MARKETS.name, "expected a list", field="data")
    return rows


def parse_listing(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    return [
        Instrument(VENUE, str(row["symbol"]).removesuffix("-PERP"), str(row["symbol"]), None, "USD", "live", True)
        for row in _markets(payload)
    ]


def parse_markets(payload: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    rows: list[Any] = parse_listing(payload)
    for row in _markets(payload):
        ts = int(field(row, "time", VENUE, MARKETS.name))
        coins = number(field(row, "openInterest", VENUE, MARKETS.name), VENUE, MARKETS.name, "openInterest")
        mark = number(field(row, "markPrice", VENUE, MARKETS.name), VENUE, MARKETS.name, "markPrice")
        rows += [OpenInterest(VENUE, row["symbol"], ts, coins=coins), MarkPrice(VENUE, row["symbol"], ts, mark)]
    return rows


def past_unavailable() -> dict[str, str]:
    return snapshot_only(VENUE, MARKETS.name, ("oi_coins", "oi_usd", "mark_price"))


async def plan(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """One call: the markets page lists the instruments and carries their OI and mark."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if not result.fatal and request.is_past:
        result.history, result.unavailable = True, past_unavailable()
    return result


LISTING = Listing(MARKETS, None, parse_listing)
SPEC = VenueSpec(
    name=VENUE,
    title="Fifth",
    param="includeFifth",
    param_help="A test-only venue: OI in coins and the mark price of every market in one call.",
    public_url="https://api.fifth.invalid",
    limits={"public": RateLimit(2, 1.0, "test venue: 2 requests / s")},
    envelope_error=envelope_error,
    listing=LISTING,
    parsers={MARKETS.name: parse_markets},
    plan=plan,
    past_unavailable=past_unavailable,
    columns=(Column("fifth_oi_coins", "oi_coins", kind="value"),),
    colour="#111827",
)

# ------------------------------------------------------------------------------------ the simulated venue


class FifthVenue(SimVenue):
    name = VENUE
    routes: ClassVar[dict[str, str]] = {"/fifth/api/markets": "markets"}
    limits: ClassVar[dict[str, Limit]] = {"public": Limit(2, 1, "test venue: 2 requests / s")}

    def instruments(self, state):
        return [SimInstrument(self.name, f"{base}-PERP", base) for base in LISTED]

    def do_markets(self, request, state):
        return Reply(
            200,
            {
                "data": [
                    {
                        "symbol": i.instrument_id,
                        "time": request.now_ms,
                        "openInterest": state.open_interest_strings(self.name, i.instrument_id, request.now_ms)[
                            "coins"
                        ],
                        "markPrice": state.mark_price_string(self.name, i.instrument_id, request.now_ms),
                    }
                    for i in state.instruments(self.name)
                ]
            },
        )


@pytest.fixture
def fifth(monkeypatch):
    registry.register(SPEC)
    sim_venues.register(FifthVenue())
    try:
        with VenueSimulator(
            host="127.0.0.1", port=0, seed=7, now_ms=SIM_NOW_MS, bitget_account_ratio="quotient"
        ) as simulator:
            for venue in registry.names():
                monkeypatch.setenv(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}", simulator.base_url)
            yield simulator
    finally:
        sim_venues.unregister(VENUE)
        registry.unregister(VENUE)
    # Unregistered, nothing of it remains for the next test.
    assert registry.names() == ("binance", "okx", "bitget", "strike", "bybit", "hyperliquid") == sim_venues.names()


def test_a_registered_venue_flows_from_extract_to_its_snapshot_column(fifth, data_dir):
    start = INTERVAL_END.replace(hour=INTERVAL_END.hour - 1)
    run_id = "manual__fifth"
    planned = pipeline.plan({"symbols": SYMBOLS, "includeStrike": False})
    assert planned[VENUE] == [{"venue": VENUE, "symbols": SYMBOLS, "ls_period": "1h", "include_oi_change_24h": False}]
    for venue in registry.names():
        for spec in planned[venue]:
            pipeline.extract(spec, start, INTERVAL_END, run_id, 1, data=data_dir)
    summary = pipeline.load(INTERVAL_END, run_id, data=data_dir)
    pipeline.build_marts(INTERVAL_END, "oi_desc", data=data_dir)

    # extract → raw: its one response landed under its own partition, and its manifest says what was skipped
    raw = list((data_dir / "raw" / f"venue={VENUE}" / "endpoint=markets").rglob("*.json"))
    assert len(raw) == 1
    assert summary["venues"][VENUE] == "ok" and summary["quality"]["ok"]
    state = fifth.state
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        # load → audit: its facts were validated with the others and published
        facts = dict(
            con.execute(
                "SELECT symbol || ':' || metric, value FROM core.fact_positioning WHERE venue = ?", [VENUE]
            ).fetchall()
        )
        audited = con.execute("SELECT count(*) FROM quality.validation_runs WHERE run_id = ?", [run_id]).fetchone()[0]
        skipped = con.execute("SELECT symbol, reason FROM ops.skipped_symbols WHERE venue = ?", [VENUE]).fetchall()
        cursor = con.execute("SELECT * FROM marts.symbol_snapshot ORDER BY symbol")
        names = [d[0] for d in cursor.description]
        snapshot = {row[names.index("symbol")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        by_venue = con.execute(
            "SELECT symbol, oi_usd FROM marts.imbalance_by_venue WHERE venue = ? ORDER BY symbol", [VENUE]
        ).fetchall()
        oi_change_columns = [d[0] for d in con.execute("DESCRIBE marts.oi_change").fetchall()]
    assert audited > 0
    assert skipped == [("SOL", f"not listed on {VENUE}")]
    for symbol in LISTED:
        instrument = f"{symbol}-PERP"
        coins = state.open_interest(VENUE, instrument, SIM_NOW_MS)["coins"]
        mark = state.mark_price(VENUE, instrument, SIM_NOW_MS)
        assert facts[f"{symbol}:oi_coins"] == pytest.approx(coins)
        assert facts[f"{symbol}:mark_price"] == pytest.approx(mark)
        # marts: its own column, counted in the total and in venues_with_oi
        row = snapshot[symbol]
        assert row["fifth_oi_usd"] == pytest.approx(coins * mark, rel=1e-12)
        built_in = ("binance", "okx", "bitget", "bybit", "hyperliquid")  # Strike is left out by the plan above
        others = [row[f"{venue}_oi_usd"] for venue in built_in if row[f"{venue}_oi_usd"]]
        assert row["total_oi_usd"] == pytest.approx(sum(others) + coins * mark, rel=1e-12)
        assert row["venues_with_oi"] == len(others) + 1
    assert snapshot["SOL"]["fifth_oi_usd"] is None
    assert [s for s, _ in by_venue] == list(LISTED)
    assert {"fifth_oi_usd", "fifth_oi_share_pct", "fifth_oi_change_24h_pct"} <= set(oi_change_columns)
    assert snapshot["BTC"]["fifth_oi_coins"] == pytest.approx(facts["BTC:oi_coins"])  # a declared value column


def test_a_registered_venue_gets_its_param_and_dag_tasks(fifth, airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from positioning.params import RunConfig, dag_params

    assert dag_params()["includeFifth"].value is True
    assert VENUE not in RunConfig.from_params({"includeFifth": False}).venues
    bag = DagBag(dag_folder=str(REPO / "dags" / "positioning_dag.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("positioning")
    assert f"{VENUE}.extract" in dag.task_ids and f"{VENUE}.request" in dag.task_ids
    assert dag.get_task(f"{VENUE}.extract").pool == f"positioning_{VENUE}"
