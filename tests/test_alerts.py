"""Telegram alerting (issue #6): crossings not spam, idempotent re-runs and backfills, secrets kept secret.

Delivery goes to a fake Telegram Bot API on 127.0.0.1 (tests/fake_telegram.py) speaking the wire format of
venues.md §5. The crossing logic runs on crafted ``marts.symbol_snapshot`` rows; the last tests run the DAG.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest
from conftest import INTERVAL_END
from fake_telegram import FakeTelegram, parse_html
from positioning import registry
from positioning.alerts import run_alerts
from positioning.alerts import telegram as telegram_module
from positioning.alerts.render import escape, split_message, utf16_units
from positioning.alerts.telegram import TelegramBot
from positioning.ingest.http import RetryPolicy

TOKEN = "123456:SECRET-token-xyz"
SECRET_FORMS = (TOKEN, quote(TOKEN, safe=""), "SECRET-token-xyz")
T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
PUBLISHED = {"quality": {"published": True, "blocking": []}}
# dag.test() in one session can carry one test's conf into the next run's params: every DAG test spells all out.
NO_ALERTS = {
    "alertLsThreshold": 0,
    "alertLongThreshold": 0,
    "alertShortThreshold": 0,
    "alertOnExtremeSkew": False,
    "alertOnSignals": False,
    "alertVenueFailures": 0,
    "alertOnBackfill": False,
}
THRESHOLDS = {"alertLsThreshold": 3, "alertShortThreshold": 0.5, "alertOnExtremeSkew": False, "alertOnSignals": False}


def hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)


def connection_uri(fake: FakeTelegram, chat_id: str = "42") -> str:
    host_port = fake.base_url.removeprefix("http://")
    return f"http://:{quote(fake.token, safe='')}@{host_port}/?chat_id={chat_id}"


@pytest.fixture
def telegram(monkeypatch):
    with FakeTelegram(TOKEN) as fake:
        monkeypatch.setenv("AIRFLOW_CONN_POSITIONING_TELEGRAM", connection_uri(fake))
        yield fake


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(telegram_module, "DEFAULT_RETRY", RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05))


def skew_label(ratio):
    if ratio is None:
        return "NO_DATA"
    return (
        "EXTREME_LONG"
        if ratio >= 2.5
        else "LONG_SKEWED"
        if ratio >= 1.25
        else "EXTREME_SHORT"
        if ratio <= 0.4
        else "SHORT_SKEWED"
        if ratio <= 0.8
        else "NEUTRAL"
    )


def publish(data_dir: Path, ts: datetime, ratios: dict[str, float | None]) -> None:
    """Crafted mart rows for one interval (the columns the alert rules read)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(
            "CREATE TABLE IF NOT EXISTS marts.symbol_snapshot (ts TIMESTAMP, symbol VARCHAR, avg_ls_ratio DOUBLE, "
            "skew_label VARCHAR)"
        )
        naive = ts.replace(tzinfo=None)
        con.execute("DELETE FROM marts.symbol_snapshot WHERE ts = ?", [naive])
        for symbol, ratio in ratios.items():
            con.execute(
                "INSERT INTO marts.symbol_snapshot VALUES (?, ?, ?, ?)", [naive, symbol, ratio, skew_label(ratio)]
            )


def evaluate(data_dir, n: int, ratios: dict | None, params: dict | None = None, **kwargs) -> dict:
    if ratios is not None:
        publish(data_dir, hour(n), ratios)
    return run_alerts(hour(n), f"run_{n}", params or THRESHOLDS, kwargs.pop("load_summary", PUBLISHED), **kwargs)


