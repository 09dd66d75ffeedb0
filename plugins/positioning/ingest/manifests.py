"""Manifests: the typed record of one extract (or one bulk-fill chunk), and the one store that keeps them.

A manifest says what was requested of a venue, which symbols it skipped, what failed and which raw files hold
the responses. The extract tasks and the bulk fill write them; the load, the gate and the alerts read them.
On disk they are JSON (the same keys as before these types existed, so old manifests still load):

* ``manifests/interval_end=<stamp>/run_id=<run>/venue=<v>__try=<nn>.json`` (one per extract attempt),
* ``manifests/bulk/run_id=<run>/venue=<v>__chunk=<chunk>.json`` (one per completed bulk-fill chunk),

written atomically (temp file + rename), so a reader never sees half a manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from positioning.ingest.raw import interval_stamp, safe_component


@dataclass(frozen=True)
class RequestRecord:
    """One logical request (after retries) as the manifest keeps it (``FetchResult.summary()``)."""

    venue: str
    endpoint: str
    symbol: str | None
    ok: bool
    status: int | None
    error: str | None = None
    attempts: int = 0
    retryable: bool | None = None
    statuses: tuple[int | None, ...] = ()
    duration_ms: float = 0.0
    raw_paths: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> RequestRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in document.items() if key in names}
        values["statuses"] = tuple(values.get("statuses") or ())
        values["raw_paths"] = tuple(values.get("raw_paths") or ())
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "statuses": list(self.statuses), "raw_paths": list(self.raw_paths)}


@dataclass(frozen=True)
class Manifest:
    """What one extract attempt (or bulk chunk) of one venue asked and got."""

    venue: str
    run_id: str
    attempt: int
    interval_start: datetime
    interval_end: datetime
    ls_period: str
    status: str  # ok | partial | failed
    instruments: dict[str, str] = field(default_factory=dict)  # base symbol -> venue instrument
    skipped: dict[str, str] = field(default_factory=dict)  # base symbol -> why not requested
    symbols_requested: tuple[str, ...] = ()
    requests: tuple[RequestRecord, ...] = ()
    fatal: str | None = None
    include_oi_change_24h: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    requests_sent: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    history: bool = False
    as_of: datetime | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why the venue cannot give it
    chunk: str | None = None  # bulk fill: "listing" or a base symbol
    path: Path | None = field(default=None, compare=False)  # where the store found or wrote it

    @property
    def failed_requests(self) -> list[RequestRecord]:
        return [request for request in self.requests if not request.ok]

    @property
    def extract_seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "path" or (item.name == "chunk" and value is None):
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif item.name == "requests":
                value = [request.to_json() for request in value]
            elif isinstance(value, tuple):
                value = list(value)
            document[item.name] = value
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any], path: Path | None = None) -> Manifest:
        def moment(name: str) -> datetime | None:
            value = document.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(
            venue=document["venue"],
            run_id=document["run_id"],
            attempt=int(document["attempt"]),
            interval_start=moment("interval_start"),  # type: ignore[arg-type]
            interval_end=moment("interval_end"),  # type: ignore[arg-type]
            ls_period=document.get("ls_period", "1h"),
            status=document["status"],
            instruments=dict(document.get("instruments") or {}),
            skipped=dict(document.get("skipped") or {}),
            symbols_requested=tuple(document.get("symbols_requested") or ()),
            requests=tuple(RequestRecord.from_json(r) for r in document.get("requests") or ()),
            fatal=document.get("fatal"),
            include_oi_change_24h=bool(document.get("include_oi_change_24h", False)),
            started_at=moment("started_at"),
            finished_at=moment("finished_at"),
            requests_sent=int(document.get("requests_sent") or 0),
            status_counts=dict(document.get("status_counts") or {}),
            history=bool(document.get("history", False)),
            as_of=moment("as_of"),
            unavailable=dict(document.get("unavailable") or {}),
            chunk=document.get("chunk"),
            path=path,
        )


def latest_tries(manifests: list[Manifest]) -> list[Manifest]:
    """The last attempt of each venue."""
    latest: dict[str, Manifest] = {}
    for manifest in manifests:
        current = latest.get(manifest.venue)
        if current is None or manifest.attempt > current.attempt:
            latest[manifest.venue] = manifest
    return list(latest.values())


def write_json_atomic(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1, default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise


def _read(path: Path) -> Manifest:
    return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")), path)


@dataclass(frozen=True)
class ManifestStore:
    """Where manifests live under a data directory, and how they are written and read."""

    data_dir: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "manifests"

    def run_dir(self, interval_end: datetime, run_id: str) -> Path:
        return self.root / f"interval_end={interval_stamp(interval_end)}" / f"run_id={safe_component(run_id)}"

    def path(self, venue: str, interval_end: datetime, run_id: str, attempt: int) -> Path:
        return self.run_dir(interval_end, run_id) / f"venue={safe_component(venue)}__try={attempt:02d}.json"

    def write(self, manifest: Manifest) -> Manifest:
        """Write an extract manifest; returns it with ``path`` set."""
        path = self.path(manifest.venue, manifest.interval_end, manifest.run_id, manifest.attempt)
        write_json_atomic(path, manifest.to_json())
        return dataclasses.replace(manifest, path=path)

    def run(self, interval_end: datetime, run_id: str) -> list[Manifest]:
        """Every manifest one run wrote for one interval (all tries of every venue), oldest try first."""
        return [_read(path) for path in sorted(self.run_dir(interval_end, run_id).glob("venue=*__try=*.json"))]

    # ------------------------------------------------------------------------------------ bulk-fill chunks

    def bulk_dir(self) -> Path:
        return self.root / "bulk"

    def chunk_dir(self, run_id: str) -> Path:
        return self.bulk_dir() / f"run_id={safe_component(run_id)}"

    def chunk_path(self, run_id: str, venue: str, chunk: str) -> Path:
        return self.chunk_dir(run_id) / f"venue={safe_component(venue)}__chunk={safe_component(chunk)}.json"

    def write_chunk(self, manifest: Manifest, *, failed: bool = False) -> Path:
        """A completed chunk (``failed``: kept beside it as evidence, never read as done)."""
        path = self.chunk_path(manifest.run_id, manifest.venue, manifest.chunk or "")
        path = path.with_suffix(".failed") if failed else path
        write_json_atomic(path, manifest.to_json())
        return path

    def read_chunk(self, run_id: str, venue: str, chunk: str) -> Manifest | None:
        path = self.chunk_path(run_id, venue, chunk)
        return _read(path) if path.exists() else None

    def chunks(self, run_id: str) -> list[Manifest]:
        return [_read(path) for path in sorted(self.chunk_dir(run_id).glob("venue=*__chunk=*.json"))]
