"""Venue base URLs (and the Telegram bot) from Airflow connections, with the public URL as the default.

``positioning_<venue>`` connections hold ``<scheme>://<host>[:<port>]``; overridable as usual with
``AIRFLOW_CONN_POSITIONING_<VENUE>`` environment variables (e.g. ``http://127.0.0.1:9100``). Outside a task
(the CLI) only the environment variables are read, so the CLI never needs the metadata database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from positioning.config import SERVICE_URLS


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    password: str | None = None  # the Telegram bot token; never logged
    extra: dict[str, str] | None = None


def _from_uri(uri: str) -> Endpoint:
    parts = urlsplit(uri)
    scheme = parts.scheme.replace("-", "_")
    if scheme in {"http", "https"}:
        pass
    elif scheme.endswith("http") or scheme.endswith("https"):  # e.g. "generic+https" styles
        scheme = "https" if scheme.endswith("https") else "http"
    else:
        scheme = "https"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    extra = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return Endpoint(f"{scheme}://{host}{port}", unquote(parts.password) if parts.password else None, extra or None)


def _from_airflow(conn_id: str) -> Endpoint | None:
    try:
        from airflow.sdk import Connection
    except ImportError:  # pragma: no cover - the library works without Airflow
        return None
    try:
        connection = Connection.get(conn_id)
    except Exception:  # not defined anywhere: the public URL applies
        return None
    host = connection.host or ""
    if "://" in host:  # a full URL typed into the host field
        base = host.rstrip("/")
    else:
        scheme = connection.conn_type if connection.conn_type in {"http", "https"} else (connection.schema or "https")
        if scheme not in {"http", "https"}:
            scheme = "https"
        base = f"{scheme}://{host}" + (f":{connection.port}" if connection.port else "")
    extra = connection.extra_dejson if connection.extra else {}
    return Endpoint(base, connection.password or None, {k: str(v) for k, v in extra.items()} or None)


def resolve(name: str, *, use_airflow: bool = True) -> Endpoint:
    """The endpoint for ``name`` (a venue or ``telegram``)."""
    if name in SERVICE_URLS:
        conn_id, public_url = f"positioning_{name}", SERVICE_URLS[name]
    else:
        from positioning import registry

        spec = registry.get(name)
        conn_id, public_url = spec.connection_id, spec.public_url
    env_uri = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if env_uri and not env_uri.lstrip().startswith("{"):
        return _from_uri(env_uri)
    if use_airflow and (found := _from_airflow(conn_id)) is not None:
        return found
    return Endpoint(public_url)


def base_url(name: str, *, use_airflow: bool = True) -> str:
    return resolve(name, use_airflow=use_airflow).base_url