def query(data_dir: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def sent_lines(fake: FakeTelegram, since: int = 0) -> list[str]:
    """The alert lines (not the headers) of the messages received since message ``since``."""
    return [line for message in fake.messages[since:] for line in message["text"].split("\n")[1:]]


# --------------------------------------------------------------------------------------------- crossing logic


def test_threshold_crossings_up_and_down_alert_once_per_crossing(data_dir, telegram):
    steps = [
        # (BTC, ETH) avg L/S per hour -> the lines expected in Telegram
        ((2.0, 0.45), ["▼ ETH heavy short: avg L/S 0.45 ≤ 0.5"]),  # first evaluation: ETH already below 0.5
        ((3.2, 0.40), ["▲ BTC avg L/S 3.20 crossed above 3 (was 2.00)"]),  # ETH still short: no repeat
        ((3.5, 0.30), []),  # both conditions hold: nothing
        ((2.9, 0.60), ["▼ BTC avg L/S 2.90 crossed below 3 (was 3.50)"]),  # ETH leaves: silent
        (
            (3.1, 0.45),
            ["▲ BTC avg L/S 3.10 crossed above 3 (was 2.90)", "▼ ETH heavy short: avg L/S 0.45 ≤ 0.5 (was 0.60)"],
        ),
    ]
    for n, ((btc, eth), expected) in enumerate(steps):
        before = len(telegram.messages)
        summary = evaluate(data_dir, n, {"BTC": btc, "ETH": eth})
        assert sent_lines(telegram, before) == expected, n
        assert summary["delivered"] == len(expected) and not summary["backfill"]
        assert len(telegram.messages) - before == (1 if expected else 0)  # batched: one message per run
    rows = query(data_dir, "SELECT ts, symbol, kind, value, threshold, delivered, error FROM ops.alerts ORDER BY ts")
    assert [(r[1], r[2], r[4], r[5], r[6]) for r in rows] == [
        ("ETH", "heavy_short", 0.5, True, None),
        ("BTC", "ls_cross_above", 3.0, True, None),
        ("BTC", "ls_cross_below", 3.0, True, None),
        ("BTC", "ls_cross_above", 3.0, True, None),
        ("ETH", "heavy_short", 0.5, True, None),
    ]
    # The state says since when a condition holds.
    state = query(data_dir, "SELECT rule, scope, since_ts FROM ops.alert_state WHERE ts = ? ORDER BY rule", [hour(4)])
    assert state == [
        ("ls_threshold:3", "BTC", hour(4).replace(tzinfo=None)),
        ("short_threshold:0.5", "ETH", hour(4).replace(tzinfo=None)),
    ]


def test_a_short_side_ls_threshold_alerts_below_it_and_when_it_recovers(data_dir, telegram):
    params = {"alertLsThreshold": 0.4, "alertOnExtremeSkew": False, "alertOnSignals": False}  # the seed's squeeze radar
    evaluate(data_dir, 0, {"SOL": 1.1}, params)
    evaluate(data_dir, 1, {"SOL": 0.35}, params)
    evaluate(data_dir, 2, {"SOL": 0.38}, params)
    evaluate(data_dir, 3, {"SOL": 0.7}, params)
    assert sent_lines(telegram) == [
        "▼ SOL avg L/S 0.35 crossed below 0.4 (was 1.10)",
        "▲ SOL avg L/S 0.70 crossed above 0.4 (was 0.38)",
    ]


def test_extreme_skew_transitions_and_long_threshold(data_dir, telegram):
    params = {"alertLongThreshold": 3, "alertOnSignals": False}
    evaluate(data_dir, 0, {"PEPE": 2.0, "ORDI": 0.5}, params)
    evaluate(data_dir, 1, {"PEPE": 2.6, "ORDI": 0.3}, params)
    evaluate(data_dir, 2, {"PEPE": 3.4, "ORDI": 0.2}, params)
    assert sent_lines(telegram) == [
        "▼ ORDI now EXTREME_SHORT (avg L/S 0.30, was SHORT_SKEWED)",
        "▲ PEPE now EXTREME_LONG (avg L/S 2.60, was LONG_SKEWED)",
        "▲ PEPE heavy long: avg L/S 3.40 ≥ 3 (was 2.60)",
    ]


def test_a_symbol_missing_for_an_interval_does_not_realert(data_dir, telegram):
    evaluate(data_dir, 0, {"BTC": 3.3, "ETH": 1.0})
    evaluate(data_dir, 1, {"ETH": 1.0})  # BTC has no data: its state is carried
    evaluate(data_dir, 2, {"BTC": None, "ETH": 1.0})  # no ratio either
    evaluate(data_dir, 3, {"BTC": 3.4, "ETH": 1.0})
    assert sent_lines(telegram) == ["▲ BTC avg L/S 3.30 crossed above 3"]
    carried = query(data_dir, "SELECT ts, carried FROM ops.alert_state WHERE scope = 'BTC' ORDER BY ts")
    assert [c for _, c in carried] == [False, True, True, False]


# ------------------------------------------------------------------------------------ re-runs and backfills


def test_rerunning_an_interval_never_resends_but_retries_what_was_not_delivered(data_dir, telegram, monkeypatch):
    evaluate(data_dir, 0, {"BTC": 2.0})
    evaluate(data_dir, 1, {"BTC": 3.2})
    assert len(telegram.messages) == 1
    for _ in range(2):  # re-runs of the same interval
        summary = evaluate(data_dir, 1, None)
        assert summary["events"] and summary["already_delivered"] == 1 and summary["attempted"] == 0
    assert len(telegram.messages) == 1
    assert query(data_dir, "SELECT count(*) FROM ops.alerts")[0][0] == 1
    assert query(data_dir, "SELECT count(*) FROM ops.alert_state WHERE ts = ?", [hour(1)])[0][0] == 1

    # Telegram unreachable at hour 2: recorded as not delivered; a re-run once it is back delivers it.
    monkeypatch.setattr(telegram_module, "DEFAULT_RETRY", RetryPolicy(max_attempts=2, base_delay=0.01))
    monkeypatch.setenv("AIRFLOW_CONN_POSITIONING_TELEGRAM", f"http://:{quote(TOKEN, safe='')}@127.0.0.1:9/?chat_id=42")
    summary = evaluate(data_dir, 2, {"BTC": 2.0})
    assert summary["attempted"] == 1 and summary["delivered"] == 0
    assert "connection error" in summary["not_delivered_reasons"][0]
    monkeypatch.setenv("AIRFLOW_CONN_POSITIONING_TELEGRAM", connection_uri(telegram))
    summary = evaluate(data_dir, 2, None)
    assert summary["delivered"] == 1
    assert sent_lines(telegram, 1) == ["▼ BTC avg L/S 2.00 crossed below 3 (was 3.20)"]
    rows = query(data_dir, "SELECT delivered, http_attempts, error IS NULL FROM ops.alerts WHERE ts = ?", [hour(2)])
    assert sorted(rows) == [(False, 2, False), (True, 1, True)]  # two attempts recorded, one delivered


def test_a_backfilled_interval_never_alerts_about_the_past_unless_asked(data_dir, telegram):
    evaluate(data_dir, 5, {"BTC": 2.0})
    evaluate(data_dir, 6, {"BTC": 2.1})
    summary = evaluate(data_dir, 2, {"BTC": 3.5})  # older than the latest evaluated interval
    assert summary["backfill"] and summary["events"] and summary["suppressed_backfill"] == 1
    summary = evaluate(data_dir, 7, {"BTC": 3.6}, run_type="backfill")  # a backfill run, even of a new interval
    assert summary["backfill"] and summary["suppressed_backfill"] == 1
    assert telegram.messages == [] and query(data_dir, "SELECT count(*) FROM ops.alerts")[0][0] == 0
    # The state of the backfilled interval is recorded all the same (a later re-run compares with it).
    assert query(data_dir, "SELECT backfill FROM ops.alert_evaluations WHERE ts = ?", [hour(2)]) == [(True,)]
    assert query(data_dir, "SELECT scope FROM ops.alert_state WHERE ts = ?", [hour(2)]) == [("BTC",)]

    summary = evaluate(data_dir, 3, {"BTC": 2.0}, {**THRESHOLDS, "alertOnBackfill": True})  # asked for
    assert summary["backfill"] and summary["delivered"] == 1
    assert telegram.messages[0]["text"] == (
        "positioning alerts · 2026-11-01 03:00 UTC · backfill\n▼ BTC avg L/S 2.00 crossed below 3 (was 3.50)"
    )


# ---------------------------------------------------------------------------------------------- operational


def test_quality_gate_block_and_recovery(data_dir, telegram):
    evaluate(data_dir, 0, {"BTC": 1.0})
    blocked = {"quality": {"published": False, "blocking": ["duplicate_rows: 12 duplicated <rows> & more"]}}
    evaluate(data_dir, 1, None, load_summary=blocked)
    evaluate(data_dir, 2, None, load_summary=blocked)  # still blocked: no repeat
    evaluate(data_dir, 3, {"BTC": 1.0})
    assert sent_lines(telegram) == [
        "⛔ quality gate blocked publication of this interval: duplicate_rows: 12 duplicated <rows> & more",
        "✅ quality gate passed again: the interval was published",
    ]
    assert "&lt;rows&gt; &amp; more" in telegram.messages[0]["html"]  # escaped for HTML parse mode


def test_a_venue_failing_n_consecutive_runs(data_dir, telegram):
    def extract_runs(n: int, statuses: dict[str, str]) -> None:
        with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
            for venue, status in statuses.items():
                con.execute(
                    "INSERT INTO ops.extract_runs (ts, run_id, venue, attempt, status, error) VALUES (?, ?, ?, 1, ?, ?)",
                    [
                        hour(n).replace(tzinfo=None),
                        f"run_{n}",
                        venue,
                        status,
                        "HTTP 451 geo-blocked" * (status != "ok"),
                    ],
                )

    params = {"alertVenueFailures": 3, "alertOnExtremeSkew": False, "alertOnSignals": False}
    evaluate(data_dir, 0, {"BTC": 1.0}, params)  # creates the warehouse
    for n, binance in enumerate(["failed", "failed", "failed", "failed", "ok"], start=1):
        extract_runs(n, {"binance": binance, "okx": "ok"})
        evaluate(data_dir, n, {"BTC": 1.0}, params)
    assert sent_lines(telegram) == [
        "⚠️ venue binance failed 3 runs in a row: HTTP 451 geo-blocked",
        "✅ venue binance recovered after 4 failed runs",
    ]


# ------------------------------------------------------------------------------------------------- delivery


def test_many_alerts_are_batched_and_split_below_4096_utf16_units(data_dir, telegram):
    symbols = [f"S{i:03d}" for i in range(400)]
    evaluate(data_dir, 0, dict.fromkeys(symbols, 1.0))
    summary = evaluate(data_dir, 1, dict.fromkeys(symbols, 3.3))
    assert summary["delivered"] == 400 and summary["messages"] == len(telegram.messages) > 1
    for number, message in enumerate(telegram.messages, 1):
        assert utf16_units(message["html"]) <= 4096
        assert message["parse_mode"] == "HTML"
        assert message["text"].split("\n")[0].endswith(f"({number}/{len(telegram.messages)})")
    assert sorted(line.split()[1] for line in sent_lines(telegram)) == symbols  # each exactly once, in order
    ids = query(data_dir, "SELECT count(DISTINCT telegram_message_id) FROM ops.alerts WHERE delivered")[0][0]
    assert ids == len(telegram.messages)


def test_split_message_counts_utf16_units_and_escapes():
    lines = [f"▲ <b>{escape('A<&>' + str(i))}</b> " + "😀" * 30 for i in range(200)]
    messages = split_message(lines, header="<b>h</b>")
    assert len(messages) > 1 and all(utf16_units(m) <= 4096 for m in messages)
    assert all(parse_html(m) for m in messages)  # valid for Telegram's HTML parser
    assert sum(m.count("\n") for m in messages) == 200


def test_429_retry_after_is_honoured(data_dir, telegram):
    evaluate(data_dir, 0, {"BTC": 2.0})
    telegram.flood(retry_after=1)
    summary = evaluate(data_dir, 1, {"BTC": 3.2})
    assert summary["delivered"] == 1
    statuses = [r["status"] for r in telegram.requests]
    assert statuses == [429, 200]
    assert telegram.requests[1]["at"] - telegram.requests[0]["at"] >= 0.95  # waited retry_after
    assert query(data_dir, "SELECT http_attempts, delivered FROM ops.alerts") == [(2, True)]


def test_other_failures_are_retried_a_bounded_number_of_times_then_recorded(data_dir, telegram, fast_retries):
    evaluate(data_dir, 0, {"BTC": 2.0})
    telegram.queue(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, times=10)
    summary = evaluate(data_dir, 1, {"BTC": 3.2})  # does not raise
    assert summary["delivered"] == 0 and len(telegram.requests) == 3
    rows = query(data_dir, "SELECT delivered, http_attempts, error FROM ops.alerts")
    assert rows == [(False, 3, "HTTP 502: 502 Bad Gateway")]


def test_a_400_is_not_retried_and_a_message_too_long_is_sent_in_halves(telegram):
    bot = TelegramBot(telegram.base_url, TOKEN, "42")
    too_long = "\n".join(["header", *(f"line {i} " + "x" * 90 for i in range(60))])  # ~5600 units
    [delivery] = bot.send_all([too_long])
    assert delivery.ok and len(telegram.messages) == 2
    assert [r["status"] for r in telegram.requests] == [400, 200, 200]
    assert all(m["text"].startswith("header\n") for m in telegram.messages)

    [delivery] = bot.send_all(["x" * 5000])  # one line: nothing to split at
    assert not delivery.ok and delivery.error == "HTTP 400: 400 Bad Request: message is too long"
    assert delivery.attempts == 1

    wrong_chat = TelegramBot(telegram.base_url, TOKEN, "7")
    [delivery] = wrong_chat.send_all(["hello"])
    assert not delivery.ok and "chat not found" in delivery.error and delivery.attempts == 1


def test_request_urls_logged_by_httpx_are_redacted(telegram, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    [delivery] = TelegramBot(telegram.base_url, TOKEN, "42").send_all(["hello"])
    assert delivery.ok and "/bot<redacted>/sendMessage" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in repr(TelegramBot(telegram.base_url, TOKEN, "42"))


def test_html_telegram_rejects_is_resent_as_plain_text(telegram):
    [delivery] = TelegramBot(telegram.base_url, TOKEN, "42").send_all(["<b>BTC</b> 3 <blink>x</blink>"])
    assert delivery.ok
    assert telegram.messages[0]["parse_mode"] is None and telegram.messages[0]["text"] == "BTC 3 x"


def test_no_token_records_alerts_as_not_delivered_and_succeeds(data_dir, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_POSITIONING_TELEGRAM", raising=False)
    evaluate(data_dir, 0, {"BTC": 2.0})
    summary = evaluate(data_dir, 1, {"BTC": 3.2})
    assert summary["attempted"] == 1 and summary["delivered"] == 0
    [(delivered, error, sent_at)] = query(data_dir, "SELECT delivered, error, sent_at FROM ops.alerts")
    assert not delivered and sent_at is None and error.startswith("not delivered: no bot token")
    # A token but no chat id: the same, with its own reason.
    monkeypatch.setenv("AIRFLOW_CONN_POSITIONING_TELEGRAM", "https://:abc@api.telegram.org")
    summary = evaluate(data_dir, 2, {"BTC": 2.0})
    assert summary["not_delivered_reasons"] == [
        "not delivered: no chat id: set chat_id in the extra of the positioning_telegram connection"
    ]


# ------------------------------------------------------------------------------------------ through the DAG


def airflow_home() -> Path:
    import os

    return Path(os.environ["AIRFLOW_HOME"])


def xcom_values(dag_run) -> list[str]:
    """Every XCom of the run, as stored in the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id == dag_run.run_id).all()
        return [f"{row.task_id} {row.key} {json.dumps(row.value, default=str)}" for row in rows]


def warehouse_text(data_dir: Path) -> str:
    """Every table of the warehouse, every column cast to text."""
    parts = []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            rows = con.execute(f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{schema}"."{table}"').fetchall()
            parts.append(f"{schema}.{table} {rows}")
    assert len(tables) > 10
    return "\n".join(parts)


def test_dag_runs_with_a_token_alert_once_and_leak_the_token_nowhere(
    positioning_dag, sim, data_dir, telegram, caplog, capfd
):
    caplog.set_level(logging.INFO, logger="httpx")  # httpx logs every request URL: the line a token leaks through
    sim.add_fault("binance", kind="status", status=451)  # a venue failing: an operational alert with N = 1
    conf = {**NO_ALERTS, "symbols": ["BTC", "ETH", "PEPE", "ORDI"], "alertLsThreshold": 1.5, "alertVenueFailures": 1}
    conf |= {"alertOnExtremeSkew": True, "alertOnSignals": True}
    dag_run = positioning_dag.test(logical_date=INTERVAL_END, run_conf=conf)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["binance.extract"] == "failed" and states["alert"] == "success" and dag_run.state == "success"
    assert len(telegram.messages) == 1, xcom_values(dag_run)
    lines = telegram.messages[0]["text"].split("\n")
    assert "venue binance failed 1 run in a row" in lines[1]  # operational alerts first
    assert any(line.startswith("▲ PEPE now EXTREME_LONG (avg L/S ") for line in lines)
    assert any(line.startswith("▼ ORDI now EXTREME_SHORT (avg L/S ") for line in lines)

    rerun = positioning_dag.test(logical_date=INTERVAL_END, run_conf=conf)  # same interval: nothing re-sent
    assert rerun.state == "success" and len(telegram.messages) == 1
    [alert_xcom] = [v for v in xcom_values(rerun) if v.startswith("alert return_value")]
    assert f'"already_delivered": {len(lines) - 1}' in alert_xcom

    # The same interval once more, now blocked by the quality gate: an operational alert, and the run still fails
    # (the alert task is a teardown: it runs after a failure and does not turn the run green).
    sim.clear_faults()
    for venue in registry.names():  # every venue answers with no rows: the gate blocks
        sim.add_fault(venue, kind="empty_data")
    blocked = positioning_dag.test(logical_date=INTERVAL_END, run_conf=conf)
    states = {ti.task_id: ti.state for ti in blocked.get_task_instances()}
    assert states["load"] == "failed" and states["build_marts"] == "upstream_failed"
    assert states["alert"] == "success" and blocked.state == "failed"
    assert len(telegram.messages) == 2
    assert "quality gate blocked publication of this interval" in telegram.messages[1]["text"]

    # The token appears nowhere: data dir (raw, manifests, exports, warehouse), task logs, XCom, captured output.
    haystacks: dict[str, str] = {}
    for root in (data_dir, airflow_home() / "logs"):
        for path in root.rglob("*") if root.exists() else ():
            if path.is_file():
                haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any("/raw/" in name for name in haystacks) and any("/exports/" in name for name in haystacks)
    haystacks["warehouse tables"] = warehouse_text(data_dir)
    haystacks["xcom"] = "\n".join(xcom_values(dag_run) + xcom_values(rerun) + xcom_values(blocked))
    with sqlite3.connect(airflow_home() / "airflow.db") as metadata:
        haystacks["metadata db"] = "\n".join(
            str(row)
            for table in ("xcom", "dag_run", "task_instance", "log", "rendered_task_instance_fields")
            for row in metadata.execute(f"SELECT * FROM {table}").fetchall()
        )
    captured = capfd.readouterr()
    haystacks["captured logs"] = caplog.text + captured.out + captured.err
    assert "alerts: sending" in haystacks["captured logs"]  # the alert task's log was captured
    assert "/bot<redacted>/sendMessage" in haystacks["captured logs"]  # httpx's request line, redacted by us
    assert "quality_blocked" in haystacks["warehouse tables"]
    for name, text in haystacks.items():
        for secret in SECRET_FORMS:
            assert secret not in text, f"the bot token leaked into {name}"
