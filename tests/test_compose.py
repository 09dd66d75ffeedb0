"""docker-compose.yaml: the services, image, mounts and environment users rely on, checked by parsing the file, and
the whole file validated by ``docker-compose config`` (Debian's docker-compose package) when it is installed.

There is no Docker engine in CI: nothing here pulls an image or starts a container (see the README for what was
and was not verified).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
IMAGE = "apache/airflow:3.3.2-python3.11"
AIRFLOW_SERVICES = {
    "airflow-init": None,
    "api-server": "api-server",
    "scheduler": "scheduler",
    "dag-processor": "dag-processor",
    "triggerer": "triggerer",
}
MOUNTS = {  # host path (relative to the repository) -> container path, for every Airflow service
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./include": "/opt/airflow/include",
    "./requirements.txt": "/opt/airflow/positioning-requirements.txt",
}
DATA_DIR = "/opt/airflow/positioning-data"
VENUES = ("BINANCE", "OKX", "BITGET", "STRIKE", "BYBIT", "HYPERLIQUID")
DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def volume_map(service: dict) -> dict[str, str]:
    """container path -> source for a service's short-syntax volumes."""
    mapped = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mapped[target] = source
    return mapped


def test_services_images_and_commands(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *AIRFLOW_SERVICES, "venue-sim"}
    assert re.fullmatch(r"postgres:\d+", services["postgres"]["image"])
    assert "healthcheck" in services["postgres"]
    requirements = (REPO / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", requirements, re.MULTILINE).group(1)
    assert f"apache/airflow:{pinned}-python3.11" == IMAGE  # the image follows the pinned Airflow version
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["image"] == "${AIRFLOW_IMAGE_NAME:-" + IMAGE + "}", name
        if command:
            assert service["command"] == command, name
            # Components wait for the init service (DB migrated, pools created) and a healthy Postgres.
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
            assert "healthcheck" in service, name
    init_script = "\n".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init_script
    for pool in ("positioning_$${venue}", "positioning_warehouse"):
        assert f"pools set {pool}" in init_script or f'pools set "{pool}"' in init_script
    assert services["api-server"]["ports"] == ["${AIRFLOW_PORT:-8080}:8080"]


def test_the_simulator_is_an_optional_profile(compose):
    sim = compose["services"]["venue-sim"]
    assert sim["profiles"] == ["sim"]
    assert sim["command"][:4] == ["python", "-m", "positioning.cli", "sim"]
    assert sim["command"][sim["command"].index("--port") + 1] == "8900"
    assert not any("profiles" in compose["services"][name] for name in ("postgres", *AIRFLOW_SERVICES))


def test_project_mounts_data_volume_and_environment(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        volumes = volume_map(service)
        for source, target in MOUNTS.items():
            assert volumes.get(target) == source, (name, target)
            assert (REPO / source).exists(), source
        assert volumes[DATA_DIR] == "positioning-data", name  # a named volume: survives container re-creation
        environment = service["environment"]
        assert environment["POSITIONING_DATA_DIR"] == DATA_DIR
        assert environment["PYTHONPATH"] == "/opt/airflow/plugins"  # the package, from the mounted plugins folder
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
        assert environment["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW__API_AUTH__JWT_SECRET:?")
        assert service["env_file"] == [".env"], name
    assert "positioning-data" in compose["volumes"]
    # The tasks run in the scheduler's container (LocalExecutor): that is where the requirements get installed.
    scheduler_env = services["scheduler"]["environment"]
    assert scheduler_env["_PIP_ADDITIONAL_REQUIREMENTS"] == "-r /opt/airflow/positioning-requirements.txt"
    # The package finds include/sql through its own location: /opt/airflow/plugins/positioning -> /opt/airflow.
    assert (REPO / "plugins" / "positioning" / "config.py").exists() and (REPO / "include" / "sql").is_dir()
    assert (REPO / "plugins" / ".airflowignore").read_text().split() == ["positioning"]


def env_example() -> dict[str, str]:
    """The assignments of .env.example, commented-out ones included (last one wins)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values.setdefault(match.group(1), [])
            values[match.group(1)].append((line.startswith("#"), match.group(2)))
    return values


def test_env_example_documents_connections_and_holds_no_secret():
    values = env_example()
    for venue in VENUES:
        choices = values[f"AIRFLOW_CONN_POSITIONING_{venue}"]
        assert all(commented for commented, _ in choices), venue  # default: public APIs, nothing to set
        assert {uri for _, uri in choices} >= {"http://venue-sim:8900"}, venue
        assert any(uri.startswith("https://") for _, uri in choices), venue
    telegram = values["AIRFLOW_CONN_POSITIONING_TELEGRAM"]
    assert len(telegram) == 1 and telegram[0][0], "the Telegram connection is a commented placeholder"
    assert "YOUR_BOT_TOKEN" in telegram[0][1] and not re.search(r"\d{6,}:[A-Za-z0-9_-]{30,}", telegram[0][1])
    assert values["AIRFLOW__API_AUTH__JWT_SECRET"] == [(False, "")]  # required, and each user generates their own
    assert ".env" in (REPO / ".gitignore").read_text().split()


def compose_project(tmp_path: Path, jwt_secret: str | None) -> Path:
    """A copy of the compose file with .env made from .env.example the way the README says (in a temp dir, so the
    repository's own .env, if any, is neither read nor written)."""
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yaml")
    env = ENV_EXAMPLE.read_text()
    if jwt_secret is not None:
        env = env.replace("AIRFLOW__API_AUTH__JWT_SECRET=\n", f"AIRFLOW__API_AUTH__JWT_SECRET={jwt_secret}\n")
    (tmp_path / ".env").write_text(env)
    return tmp_path


def docker_compose(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DOCKER_COMPOSE, "--project-directory", str(project), "-f", str(project / "docker-compose.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose not installed (apt-get install docker-compose)")
def test_docker_compose_config_validates_the_file(tmp_path):
    project = compose_project(tmp_path, "a-test-secret")
    checked = docker_compose(project, "config", "-q")
    assert checked.returncode == 0, checked.stderr
    resolved = yaml.safe_load(docker_compose(project, "--profile", "sim", "config").stdout)
    services = resolved["services"]
    assert {name: services[name]["image"] for name in AIRFLOW_SERVICES} == dict.fromkeys(AIRFLOW_SERVICES, IMAGE)
    for name in AIRFLOW_SERVICES:
        environment = services[name]["environment"]
        assert environment["AIRFLOW__API_AUTH__JWT_SECRET"] == "a-test-secret"
        assert not any(key.startswith("AIRFLOW_CONN_") for key in environment)  # defaults: public venue APIs
    assert services["api-server"]["ports"] == [{"published": 8080, "target": 8080}]
    assert services["venue-sim"]["command"][-4:] == ["--port", "8900", "--latency", "0.05"]


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose not installed (apt-get install docker-compose)")
def test_docker_compose_refuses_to_start_without_the_jwt_secret(tmp_path):
    refused = docker_compose(compose_project(tmp_path, None), "config", "-q")
    assert refused.returncode != 0
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in refused.stderr


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose not installed (apt-get install docker-compose)")
def test_docker_compose_sim_connections_resolve_to_the_simulator(tmp_path):
    project = compose_project(tmp_path, "a-test-secret")
    env = (project / ".env").read_text()
    for venue in VENUES:  # what the README tells users to uncomment for offline runs
        env = env.replace(
            f"# AIRFLOW_CONN_POSITIONING_{venue}=http://venue-sim", f"AIRFLOW_CONN_POSITIONING_{venue}=http://venue-sim"
        )
    (project / ".env").write_text(env)
    resolved = yaml.safe_load(docker_compose(project, "--profile", "sim", "config").stdout)
    for venue in VENUES:
        assert (
            resolved["services"]["scheduler"]["environment"][f"AIRFLOW_CONN_POSITIONING_{venue}"]
            == "http://venue-sim:8900"
        )
