"""The positioning dashboard: one self-contained HTML page, rendered from the Parquet exports of the marts.

``build_marts`` calls :func:`write_dashboard` after every run, so ``$POSITIONING_DATA_DIR/exports/dashboard/index.html``
always shows the latest interval. It reads only ``exports/marts/*.parquet`` (never ``warehouse.duckdb``, so it never
needs or blocks the warehouse's lock) and writes plain HTML with inline SVG and CSS: no JavaScript, no CDN, nothing
fetched, so it opens from disk, offline, and can be mailed or archived as one file. The same exports always give the
same bytes (no wall-clock time is rendered).

Sections:

* **Open interest by venue**: the latest interval's top symbols by total OI, one stacked bar per symbol
  (``marts.oi_change``).
* **Skew heat map**: symbol × interval, coloured by ``consensus_pct_30d`` (``marts.skew_history``): where the
  consensus long/short ratio sits in the symbol's own last 30 days (red = most long-crowded, blue = most
  short-crowded). Cells with too little history for a percentile are grey and hatched.
* **Latest signals**: the firing rules of ``marts.positioning_signals``, newest first, strongest first.

``python -m positioning.dashboard [--exports DIR] [--output FILE]`` renders it by hand.
"""

from __future__ import annotations

import argparse
import html
import itertools
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

log = logging.getLogger("positioning")

TOP_SYMBOLS = 15  # bars and heat-map rows: the largest markets by total OI at the latest interval
HEATMAP_INTERVALS = 48  # heat-map columns: the latest 48 intervals (two days of hourly runs)
SIGNAL_ROWS = 30


def venue_colours() -> dict[str, str]:
    """Each registered venue's colour, in the registry's order (the stacking order of the OI bars)."""
    from positioning import registry

    return {spec.name: spec.colour for spec in registry.specs()}


# consensus_pct_30d 0 → 100: blue (short-crowded for this market) → white → red (long-crowded); ColorBrewer RdBu.
PERCENTILE_STOPS = ((0, "#2166ac"), (25, "#67a9cf"), (50, "#f7f7f7"), (75, "#ef8a62"), (100, "#b2182b"))
NO_PERCENTILE_FILL = "url(#no-percentile)"
MART_FILES = ("oi_change", "skew_history", "positioning_signals")


@dataclass(frozen=True)
class Marts:
    """The exported mart tables the dashboard reads (None when a file does not exist yet)."""

    oi_change: pl.DataFrame | None
    skew_history: pl.DataFrame | None
    positioning_signals: pl.DataFrame | None


def read_marts(exports: Path) -> Marts:
    """Read what the dashboard needs; only the latest intervals of the history tables are loaded."""
    frames: dict[str, pl.DataFrame | None] = {}
    for name in MART_FILES:
        path = exports / "marts" / f"{name}.parquet"
        if not path.exists():
            frames[name] = None
            continue
        scan = pl.scan_parquet(path)
        if name == "skew_history":
            # Whole-history exports grow with time; the heat map needs only its last columns.
            latest = scan.select(pl.col("ts").unique().sort().tail(HEATMAP_INTERVALS)).collect()["ts"]
            scan = scan.filter(pl.col("ts").is_in(latest.implode()))
        elif name == "oi_change":
            scan = scan.filter(pl.col("ts") == pl.col("ts").max())
        elif name == "positioning_signals":
            scan = scan.filter(pl.col("signal_count") > 0)
        frames[name] = scan.collect()
    return Marts(**frames)


# ---------------------------------------------------------------------------------------------- formatting
def usd(value: float | None) -> str:
    if value is None:
        return "–"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"${value / size:,.2f}{suffix}"
    return f"${value:,.0f}"


