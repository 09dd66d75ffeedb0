"""The HTML dashboard (positioning.dashboard): rendered from the Parquet mart exports, checked against them, regenerated
by every DAG run, and screenshotted in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Screenshots land in ``$POSITIONING_ARTIFACTS/screenshots`` (default ``artifacts/screenshots`` in the repository).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import INTERVAL_END, REPO
from positioning import dashboard, warehouse
from positioning.warehouse import marts
from test_marts import build_warehouse, sim_facts

CHROMIUM = Path(os.environ.get("POSITIONING_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("POSITIONING_ARTIFACTS", REPO / "artifacts")) / "screenshots"
SYMBOLS = ["BTC", "ETH", "SOL", "HYPE", "PEPE", "ORDI"]  # HYPE: no OKX; ORDI: no Bitget; Strike: BTC, ETH, SOL, HYPE
HISTORY_START = datetime(2026, 11, 17, 0, 0)
HISTORY_HOURS = 72  # enough for 30-day percentiles (24 observations) over the heat map's 48 columns, and signals
VENUES = list(dashboard.venue_colours())


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """Mart exports of three days of hourly simulator history for six symbols (no Airflow needed)."""
    data = tmp_path_factory.mktemp("dashboard") / "data"
    build_warehouse(data / "warehouse.duckdb", sim_facts(SYMBOLS, HISTORY_START, HISTORY_HOURS))
    with warehouse.reader(data / "warehouse.duckdb") as con:
        marts.export_marts(con, data / "exports")
    return data / "exports"


def attributes(page: str, css_class: str) -> list[dict[str, str]]:
    """The attributes of every ``<rect class="css_class" ...>`` in the page."""
    tags = re.findall(rf'<rect class="{css_class}"([^>]*)>', page)
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in tags]


def test_dashboard_shows_oi_by_venue_the_skew_heat_map_and_signals_from_the_exports(exports):
    page = dashboard.write_dashboard(exports).read_text(encoding="utf-8")
    oi = pl.read_parquet(exports / "marts" / "oi_change.parquet")
    latest = oi.filter(pl.col("ts") == pl.col("ts").max())

    # Stacked bars: one segment per venue with OI, each the exported value, for every symbol (6 < TOP_SYMBOLS).
    segments = attributes(page, "oi-seg")
    expected = {
        (row["symbol"], venue): row[f"{venue}_oi_usd"]
        for row in latest.iter_rows(named=True)
        for venue in VENUES
        if row[f"{venue}_oi_usd"]
    }
    assert {(s["data-symbol"], s["data-venue"]) for s in segments} == set(expected)
    for segment in segments:
        assert float(segment["data-usd"]) == pytest.approx(
            expected[segment["data-symbol"], segment["data-venue"]], abs=1
        )
    bar_lengths = {symbol: sum(float(s["width"]) for s in segments if s["data-symbol"] == symbol) for symbol in SYMBOLS}
    totals = dict(zip(latest["symbol"], latest["total_oi_usd"], strict=True))
    for symbol, length in bar_lengths.items():  # one scale for all bars: length ∝ total OI
        assert length / max(bar_lengths.values()) == pytest.approx(totals[symbol] / max(totals.values()), abs=1e-3)
    # Every venue with OI in the exports appears for some symbol. The synthetic history (test_marts.sim_facts) holds
    # the four original venues; the newer ones have their columns, empty here.
    with_oi = {venue for venue in VENUES if latest[f"{venue}_oi_usd"].is_not_null().any()}
    assert with_oi >= {"binance", "okx", "bitget", "strike"}
    assert {s["data-venue"] for s in segments} == with_oi

    # Heat map: symbol × the latest 48 intervals, each cell coloured by its exported consensus_pct_30d.
    skew = pl.read_parquet(exports / "marts" / "skew_history.parquet")
    shown = skew.filter(pl.col("ts").is_in(skew["ts"].unique().sort().tail(dashboard.HEATMAP_INTERVALS).implode()))
    pct = {
        (row["symbol"], f"{row['ts']:%Y-%m-%dT%H:%M}"): row["consensus_pct_30d"] for row in shown.iter_rows(named=True)
    }
    cells = attributes(page, "skew-cell")
    assert len(cells) == len(SYMBOLS) * dashboard.HEATMAP_INTERVALS == len(pct)
    for cell in cells:
        value = pct[cell["data-symbol"], cell["data-ts"]]
        assert value is not None  # 72 h of history: every shown interval has its 24 observations
        assert float(cell["data-pct"]) == pytest.approx(value, abs=0.006)
        assert cell["fill"] == dashboard.percentile_colour(value)
    assert len({cell["fill"] for cell in cells}) > 10  # a real spread of colours, not one flat block

    # Signals: the newest firing rules first, as many as the table holds.
    signals = pl.read_parquet(exports / "marts" / "positioning_signals.parquet").filter(pl.col("signal_count") > 0)
    assert signals.height > 0, "three days of simulator history fire signals (tests/test_marts.py checks the rules)"
    rows = re.findall(r'<tr class="signal" data-symbol="([^"]+)"><td>([^<]+)</td>', page)
    assert len(rows) == min(signals.height, dashboard.SIGNAL_ROWS)
    assert rows[0][1] == f"{signals['ts'].max():%Y-%m-%d %H:%M}"
    assert [ts for _, ts in rows] == sorted((ts for _, ts in rows), reverse=True)

    # Self-contained: nothing fetched from anywhere (the machines that open it may be offline).
    assert not re.search(r"<script|<link|src=|https?://", page)
    assert f"Data as of {latest['ts'][0]:%Y-%m-%d %H:%M} UTC" in page


def test_dashboard_is_deterministic_and_replaced_atomically(exports, tmp_path):
    first = dashboard.write_dashboard(exports, tmp_path / "a.html").read_bytes()
    second = dashboard.write_dashboard(exports, tmp_path / "a.html").read_bytes()
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]  # no temp file left behind


def test_dashboard_before_any_run_and_the_module_entry_point(tmp_path, capsys):
    empty = tmp_path / "exports"
    assert dashboard.main(["--exports", str(empty)]) == 1
    assert "run the DAG first" in capsys.readouterr().err
    (empty / "marts").mkdir(parents=True)
    assert dashboard.main(["--exports", str(empty)]) == 0
    page = (empty / "dashboard" / "index.html").read_text(encoding="utf-8")
    assert "No open interest exported yet" in page and "No signal has fired" in page


def test_every_dag_run_regenerates_the_dashboard(positioning_dag, sim, data_dir):
    """A fresh warehouse after one run: bars for both symbols; the heat map has cells, hatched (no history yet)."""
    run = positioning_dag.test(logical_date=INTERVAL_END, run_conf={"symbols": ["BTC", "ETH"], "lsPeriod": "1h"})
    assert run.state == "success"
    page = (data_dir / "exports" / "dashboard" / "index.html").read_text(encoding="utf-8")
    assert {s["data-symbol"] for s in attributes(page, "oi-seg")} == {"BTC", "ETH"}
    cells = attributes(page, "skew-cell")
    assert len(cells) == 2 and all(cell["fill"] == dashboard.NO_PERCENTILE_FILL for cell in cells)
    assert "0 of 2 cells have a percentile" in page and "backfill" in page
    assert f"Data as of {INTERVAL_END:%Y-%m-%d %H:%M} UTC" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")
def test_dashboard_renders_in_headless_chromium(exports):
    from playwright.sync_api import sync_playwright

    path = dashboard.write_dashboard(exports)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(path.as_uri())
            page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)
            # Drawn with a size, not merely present in the DOM.
            sizes = page.evaluate(
                """() => Object.fromEntries(['rect.oi-seg', 'rect.skew-cell', '#signals-table tbody tr'].map(
                       selector => [selector, [...document.querySelectorAll(selector)].filter(element => {
                           const box = element.getBoundingClientRect();
                           return box.width > 0 && box.height > 0;
                       }).length]))"""
            )
            headings = page.locator("section h2").all_inner_texts()
        finally:
            browser.close()
    print(f"dashboard screenshot: {SCREENSHOTS / 'dashboard.png'}; drawn elements {sizes}")
    assert sizes["rect.oi-seg"] >= len(SYMBOLS)
    assert sizes["rect.skew-cell"] == len(SYMBOLS) * dashboard.HEATMAP_INTERVALS
    assert sizes["#signals-table tbody tr"] > 0
    assert [h.split(":")[0] for h in headings] == ["Open interest by venue", "Skew heat map", "Latest signals"]
    assert requested == [path.as_uri()]  # the page loaded nothing else
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 10_000
