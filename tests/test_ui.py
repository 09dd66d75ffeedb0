"""Airflow run the way users run it: ``positioning airflow --sim`` (api-server, scheduler, dag-processor, triggerer
and the venue simulator), driven through the React UI in headless Chromium and through the REST API.

* The module's Airflow starts once (about 30-45 s on 2 cores) as a subprocess in its own session, with a temporary
  ``AIRFLOW_HOME`` and ``POSITIONING_DATA_DIR``, in **password mode** (the default users get): the tests read the
  generated admin password, get a JWT from ``POST /auth/token``, and give it to the browser as the ``_token`` cookie.
* ``[scheduler] use_job_schedule`` is off so that the scheduler does not start the hourly run (50 symbols, about a
  minute at Bitget's 1 request/s) beside the runs under test; manual and REST triggers run as usual.
* The browser test needs Debian's Chromium (``apt-get install chromium``) and is skipped, saying so, without it.
  Screenshots land in ``$POSITIONING_ARTIFACTS/screenshots`` (default ``artifacts/screenshots`` in the repository).
* The last test stops Airflow with SIGTERM, as Ctrl-C would, and checks no component process is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
import httpx
import pytest
from conftest import REPO
from positioning.sim import free_port

CHROMIUM = Path(os.environ.get("POSITIONING_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("POSITIONING_ARTIFACTS", REPO / "artifacts")) / "screenshots"
SYMBOLS = ["BTC", "ETH"]  # small on purpose: Bitget's ratio endpoint allows 1 request/s per symbol
START_TIMEOUT = 150.0
RUN_TIMEOUT = 150.0
TERMINAL_STATES = {"success", "failed"}


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process (Linux /proc; zombies excluded)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ")".
            state, ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if state != "Z":
                table[int(entry.name)] = (int(ppid), int(pgrp))
    return table


def descendants(root: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


@dataclass
class RunningAirflow:
    process: subprocess.Popen
    base_url: str
    home: Path
    data_dir: Path
    log_path: Path
    token: str = ""
    api: httpx.Client = field(init=False)
    stopped_in: float | None = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def component_groups(self) -> set[int]:
        """Process groups of the components (each started in its own session) and everything they forked."""
        table = process_table()
        return {table[pid][1] for pid in descendants(self.process.pid) if pid in table}

    def stop(self) -> list[str]:
        """SIGTERM ``positioning airflow`` (what Ctrl-C does) and return the component processes still alive."""
        if self.stopped_in is not None:
            return []
        groups = self.component_groups()
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=60)
        self.stopped_in = time.monotonic() - started
        left = [pid for pid, (_, pgrp) in process_table().items() if pgrp in groups | {self.process.pid}]
        described = []
        for pid in left:
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                described.append(f"{pid}: {command}")
        for group in groups | {self.process.pid}:  # never leave strays behind for the next test, whatever happened
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        self.api.close()
        return described

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = self.api.get(f"/api/v2/dags/positioning/dagRuns/{quote(run_id, safe='')}")
            except httpx.TransportError:  # a busy api-server (SQLite, 2 cores) may answer one poll late: poll again
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                continue
            run = response.raise_for_status().json()
            if run["state"] in TERMINAL_STATES:
                if run["state"] != "success":
                    pytest.fail(f"run {run_id} ended {run['state']}: {self.failed_tasks(run_id)}")
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {run['state']} after {timeout:.0f} s: {self.failed_tasks(run_id)}")
            time.sleep(1)

    def failed_tasks(self, run_id: str) -> list[str]:
        path = f"/api/v2/dags/positioning/dagRuns/{quote(run_id, safe='')}/taskInstances"
        instances = self.api.get(path).json().get("task_instances", [])
        return [f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in instances if ti["state"] != "success"]

    def run_ids(self) -> set[str]:
        runs = self.api.get("/api/v2/dags/positioning/dagRuns", params={"limit": 100}).raise_for_status().json()
        return {run["dag_run_id"] for run in runs["dag_runs"]}


def start_airflow(tmp: Path) -> RunningAirflow:
    port, sim_port = free_port(), free_port()
    home, data = tmp / "airflow-home", tmp / "data"
    # Nothing of the test session's own Airflow configuration (conftest's metadata DB, connections) leaks in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "POSITIONING_DATA_DIR": str(data),
            "POSITIONING_EXTRACT_RETRIES": "0",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    positioning = Path(sys.executable).with_name("positioning")
    command = [str(positioning)] if positioning.exists() else [sys.executable, "-m", "positioning.cli"]
    command += ["airflow", "--sim", "--port", str(port), "--sim-port", str(sim_port), "--airflow-home", str(home)]
    log_path = tmp / "positioning-airflow.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp
        )
    airflow = RunningAirflow(process, f"http://127.0.0.1:{port}", home, data, log_path)
    airflow.api = httpx.Client(base_url=airflow.base_url, timeout=30)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        wait_until(airflow, deadline, "the four components to report healthy", components_healthy)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        response = airflow.api.post("/auth/token", json={"username": "admin", "password": password})
        airflow.token = response.raise_for_status().json()["access_token"]
        airflow.api.headers["Authorization"] = f"Bearer {airflow.token}"
        wait_until(airflow, deadline, "the positioning DAG to be parsed", dag_parsed)
    except BaseException:
        airflow.stop()
        raise
    return airflow


def components_healthy(airflow: RunningAirflow) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        health = airflow.api.get("/api/v2/monitor/health").json()
        return all(
            health[part]["status"] == "healthy" for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )
    return False


def dag_parsed(airflow: RunningAirflow) -> bool:
    response = airflow.api.get("/api/v2/dags/positioning")
    return response.status_code == 200 and not response.json()["is_paused"]


def wait_until(airflow: RunningAirflow, deadline: float, what: str, ready) -> None:
    while not ready(airflow):
        if airflow.process.poll() is not None:
            pytest.fail(f"positioning airflow exited with {airflow.process.returncode}:\n{airflow.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{airflow.log_tail()}")
        time.sleep(1)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> Iterator[RunningAirflow]:
    started = time.monotonic()
    running = start_airflow(tmp_path_factory.mktemp("ui"))
    print(f"positioning airflow ready in {time.monotonic() - started:.0f} s at {running.base_url}")
    yield running
    left = running.stop()
    assert not left, f"processes left after stopping positioning airflow: {left}"


def snapshot_rows(data_dir: Path, ts: datetime) -> dict[str, dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            "SELECT * FROM marts.symbol_snapshot WHERE ts = ?", [ts.astimezone(UTC).replace(tzinfo=None)]
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return {row["symbol"]: row for row in rows}


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_snapshot(airflow: RunningAirflow, run: dict) -> dict[str, dict]:
    rows = snapshot_rows(airflow.data_dir, parse_ts(run["data_interval_end"]))
    assert sorted(rows) == SYMBOLS
    for symbol, row in rows.items():
        assert row["venues_with_oi"] == 6, (symbol, row)  # BTC and ETH are listed on all six simulated venues
        assert row["total_oi_usd"] > 0 and row["avg_ls_ratio"] > 0 and row["skew_label"] != "NO_DATA", (symbol, row)
    return rows


# ------------------------------------------------------------------------------------------------ the browser
def open_trigger_form(page):
    """Click "Trigger" until the modal is there: a click landing before the page's data has loaded is lost."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    expect(page.get_by_text("Latest Dag Version")).to_be_visible()
    form = page.get_by_role("dialog")
    for _ in range(5):
        page.get_by_role("button", name="Trigger Dag", exact=True).click()
        with contextlib.suppress(PlaywrightTimeout):
            form.get_by_text("Trigger Dag - positioning").wait_for(timeout=4_000)
            return form
    pytest.fail("the trigger form did not open")