def number(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def stamp(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


def percentile_colour(pct: float) -> str:
    """Linear interpolation between the ColorBrewer RdBu stops."""
    pct = min(100.0, max(0.0, pct))
    for (low, low_hex), (high, high_hex) in itertools.pairwise(PERCENTILE_STOPS):
        if pct <= high:
            share = (pct - low) / (high - low)
            low_rgb = [int(low_hex[i : i + 2], 16) for i in (1, 3, 5)]
            high_rgb = [int(high_hex[i : i + 2], 16) for i in (1, 3, 5)]
            mixed = [round(a + (b - a) * share) for a, b in zip(low_rgb, high_rgb, strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*mixed)
    return PERCENTILE_STOPS[-1][1]


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# ---------------------------------------------------------------------------------------------- sections
def top_symbols(oi_latest: pl.DataFrame | None) -> list[str]:
    if oi_latest is None or oi_latest.is_empty():
        return []
    ranked = oi_latest.filter(pl.col("total_oi_usd").is_not_null()).sort(
        ["total_oi_usd", "symbol"], descending=[True, False]
    )
    return ranked["symbol"].head(TOP_SYMBOLS).to_list()


def oi_by_venue_svg(oi_latest: pl.DataFrame, symbols: list[str]) -> str:
    """Horizontal stacked bars: one per symbol, one segment per venue, scaled to the largest total."""
    rows = {row["symbol"]: row for row in oi_latest.filter(pl.col("symbol").is_in(symbols)).iter_rows(named=True)}
    label_width, bar_width, row_height, top, axis = 70, 760, 24, 10, 28
    total_label = 110
    width = label_width + bar_width + total_label
    height = top + row_height * len(symbols) + axis
    largest = max((rows[s]["total_oi_usd"] or 0.0) for s in symbols) or 1.0
    parts = [
        f'<svg id="oi-chart" class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="Open interest by venue, top {len(symbols)} symbols">'
    ]
    for tick in range(5):  # vertical grid lines at 0, 25, 50, 75, 100 % of the largest total
        x = label_width + bar_width * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - axis + 4}" class="grid"/>'
            f'<text x="{x:.1f}" y="{height - 8}" class="tick" text-anchor="middle">{usd(largest * tick / 4)}</text>'
        )
    for index, symbol in enumerate(symbols):
        row = rows[symbol]
        y = top + index * row_height
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row_height * 0.68:.1f}" class="label" text-anchor="end">'
            f"{esc(symbol)}</text>"
        )
        x = float(label_width)
        for venue, colour in venue_colours().items():
            value = row.get(f"{venue}_oi_usd")
            if not value:
                continue
            segment = bar_width * value / largest
            share = row.get(f"{venue}_oi_share_pct")
            parts.append(
                f'<rect class="oi-seg" data-symbol="{esc(symbol)}" data-venue="{venue}" data-usd="{value:.0f}" '
                f'x="{x:.2f}" y="{y + 3}" width="{segment:.2f}" height="{row_height - 6}" fill="{colour}">'
                f"<title>{esc(symbol)} {venue}: {usd(value)} ({number(share, '{:.1f}')} % of total)</title></rect>"
            )
            x += segment
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + row_height * 0.68:.1f}" class="value">{usd(row["total_oi_usd"])}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>{venue}</span>'
        for venue, colour in venue_colours().items()
    )
    return f'<div class="legend">{legend}</div>' + "".join(parts)


