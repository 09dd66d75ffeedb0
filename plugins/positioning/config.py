"""Where things live: the repository root, the data directory, the SQL models."""

from __future__ import annotations

import os
from pathlib import Path

# plugins/positioning/config.py -> repository root (the package is installed editable into .venv).
REPO_ROOT = Path(__file__).resolve().parents[2]

# Services that are not venues (the venues' URLs and connection ids are declared in their adapters).
# Services that are not venues: Telegram, and the Binance data archive (the bulk fill's source of old days).
SERVICE_URLS = {"telegram": "https://api.telegram.org", "binance_archive": "https://data.binance.vision"}


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
