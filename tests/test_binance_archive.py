"""The Binance data archive's metrics files (venues-more.md §3): checksum, zip, header and label quirks, parsed
into the rows the REST history gives."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from positioning.rows import ParseError
from positioning.venues import binance_archive as archive

HEADER = ",".join(archive.COLUMNS)


def zipped(lines: list[str], name: str = "BTCUSDT-metrics.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(name, "\n".join(lines) + "\n")
    return buffer.getvalue()


def day_lines(day: date, *, end_labelled: bool, symbol: str = "BTCUSDT") -> list[str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=5 if end_labelled else 0)
    return [
        f"{start + timedelta(minutes=5 * i):%Y-%m-%d %H:%M:%S},{symbol},{100 + i}.5,{(100 + i) * 90000.0},"
        f"1.{i:03d},2.{i:03d},0.{i + 100:03d},1.0"
        for i in range(288)
    ]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(("day", "end_labelled"), [(date(2024, 11, 27), True), (date(2026, 7, 1), False)])
def test_both_label_conventions_give_period_starts_of_the_files_day(day, end_labelled):
    oi, ratios = archive.parse_metrics(zipped([HEADER, *day_lines(day, end_labelled=end_labelled)]), "BTCUSDT", day)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert oi.height == 288 and ratios.height == 4 * 288  # three ratios and the taker ratio
    assert oi["ts_ms"].to_list() == [ms(midnight) + i * 300_000 for i in range(288)]
    first = oi.row(0, named=True)
    assert first == {"venue": "binance", "key": "BTCUSDT", "period": "5m", "ts_ms": ms(midnight), "coins": 100.5,
                     "usd": 9_000_000.0, "contracts": None}  # fmt: skip
    # The misleading names: "sum_toptrader" is the position ratio, "count_toptrader" the account ratio.
    at_first = {r["metric"]: r["ratio"] for r in ratios.filter(pl.col("ts_ms") == ms(midnight)).iter_rows(named=True)}
    assert at_first == {"ls_top_position": 2.0, "ls_top_account": 1.0, "ls_global_account": 0.1, "taker_buy_sell": 1.0}
    assert ratios["long_share"].is_null().all()


def test_the_changeover_files_do_not_share_a_period():
    before = archive.parse_metrics(zipped([HEADER, *day_lines(date(2026, 6, 24), end_labelled=True)]), "BTCUSDT",
                                   date(2026, 6, 24))[0]  # fmt: skip
    after = archive.parse_metrics(zipped([HEADER, *day_lines(date(2026, 6, 25), end_labelled=False)]), "BTCUSDT",
                                  date(2026, 6, 25))[0]  # fmt: skip
    assert before["ts_ms"].max() + 300_000 == after["ts_ms"].min() == ms(datetime(2026, 6, 25, tzinfo=UTC))


def test_empty_cells_offgrid_labels_no_header_and_daily_rows():
    lines = [
        '2022-01-26 03:35:00,1000BTTCUSDT,2023567.00000000,4176.01498223,"","",8.5,""',  # third-party fixture
        "2022-01-26 03:42:30,1000BTTCUSDT,2023568,4176.1,1.1,1.2,8.6,1.0",  # off the 5-minute grid
        "2023-01-21,BTCUSDT,98666.16300000,2236289208.19726700,0.766568632422291,1.1363333457,0.8332767017782309,"
        "0.9253075900",  # the one-row-per-day files of January 2023 (#211)
    ]
    oi, ratios = archive.parse_metrics(zipped(lines), "1000BTTCUSDT", date(2022, 1, 26))  # no header row
    assert oi["ts_ms"].to_list()[:2] == [ms(datetime(2022, 1, 26, 3, 30, tzinfo=UTC)),
                                         ms(datetime(2022, 1, 26, 3, 35, tzinfo=UTC))]  # fmt: skip
    first = ratios.filter(pl.col("ts_ms") == oi["ts_ms"][0])
    assert first.select("metric", "ratio").rows() == [("ls_global_account", 8.5)]  # empty cells are missing
    daily = oi.filter(pl.col("period") == "1d").row(0, named=True)
    assert daily["ts_ms"] == ms(datetime(2023, 1, 21, tzinfo=UTC)) and daily["coins"] == pytest.approx(98666.163)


def test_a_truncated_zip_and_bad_values_are_parse_errors_naming_the_file():
    whole = zipped([HEADER, *day_lines(date(2024, 11, 27), end_labelled=True)])
    with pytest.raises(ParseError, match=r"BTCUSDT-metrics-2024-11-27\.zip: not a readable zip"):
        archive.parse_metrics(whole[: len(whole) // 2], "BTCUSDT", date(2024, 11, 27))
    with pytest.raises(ParseError, match="'abc' is not a number") as error:
        archive.parse_metrics(zipped(["2024-11-27 00:05:00,BTCUSDT,abc,1,1,1,1,1"]), "BTCUSDT", date(2024, 11, 27))
    assert error.value.field == "sum_open_interest"
    with pytest.raises(ParseError, match="is not a time"):
        archive.parse_metrics(zipped(["yesterday,BTCUSDT,1,1,1,1,1,1"]), "BTCUSDT", date(2024, 11, 27))


def test_checksum_is_verified_and_a_mismatch_or_garbage_is_reported():
    content = zipped([HEADER])
    name = "BTCUSDT-metrics-2024-11-27.zip"
    good = f"{hashlib.sha256(content).hexdigest()}  {name}\n"
    archive.verify_checksum(content, good, name)
    with pytest.raises(archive.ChecksumMismatch, match="differs from the published"):
        archive.verify_checksum(content + b"x", good, name)
    with pytest.raises(archive.ChecksumMismatch, match="names"):
        archive.verify_checksum(content, good.replace("11-27", "11-28"), name)
    with pytest.raises(archive.ChecksumMismatch, match="does not read"):
        archive.verify_checksum(content, "<html>Access Denied</html>", name)
    assert archive.checksum_path("BTCUSDT", date(2024, 11, 27)) == (
        "/data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-11-27.zip.CHECKSUM"
    )


# ------------------------------------------------------------------------------------- the simulator's archive


@pytest.fixture(scope="module")
def sim():
    from conftest import SIM_NOW_MS
    from positioning.sim import VenueSimulator

    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS) as simulator:
        yield simulator


def test_the_simulator_serves_checked_zips_equal_to_the_rest_history(sim):
    import httpx

    day = date(2026, 11, 18)
    with httpx.Client(base_url=sim.base_url) as http:
        content = http.get(archive.metrics_path("BTCUSDT", day))
        checksum = http.get(archive.checksum_path("BTCUSDT", day))
    assert content.status_code == checksum.status_code == 200
    assert content.headers["content-type"] == "application/zip" and "last-modified" in content.headers
    archive.verify_checksum(content.content, checksum.text, "BTCUSDT-metrics-2026-11-18.zip")
    oi, ratios = archive.parse_metrics(content.content, "BTCUSDT", day)
    assert oi.height == 288 and ratios.height == 4 * 288  # three ratios and the taker ratio
    for row in oi.head(3).iter_rows(named=True):  # the same figures as openInterestHist at 5m
        served = sim.state.binance_oi_hist_strings("BTCUSDT", "5m", row["ts_ms"])
        assert (row["coins"], row["usd"]) == (float(served["coins"]), float(served["usd"]))
    first = ratios.filter(pl.col("ts_ms") == oi["ts_ms"][0])
    truth = {
        metric: sim.state.ratio("binance", endpoint, "BTCUSDT", "5m", oi["ts_ms"][0])["ratio"]
        for metric, endpoint in (("ls_top_position", "topLongShortPositionRatio"),
                                 ("ls_top_account", "topLongShortAccountRatio"),
                                 ("ls_global_account", "globalLongShortAccountRatio"))
    }  # fmt: skip
    buy, sell = sim.state.taker_volumes("binance", "BTCUSDT", "5m", oi["ts_ms"][0])
    truth["taker_buy_sell"] = round(buy / sell, 4)  # the REST takerlongshortRatio at 5m
    assert dict(first.select("metric", "ratio").rows()) == pytest.approx(truth)


def test_the_simulator_labels_old_files_by_period_end_and_answers_404_like_s3(sim):
    import httpx

    with httpx.Client(base_url=sim.base_url) as http:
        old = http.get(archive.metrics_path("BTCUSDT", date(2024, 11, 27)))
        assert archive.read_csv_text(old.content, "old").splitlines()[1].startswith("2024-11-27 00:05:00,BTCUSDT,")
        oi, _ = archive.parse_metrics(old.content, "BTCUSDT", date(2024, 11, 27))
        assert oi["ts_ms"][0] == ms(datetime(2024, 11, 27, tzinfo=UTC))
        for path in (
            archive.metrics_path("NOPEUSDT", date(2026, 11, 18)),  # not listed
            archive.metrics_path("BTCUSDT", date(2026, 11, 20)),  # today: not published yet
            archive.metrics_path("BTCUSDT", date(2021, 11, 30)),  # before the archive's first day
        ):
            missing = http.get(path)
            assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text, path


# ------------------------------------------------------------------------------------- fetching, against it


def fetch_days(sim, tmp_path, instrument: str, days: list[date]) -> list:
    import asyncio

    from positioning.ingest.http import RetryPolicy, VenueClient
    from positioning.ingest.raw import RawLander

    async def main() -> list:
        lander = RawLander(tmp_path / "raw", "binance_archive", datetime(2026, 11, 20, tzinfo=UTC), "archive-test")
        async with VenueClient(
            "binance_archive",
            sim.base_url,
            limits=archive.LIMITS,
            envelope_error=archive.envelope_error,
            lander=lander,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02, seed=1),
            concurrency=archive.CONCURRENCY,
        ) as client:
            return [await archive.fetch_day(client, instrument, day) for day in days]

    return asyncio.run(main())


def test_fetched_days_are_verified_and_landed_byte_for_byte_and_a_missing_day_is_a_404(sim, tmp_path):
    from positioning.ingest.raw import read_raw

    sim.clear_faults()
    days = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]  # the 20th is not published yet
    (c18, z18), (_, z19), (c20, z20) = fetch_days(sim, tmp_path, "ETHUSDT", days)
    assert c18.ok and z18.ok and z19.ok and (c20.status, z20.status) == (404, 404) and not z20.retryable
    landed = read_raw(z18.raw_paths[-1])
    assert landed.meta["body_encoding"] == "base64" and landed.content() == z18.payload
    assert landed.meta["headers"]["content-type"] == "application/zip" and "last-modified" in landed.meta["headers"]
    assert read_raw(c18.raw_paths[-1]).content().decode().endswith("  ETHUSDT-metrics-2026-11-18.zip\n")
    oi, _ = archive.parse_metrics(landed.content(), "ETHUSDT", days[0])
    assert oi.height == 288


@pytest.mark.parametrize(("truncated", "loaded"), [(1, True), (2, False)])
def test_a_download_that_fails_its_checksum_is_fetched_again_then_recorded_not_loaded(sim, tmp_path, truncated, loaded):
    sim.clear_faults()
    sim.add_fault("binance", "archive_metrics", kind="malformed_json", times=truncated)  # a cut-off transfer
    [(checksum, content)] = fetch_days(sim, tmp_path, "BTCUSDT", [date(2026, 11, 18)])
    assert checksum.ok and content.ok is loaded and len(content.raw_paths) == 2  # both downloads landed
    if not loaded:
        assert "differs from the published" in content.error and "not loaded" in content.error
        assert not content.retryable


def test_a_transient_403_is_retried_and_a_404_is_not(sim, tmp_path):
    sim.clear_faults()
    sim.add_fault("binance", "archive_metrics", kind="status", status=403, times=1)  # CloudFront AccessDenied
    [(_, content)] = fetch_days(sim, tmp_path, "BTCUSDT", [date(2026, 11, 18)])
    assert content.ok and content.statuses == [403, 200]
    [(_, missing)] = fetch_days(sim, tmp_path, "BTCUSDT", [date(2021, 11, 30)])
    assert missing.statuses == [404]