def goto_translated(page, url: str) -> None:
    """Open a page and wait until its words are there: under load the UI can first render its i18n keys
    ("states.success") while the translations are still on their way; a page whose translations never came is
    reloaded (twice at most)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    untranslated = page.get_by_role("link", name="nav.dags", exact=True)
    for _ in range(3):
        page.goto(url)
        page.locator('a[href="/dags"]').first.wait_for()
        with contextlib.suppress(PlaywrightTimeout):
            untranslated.first.wait_for(state="detached", timeout=20_000)
            return
    pytest.fail(f"the Airflow UI at {url} never loaded its translations")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")
def test_trigger_form_shows_every_param_and_runs_the_dag_from_the_browser(airflow):
    from playwright.sync_api import expect, sync_playwright
    from positioning.params import dag_params

    params = dag_params()
    sections: dict[str, list[str]] = {}
    for name, param in params.items():
        sections.setdefault(param.schema["section"], []).append(name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        context.add_cookies([{"name": "_token", "value": airflow.token, "url": airflow.base_url}])  # password mode
        page = context.new_page()
        try:
            # The DAG list → the positioning DAG → its trigger form (a modal, no URL of its own).
            goto_translated(page, f"{airflow.base_url}/dags")
            page.locator('a[href$="/dags/positioning"]').first.click()  # the name link, not the tag filter
            page.wait_for_url("**/dags/positioning")
            form = open_trigger_form(page)

            # Every param, section by section (the sections are an accordion: one open at a time).
            for section, names in sections.items():
                form.get_by_role("button", name=section, exact=True).click()
                region = form.get_by_role("region", name=section)
                for name in names:
                    param = params[name]
                    field_group = region.get_by_role("group").filter(has=page.locator(f'[name="element_{name}"]'))
                    expect(field_group, f"param {name}").to_have_count(1)
                    expect(field_group.locator("label").first).to_contain_text(param.schema["title"])
                    expect(field_group.locator('[data-part="helper-text"]')).to_have_text(param.description)
                    expect(field_group.get_by_text(param.description)).to_be_visible()
                if section == "Universe":  # an array param: a textarea, one item per line
                    form.locator('textarea[name="element_symbols"]').fill("\n".join(SYMBOLS))
                if section == "Ratios":  # an enum: a select; pick 4h from its options
                    form.get_by_label(params["lsPeriod"].schema["title"]).click()
                    page.get_by_role("option", name="4h", exact=True).click()
                    expect(form.locator('input[name="element_lsPeriod"]')).to_have_value("4h")
            form.get_by_role("button", name="Ratios", exact=True).click()
            expect(form.get_by_role("region", name=list(sections)[-1])).to_be_hidden()
            page.wait_for_timeout(500)  # let the accordion's animation settle before the screenshot
            page.screenshot(path=SCREENSHOTS / "trigger-form.png")

            # What will be sent: the form's generated conf JSON (Advanced Options).
            form.get_by_role("button", name="Advanced Options", exact=True).click()
            conf_editor = form.get_by_role("region", name="Advanced Options")
            # The editor renders only the lines in view (about 11): with six venues' include params lsPeriod is
            # below them, so look at the end of the JSON, then at its start.
            conf_editor.get_by_role("textbox", name="Editor content").focus()
            page.keyboard.press("Control+End")
            expect(conf_editor).to_contain_text('"lsPeriod": "4h"')
            page.keyboard.press("Control+Home")
            expect(conf_editor).to_contain_text('"BTC"')
            page.screenshot(path=SCREENSHOTS / "trigger-form-conf.png")

            before = airflow.run_ids()
            form.get_by_role("button", name="Trigger", exact=True).click()
            page.wait_for_url("**/dags/positioning/runs/**")
            run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])
            assert run_id not in before
            run = airflow.wait_for_run(run_id)
            assert run["conf"]["symbols"] == SYMBOLS and run["conf"]["lsPeriod"] == "4h"

            goto_translated(page, f"{airflow.base_url}/dags/positioning/runs/{quote(run_id, safe='')}")
            expect(page.get_by_text(run_id).first).to_be_visible()
            expect(page.get_by_text("Success", exact=True).first).to_be_visible()
            expect(
                page.get_by_test_id("table-list").get_by_role("link", name="build_marts", exact=True)
            ).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "run-success.png", full_page=True)
        except BaseException:
            page.screenshot(path=SCREENSHOTS / "ui-failure.png", full_page=True)  # what the browser saw
            raise
        finally:
            browser.close()
    assert_snapshot(airflow, run)
    for name in ("trigger-form.png", "trigger-form-conf.png", "run-success.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name
    print(f"screenshots: {SCREENSHOTS}")


# ------------------------------------------------------------------------------------------------ REST
def test_rest_trigger_with_conf_runs_to_success_and_publishes_the_snapshot(airflow):
    conf = {"symbols": [s.lower() for s in SYMBOLS], "lsPeriod": "1h", "sortBy": "symbol_asc"}
    response = airflow.api.post(
        "/api/v2/dags/positioning/dagRuns", json={"logical_date": datetime.now(UTC).isoformat(), "conf": conf}
    )
    assert response.status_code == 200, response.text
    started = time.monotonic()
    run = airflow.wait_for_run(response.json()["dag_run_id"])
    print(f"REST run {run['dag_run_id']} succeeded in {time.monotonic() - started:.0f} s")
    assert run["conf"] == conf
    interval_end = parse_ts(run["data_interval_end"])
    rows = assert_snapshot(airflow, run)  # lower-case symbols were normalised
    assert all(row["ls_metrics_count"] == 3 for row in rows.values())

    # The run's exports: the snapshot in sortBy order, every mart as Parquet, and the dashboard.
    exports = airflow.data_dir / "exports"
    snapshot = json.loads((exports / "snapshots" / f"symbol_snapshot_{interval_end:%Y%m%dT%H%M%SZ}.json").read_text())
    assert [row["symbol"] for row in snapshot] == sorted(SYMBOLS)
    assert (exports / "marts" / "positioning_signals.parquet").exists()
    assert 'class="oi-seg" data-symbol="BTC"' in (exports / "dashboard" / "index.html").read_text()


def test_rest_backfill_runs_past_hours_from_the_history_endpoints(airflow):
    """``POST /api/v2/backfills`` (what the UI's Backfill button sends): two past hours run to success, with the
    history endpoints' values as facts and the snapshot-only metrics recorded as not available."""
    last_start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    first_start = last_start - timedelta(hours=1)
    before = airflow.run_ids()
    body = {
        "dag_id": "positioning",
        "from_date": first_start.isoformat(),
        "to_date": last_start.isoformat(),
        "max_active_runs": 2,
        "dag_run_conf": {"symbols": SYMBOLS},
    }
    # On SQLite, Airflow refuses a backfill with 503 "Database is locked" while the scheduler writes; a client
    # tries again (the test harness's metadata database is SQLite; production uses PostgreSQL).
    for _ in range(10):
        response = airflow.api.post("/api/v2/backfills", json=body)
        if response.status_code != 503 or "Database is locked" not in response.text:
            break
        time.sleep(2)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 60
    while len(created := sorted(airflow.run_ids() - before)) < 2:
        assert time.monotonic() < deadline, f"the backfill created {created}"
        time.sleep(1)
    assert all(run_id.startswith("backfill__") for run_id in created), created
    runs = [airflow.wait_for_run(run_id) for run_id in created]
    ends = sorted(parse_ts(run["data_interval_end"]).replace(tzinfo=None) for run in runs)
    assert ends == [first_start.replace(tzinfo=None) + timedelta(hours=h) for h in (1, 2)]
    with duckdb.connect(str(airflow.data_dir / "warehouse.duckdb"), read_only=True) as con:
        facts = con.execute(
            "SELECT ts, venue, metric, count(DISTINCT symbol) FROM core.fact_positioning WHERE ts IN (?, ?) "
            "GROUP BY ALL ORDER BY ALL",
            ends,
        ).fetchall()
        unavailable = con.execute(
            "SELECT DISTINCT venue, kind FROM ops.interval_unavailable WHERE ts IN (?, ?) ORDER BY ALL", ends
        ).fetchall()
    for end in ends:  # Binance's OI history and three ratios, OKX's and Bybit's ratios, Bybit's OI coins: for both
        metrics = {(venue, metric): count for ts, venue, metric, count in facts if ts == end}  # symbols and hours
        assert metrics[("binance", "oi_usd")] == len(SYMBOLS)
        assert metrics[("okx", "ls_account")] == len(SYMBOLS)
        assert metrics[("bybit", "ls_account")] == metrics[("bybit", "oi_coins")] == len(SYMBOLS)
        assert {venue for venue, _ in metrics} == {"binance", "okx", "bybit"}  # nothing from snapshot-only venues
    assert ("bitget", "snapshot_only") in unavailable and ("strike", "snapshot_only") in unavailable


@pytest.mark.parametrize(
    ("conf", "field_name"),
    [
        ({"symbols": ["../x"]}, "symbols"),
        ({"symbols": ["BTC'; DROP TABLE marts.symbol_snapshot; --"]}, "symbols"),
        ({"symbols": [f"S{i}" for i in range(10_000)]}, "symbols"),
        ({"lsPeriod": "3h"}, "lsPeriod"),
        ({"sortBy": "random"}, "sortBy"),
        ({"includeOkx": "yes"}, "includeOkx"),
        ({"alertLsThreshold": "3"}, "alertLsThreshold"),
    ],
    ids=["path", "sql", "too-many", "lsPeriod", "sortBy", "flag", "threshold-string"],
)
def test_rest_rejects_bad_conf_with_400_naming_the_field_and_creates_no_run(airflow, conf, field_name):
    before = airflow.run_ids()
    response = airflow.api.post(
        "/api/v2/dags/positioning/dagRuns", json={"logical_date": datetime.now(UTC).isoformat(), "conf": conf}
    )
    assert response.status_code == 400, response.text
    assert f"param {field_name}" in response.json()["detail"]
    assert airflow.run_ids() == before


# ------------------------------------------------------------------------------------------------ stopping
def test_sigterm_stops_every_component_and_leaves_no_process(airflow):
    """Last in the module: what Ctrl-C on ``make airflow`` does. The fixture's teardown then has nothing to do."""
    log = airflow.log_path.read_text(errors="replace")
    assert f"[airflow] {airflow.base_url}" in log and "login: admin" in log and "Ctrl-C stops everything" in log
    groups = airflow.component_groups()
    assert len(groups) >= 4, groups  # api-server, scheduler, dag-processor, triggerer (and what they forked)
    left = airflow.stop()
    assert not left, f"left running after SIGTERM: {left}"
    assert airflow.process.returncode == 0, airflow.log_tail()
    assert "[airflow] stopping" in airflow.log_path.read_text(errors="replace")
    print(f"positioning airflow stopped in {airflow.stopped_in:.1f} s")
    assert airflow.stopped_in < 30
