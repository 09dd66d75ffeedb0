"""The vectorised (polars) Binance history parsers give exactly the row parsers' frames and raw-row keys."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from positioning.ingest.manifests import Manifest, RequestRecord
from positioning.quality import raw_row_frame
from positioning.rows import LongShortRatio, OpenInterestHistory, ParseError
from positioning.sim.state import SimState
from positioning.venues import binance
from positioning.warehouse.parse import ParsedRows, parse_manifests, rows_frame
from test_parsers import BINANCE_GLOBAL_ACCOUNT, BINANCE_OI_HIST, BINANCE_TOP_ACCOUNT, BINANCE_TOP_POSITION

ENDPOINTS = {
    "openInterestHist": (BINANCE_OI_HIST, OpenInterestHistory),
    "topLongShortPositionRatio": (BINANCE_TOP_POSITION, LongShortRatio),
    "topLongShortAccountRatio": (BINANCE_TOP_ACCOUNT, LongShortRatio),
    "globalLongShortAccountRatio": (BINANCE_GLOBAL_ACCOUNT, LongShortRatio),
}


def _both(endpoint: str, bodies: list[str], period: str = "5m") -> tuple[ParsedRows, ParsedRows]:
    """The same pages, landed as raw files, through the row path and the frame path of ``normalize``."""
    directory = Path(tempfile.mkdtemp(prefix="frame-parsers-"))
    meta = {"endpoint": endpoint, "params": {"period": period}, "received_at": "2026-11-20T12:00:00+00:00"}
    paths = []
    for i, body in enumerate(bodies):
        paths.append(str(directory / f"{i}.json"))
        Path(paths[-1]).write_text(json.dumps({"meta": meta, "body": body}), encoding="utf-8")
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    manifest = Manifest(
        venue="binance",
        run_id="frames",
        attempt=1,
        interval_start=end - timedelta(hours=1),
        interval_end=end,
        ls_period=period,
        status="ok",
        requests=tuple(RequestRecord("binance", endpoint, None, True, 200, raw_paths=(path,)) for path in paths),
    )
    by_rows = parse_manifests([manifest], vectorised=False)
    by_frames = parse_manifests([manifest])
    return by_rows, by_frames


def _assert_same(endpoint: str, by_rows: ParsedRows, by_frames: ParsedRows) -> None:
    row_type = ENDPOINTS[endpoint][1]
    expected = rows_frame(by_rows.rows[row_type], row_type)
    actual = by_frames.frame(row_type)
    assert_frame_equal(actual.sort(actual.columns), expected.sort(expected.columns))
    keys = ["venue", "endpoint", "raw_path", "row_type", "row_key"]
    assert_frame_equal(
        raw_row_frame(by_frames.files).drop("row_id").sort(keys),
        raw_row_frame(by_rows.files).drop("row_id").sort(keys),
    )
    assert [e["error"] for e in by_frames.errors] == [e["error"] for e in by_rows.errors]
    assert by_frames.count() == by_rows.count()


def _numeric_timestamps(text: str) -> str:
    rows = json.loads(text)
    for row in rows:
        row["timestamp"] = int(row["timestamp"])
    return json.dumps(rows)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_doc_examples_string_and_number_timestamps(endpoint):
    text = ENDPOINTS[endpoint][0]
    by_rows, by_frames = _both(endpoint, [text, _numeric_timestamps(text)])
    _assert_same(endpoint, by_rows, by_frames)
    assert by_frames.frames  # taken by the frame path, not the fallback
    assert not any(by_frames.rows.values())


def _sim_pages(endpoint: str, symbols: int = 5, buckets: int = 48) -> list[str]:
    state = SimState(seed=11)
    start = 1_763_000_000_000 // 300_000 * 300_000
    pages = []
    for instrument in list(state.listed("binance").values())[:symbols]:
        rows = []
        for b in range(buckets):
            bucket = start + b * 300_000
            if endpoint == "openInterestHist":
                served = state.binance_oi_hist_strings(instrument, "5m", bucket)
                rows.append({"symbol": instrument, "sumOpenInterest": served["coins"],
                             "sumOpenInterestValue": served["usd"], "CMCCirculatingSupply": served["supply"],
                             "timestamp": bucket})  # fmt: skip
            else:
                served = state.ratio_strings("binance", endpoint, instrument, "5m", bucket)
                rows.append({"symbol": instrument, "longShortRatio": served["ratio"],
                             "longAccount": served["long_share"], "shortAccount": served["short_share"],
                             "timestamp": bucket})  # fmt: skip
        pages.append(json.dumps(rows, separators=(",", ":")))
    return pages


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_simulator_pages(endpoint):
    by_rows, by_frames = _both(endpoint, _sim_pages(endpoint))
    _assert_same(endpoint, by_rows, by_frames)
    assert not any(by_frames.rows.values())
    assert by_frames.count() == 5 * 48


RATIO = "topLongShortAccountRatio"


def _ratio_page(**overrides) -> str:
    row = {"symbol": "BTCUSDT", "longShortRatio": "1.5", "longAccount": "0.6", "shortAccount": "0.4",
           "timestamp": 1583139600000}  # fmt: skip
    row.update(overrides)
    return json.dumps([row, {**row, "timestamp": 1583139900000}])


def test_nan_and_empty_optional():
    pages = [_ratio_page(longShortRatio="NaN"), _ratio_page(longAccount="", shortAccount=None)]
    by_rows, by_frames = _both(RATIO, pages)
    _assert_same(RATIO, by_rows, by_frames)
    assert not any(by_frames.rows.values())  # both taken vectorised
    frame = by_frames.frame(LongShortRatio)
    assert frame["ratio"].is_nan().sum() == 2
    assert frame["long_share"].null_count() == 2


@pytest.mark.parametrize(
    ("endpoint", "page", "field"),
    [
        (RATIO, _ratio_page(longShortRatio=""), "longShortRatio"),
        (RATIO, _ratio_page(longShortRatio=None), "longShortRatio"),
        (
            RATIO,
            json.dumps([{"symbol": "BTCUSDT", "longShortRatio": "1", "timestamp": 1}, {"symbol": "X"}]),
            "timestamp",
        ),
        (RATIO, _ratio_page(longShortRatio="abc"), "longShortRatio"),
        (RATIO, _ratio_page(timestamp=-5), "timestamp"),
        (
            "openInterestHist",
            json.dumps([{"symbol": "BTCUSDT", "sumOpenInterest": "1", "timestamp": 1}]),
            "sumOpenInterestValue",
        ),
    ],
)
def test_problem_pages_fall_back_to_the_row_parser_error(endpoint, page, field):
    good = ENDPOINTS[endpoint][0]
    by_rows, by_frames = _both(endpoint, [good, page])
    _assert_same(endpoint, by_rows, by_frames)
    assert len(by_frames.errors) == 1
    assert f"binance {endpoint} field {field!r}" in by_frames.errors[0]["error"]
    with pytest.raises(ParseError) as caught:
        binance.PARSERS[endpoint](json.loads(page), {"period": "5m"})
    assert caught.value.venue == "binance" and caught.value.endpoint == endpoint and caught.value.field == field


@pytest.mark.parametrize(
    "page",
    [
        "[]",
        '{"code": -1121, "msg": "Invalid symbol."}',
        "not json",
        _ratio_page(longShortRatio=1.25),  # a bare number: row parser
        _ratio_page(longShortRatio=True),
        _ratio_page(longAccount=0.6),  # an optional field as a number
        _ratio_page().replace('"longShortRatio": "1.5"', '"longShortRatio" : "1.5"'),
        _ratio_page().replace('"longShortRatio": "1.5"', '"longShortRatio":  "1.5"'),
        _ratio_page().replace('"longShortRatio": "1.5"', '"longShortRatio":"1.5"'),
        _ratio_page(symbol="longShortRatio"),  # a field name as a value
        _ratio_page(symbol=7),
        _ratio_page(longShortRatio=" 1.5"),
        _ratio_page(timestamp="1583139600000.7"),
        json.dumps({"symbol": "BTCUSDT", "longShortRatio": "1.5", "timestamp": 1583139600000}),
    ],
)
def test_odd_pages_match_the_row_path(page):
    by_rows, by_frames = _both(RATIO, [_ratio_page(), page])
    _assert_same(RATIO, by_rows, by_frames)


def test_duplicate_row_keys_reach_the_gate():
    page = _ratio_page(timestamp=1583139600000)
    row = json.loads(page)[0]
    by_rows, by_frames = _both(RATIO, [json.dumps([row, row])])
    _assert_same(RATIO, by_rows, by_frames)
    keys = raw_row_frame(by_frames.files)
    assert keys.height == 2 and keys["row_key"].n_unique() == 1
    assert keys["row_key"][0] == "BTCUSDT|ls_top_account|5m|1583139600000"


def test_empty_batch():
    frame, rejected = binance.frame_parsers()[RATIO]([])
    assert rejected == [] and frame.height == 0
    assert frame.drop("_page").schema == rows_frame([], LongShortRatio).schema
    frame, _ = binance.frame_parsers()["openInterestHist"]([])
    assert frame.drop("_page").schema == rows_frame([], OpenInterestHistory).schema
    assert pl.DataFrame().height == 0