def skew_heatmap_svg(skew: pl.DataFrame, symbols: list[str]) -> tuple[str, int, int]:
    """Symbol × interval cells coloured by consensus_pct_30d; returns (svg, cells, cells with a percentile)."""
    intervals = skew["ts"].unique().sort().tail(HEATMAP_INTERVALS).to_list()
    present = set(skew["symbol"].unique().to_list())
    rows = [symbol for symbol in symbols if symbol in present]
    values = {
        (row["symbol"], row["ts"]): row for row in skew.filter(pl.col("symbol").is_in(rows)).iter_rows(named=True)
    }
    label_width, top, axis = 70, 10, 54
    cell_width = max(8.0, min(40.0, 860 / max(1, len(intervals))))
    cell_height = 20
    width = label_width + cell_width * len(intervals) + 10
    height = top + cell_height * len(rows) + axis
    parts = [
        f'<svg id="skew-heatmap" class="chart" viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" '
        f'height="{height}" role="img" aria-label="Consensus long/short percentile by symbol and interval">',
        '<defs><pattern id="no-percentile" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e5e7eb"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#c4c8cf" stroke-width="2"/></pattern></defs>',
    ]
    cells = with_percentile = 0
    for row_index, symbol in enumerate(rows):
        y = top + row_index * cell_height
        parts.append(
            f'<text x="{label_width - 8}" y="{y + cell_height * 0.7:.1f}" class="label" text-anchor="end">'
            f"{esc(symbol)}</text>"
        )
        for column, ts in enumerate(intervals):
            cell = values.get((symbol, ts))
            if cell is None:
                continue
            pct = cell["consensus_pct_30d"]
            fill = percentile_colour(pct) if pct is not None else NO_PERCENTILE_FILL
            with_percentile += pct is not None
            cells += 1
            detail = (
                f"{esc(symbol)} {stamp(ts)} UTC: consensus L/S {number(cell['consensus_ls_ratio'], '{:.3f}')}, "
                + (
                    f"30-day percentile {pct:.0f}, z {number(cell['consensus_z_30d'])}"
                    if pct is not None
                    else f"no percentile yet ({cell['consensus_obs_30d'] or 0} observations in 30 days)"
                )
            )
            parts.append(
                f'<rect class="skew-cell" data-symbol="{esc(symbol)}" data-ts="{ts:%Y-%m-%dT%H:%M}" '
                f'data-pct="{"" if pct is None else f"{pct:.2f}"}" x="{label_width + column * cell_width:.2f}" '
                f'y="{y}" width="{cell_width - 1:.2f}" height="{cell_height - 1}" fill="{fill}">'
                f"<title>{detail}</title></rect>"
            )
    # Time labels: about eight across the axis, rotated so that "MM-DD HH:MM" fits under narrow cells.
    every = max(1, len(intervals) // 8)
    for column, ts in enumerate(intervals):
        if column % every == 0 or column == len(intervals) - 1:
            x = label_width + column * cell_width + cell_width / 2
            y = top + len(rows) * cell_height + 10
            parts.append(
                f'<text x="{x:.1f}" y="{y}" class="tick" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {y})">{ts:%m-%d %H:%M}</text>'
            )
    parts.append("</svg>")
    scale = "".join(
        f'<span class="step" style="background:{percentile_colour(p)}" title="percentile {p}"></span>'
        for p in range(0, 101, 10)
    )
    legend = (
        f'<div class="legend"><span class="key">0 = most short-crowded in 30 days</span>{scale}'
        '<span class="key">100 = most long-crowded</span>'
        '<span class="key"><span class="swatch hatched"></span>not enough history yet</span></div>'
    )
    return legend + "".join(parts), cells, with_percentile


def signals_table(signals: pl.DataFrame) -> tuple[str, int]:
    latest = signals.sort(["ts", "top_score", "symbol"], descending=[True, True, False]).head(SIGNAL_ROWS)
    header = (
        "<tr><th>interval end (UTC)</th><th>symbol</th><th>signals</th><th>score</th><th>consensus L/S</th>"
        "<th>z 30d</th><th>OI pct 30d</th><th>OI Δ4h %</th><th>price Δ4h %</th><th>total OI</th></tr>"
    )
    body = []
    for row in latest.iter_rows(named=True):
        body.append(
            f'<tr class="signal" data-symbol="{esc(row["symbol"])}">'
            f"<td>{stamp(row['ts'])}</td><td>{esc(row['symbol'])}</td>"
            f"<td>{esc(', '.join(row['signals'] or []))}</td><td>{number(row['top_score'])}</td>"
            f"<td>{number(row['consensus_ls_ratio'], '{:.3f}')}</td><td>{number(row['consensus_z_30d'])}</td>"
            f"<td>{number(row['total_oi_pct_30d'], '{:.0f}')}</td>"
            f"<td>{number(row['total_oi_change_4h_pct'], '{:+.2f}')}</td>"
            f"<td>{number(row['mark_price_change_4h_pct'], '{:+.2f}')}</td><td>{usd(row['total_oi_usd'])}</td></tr>"
        )
    return f'<table id="signals-table"><thead>{header}</thead><tbody>{"".join(body)}</tbody></table>', len(body)


# ---------------------------------------------------------------------------------------------- the page
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f8fafc;color:#111827}
header{background:#0f172a;color:#f8fafc;padding:16px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd5e1}main{padding:8px 28px 40px;max-width:1180px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;margin:18px 0;padding:14px 18px;overflow-x:auto}
h2{font-size:17px;margin:0 0 4px}p.note{color:#4b5563;margin:2px 0 10px}
.chart text{font-size:12px;fill:#1f2937}.chart .tick{font-size:11px;fill:#6b7280}.chart .grid{stroke:#eef0f3}
.chart .value{font-size:11px;fill:#374151}.legend{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;
margin:4px 0 8px;font-size:12px;color:#374151}.key{display:inline-flex;align-items:center;gap:5px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px}.step{display:inline-block;width:16px;height:12px}
.hatched{background:repeating-linear-gradient(45deg,#e5e7eb 0 3px,#c4c8cf 3px 5px)}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:5px 8px;border-bottom:1px solid #eef0f3;
text-align:right;white-space:nowrap}th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}th{background:#f3f4f6}
.empty{color:#6b7280;font-style:italic}
"""


def render(marts: Marts) -> str:
    """The whole page as one string; deterministic for the same input frames."""
    symbols = top_symbols(marts.oi_change)
    as_of = marts.oi_change["ts"].max() if marts.oi_change is not None and not marts.oi_change.is_empty() else None

    if symbols:
        oi_section = oi_by_venue_svg(marts.oi_change, symbols)
        oi_note = f"Interval ending {stamp(as_of)} UTC, the {len(symbols)} largest markets by total open interest."
    else:
        oi_section, oi_note = '<p class="empty">No open interest exported yet: run the DAG once.</p>', ""

    heat_note = ""
    if marts.skew_history is not None and not marts.skew_history.is_empty() and symbols:
        heat_section, cells, with_percentile = skew_heatmap_svg(marts.skew_history, symbols)
        heat_note = (
            f"Where each market's consensus long/short ratio sits within its own last 30 days "
            f"(<code>marts.skew_history.consensus_pct_30d</code>), latest {HEATMAP_INTERVALS} intervals. "
            f"{with_percentile} of {cells} cells have a percentile"
        )
        if with_percentile < cells:
            heat_note += " (a percentile needs at least 24 observations in its 30-day window: backfill to fill it)"
        heat_note += "."
    else:
        heat_section = '<p class="empty">No skew history exported yet.</p>'

    if marts.positioning_signals is not None and not marts.positioning_signals.is_empty():
        signal_section, shown = signals_table(marts.positioning_signals)
        signal_note = (
            f"The {shown} most recent firing rules of <code>marts.positioning_signals</code> "
            f"(of {marts.positioning_signals.height} in the exported history), newest and strongest first."
        )
    else:
        signal_section = '<p class="empty" id="no-signals">No signal has fired in the exported history.</p>'
        signal_note = (
            "CASCADE_DOWN_RISK, SQUEEZE_RISK, SHORT_CAPITULATION and BUILDUP need history: "
            "the OI and z-score rules need at least 24 intervals."
        )

    subtitle = f"Data as of {stamp(as_of)} UTC" if as_of else "No data exported yet"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>positioning dashboard</title><style>{STYLE}</style></head>
<body><header><h1>Perpetual-futures positioning</h1><p>{subtitle} · rendered from
<code>exports/marts/*.parquet</code> after each run of the <code>positioning</code> DAG</p></header><main>
<section id="oi-by-venue"><h2>Open interest by venue</h2><p class="note">{oi_note}</p>{oi_section}</section>
<section id="skew-heatmap-section"><h2>Skew heat map: consensus long/short percentile (30 days)</h2>
<p class="note">{heat_note}</p>{heat_section}</section>
<section id="signals"><h2>Latest signals</h2><p class="note">{signal_note}</p>{signal_section}</section>
</main></body></html>
"""


def write_dashboard(exports: Path, output: Path | None = None) -> Path:
    """Render ``exports/dashboard/index.html`` (or ``output``) from ``exports/marts/*.parquet``, atomically."""
    target = output or exports / "dashboard" / "index.html"
    page = render(read_marts(exports))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".html")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(page)
        os.chmod(temp_name, 0o644)  # mkstemp's 0600 would hide the page from a web server or another user
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    log.info("dashboard: %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    from positioning.config import exports_dir

    parser = argparse.ArgumentParser(prog="python -m positioning.dashboard", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--exports", type=Path, default=None, help="exports directory (default: $POSITIONING_DATA_DIR/exports)"
    )
    parser.add_argument("--output", type=Path, default=None, help="HTML file (default: <exports>/dashboard/index.html)")
    args = parser.parse_args(argv)
    exports = args.exports or exports_dir()
    if not (exports / "marts").is_dir():
        print(f"positioning dashboard: no mart exports under {exports}/marts; run the DAG first", file=sys.stderr)
        return 1
    print(write_dashboard(exports, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
