"""Where things live: the repository root, the data directory, the SQL models."""

from __future__ import annotations

import os
from pathlib import Path

# plugins/positioning/config.py -> repository root (the package is installed editable into .venv).
REPO_ROOT = Path(__file__).resolve().parents[2]

PUBLIC_BASE_URLS = {
    "binance": "https://fapi.binance.com",
    "okx": "https://www.okx.com",
    "bitget": "https://api.bitget.com",
    "strike": "https://api.strike.markets",
    "telegram": "https://api.telegram.org",
}

CONNECTION_IDS = {name: f"positioning_{name}" for name in PUBLIC_BASE_URLS}


def data_dir() -> Path:
    """``$POSITIONING_DATA_DIR``, default ``data/`` in the repository root."""
    configured = os.environ.get("POSITIONING_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / "data"


def raw_dir() -> Path:
    return data_dir() / "raw"


def exports_dir() -> Path:
    return data_dir() / "exports"


def warehouse_path() -> Path:
    return data_dir() / "warehouse.duckdb"


def sql_dir() -> Path:
    configured = os.environ.get("POSITIONING_SQL_DIR")
    return Path(configured) if configured else REPO_ROOT / "include" / "sql"
