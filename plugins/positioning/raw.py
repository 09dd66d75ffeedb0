"""Raw landing: every HTTP response (good or bad) written verbatim with its request metadata.

Layout (the design's)::

    $POSITIONING_DATA_DIR/raw/venue=<v>/endpoint=<e>/date=<YYYY-MM-DD>/<interval_end>__<run_id>__<n>.json

Each file is one JSON object ``{"meta": {...}, "body": "<response text, verbatim>"}``. The body is kept as a
string so malformed JSON and HTML error pages are landed exactly as received. Files are written to a temporary
name and hard-linked into place, so a reader never sees half a file and an existing file is never replaced.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(value: str, *, max_len: int = 120) -> str:
    """A path component that cannot escape its directory (no separators, no dots-only names)."""
    cleaned = _UNSAFE.sub("_", value).strip("._")[:max_len]
    return cleaned or "_"


def interval_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class RawResponse:
    path: Path
    meta: dict[str, Any]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def read_raw(path: str | Path) -> RawResponse:
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    return RawResponse(Path(path), record["meta"], record["body"])


class RawLander:
    """Writes one venue's responses for one run of one interval. Safe to use from one event loop."""

    def __init__(self, root: Path, venue: str, interval_end: datetime, run_id: str, attempt: int = 1):
        self.root = Path(root)
        self.venue = safe_component(venue)
        self.interval_end = interval_end.astimezone(UTC)
        self.run_id = run_id
        self._prefix = f"{interval_stamp(self.interval_end)}__{safe_component(run_id)}__{attempt:02d}-"
        self._counter = itertools.count(1)

    def land(self, endpoint: str, meta: dict[str, Any], body: bytes) -> Path:
        directory = (
            self.root
            / f"venue={self.venue}"
            / f"endpoint={safe_component(endpoint)}"
            / f"date={self.interval_end:%Y-%m-%d}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        text = body.decode("utf-8", errors="replace")
        record = {"meta": {**meta, "run_id": self.run_id, "interval_end": self.interval_end.isoformat()}, "body": text}
        payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            while True:
                target = directory / f"{self._prefix}{next(self._counter):05d}.json"
                try:
                    os.link(temp_name, target)  # fails if target exists: nothing is ever overwritten
                    return target
                except FileExistsError:
                    continue
        finally:
            os.unlink(temp_name)
