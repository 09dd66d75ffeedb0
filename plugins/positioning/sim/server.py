"""One local HTTP server speaking every registered venue's public API under its real paths.

Used in-process by tests (``with VenueSimulator(now_ms=...) as sim``), by ``positioning sim`` (see
:func:`serve_forever`) and by benchmarks (``latency=``). The request pipeline, in order: log the request ->
rate limits (when enforced) -> faults (latency/timeout, then terminal faults such as ``status``) -> the venue's
wire renderer (its module in :mod:`positioning.sim.venues`) -> data-row faults -> global latency -> response.

Control API on the same port (never rate limited, never logged):
``GET /__sim/health``, ``GET|POST|DELETE /__sim/faults`` (POST body = add_fault fields, returns ``{"id": n}``),
``GET|DELETE /__sim/requests``, ``POST /__sim/clock`` ``{"now_ms": ms | null}``, ``POST /__sim/latency``
``{"seconds": s}``, ``DELETE /__sim/rate-limits`` (forget counters and bans), ``GET /__sim/listed``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from positioning.sim import venues
from positioning.sim.faults import ROW_FAULTS, Fault, FaultBook, apply_row_fault
from positioning.sim.limits import Limit, RateLimiter
from positioning.sim.state import SimState
from positioning.sim.transport import CONTROL_PREFIX, DropConnection, Handler, Server
from positioning.sim.venues.base import Reply, Request, SimVenue, VenueError

DEFAULT_TIMEOUT_FAULT_SECONDS = 30.0
CDN_ERROR_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway"
    "</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


class VenueSimulator:
    """Deterministic server of the registered venues with rate limits, fault injection and a request log.

    ``now_ms`` freezes the clock (tests); None follows the wall clock. ``latency`` (seconds) is added before every
    response. ``rate_limits`` overrides entries of the venues' ``"<venue>:<bucket>"`` table
    (:data:`positioning.sim.limits.RATE_LIMITS`); ``ban_seconds`` overrides the ban length of venues that ban
    (HTTP 418). Further keyword options are the ones venues declare (``SimVenue.options``, e.g. the response
    shapes a venue's docs disagree on); each must be one of its declared values, the first being the default.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        now_ms: int | None = None,
        latency: float = 0.0,
        enforce_rate_limits: bool = True,
        rate_limits: Mapping[str, Limit] | None = None,
        ban_seconds: float | None = None,
        **venue_options: str,
    ):
        self.venue_options = _checked_venue_options(venue_options)
        self.host = host
        self.port = port
        self.seed = seed
        self.state = SimState(seed)
        self.enforce_rate_limits = enforce_rate_limits
        limits = None if rate_limits is None else {**venues.rate_limits(), **rate_limits}
        self.limiter = RateLimiter(limits, ban_seconds=ban_seconds)
        self.faults = FaultBook()
        self._frozen_now = now_ms
        self._latency = float(latency)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> VenueSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = Server((self.host, self.port), Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"venue-sim:{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: wakes sleeping fault handlers and closes open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> VenueSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ clock and latency
    def now_ms(self) -> int:
        """The simulator clock: frozen if set, else wall-clock ms."""
        frozen = self._frozen_now
        return int(time.time() * 1000) if frozen is None else frozen

    def set_now(self, ms: int | None) -> None:
        """Freeze the clock at ``ms`` (None = follow the wall clock)."""
        self._frozen_now = None if ms is None else int(ms)

    def set_latency(self, seconds: float) -> None:
        self._latency = float(seconds)

    # ------------------------------------------------------------------ faults, log, limits
    def add_fault(
        self,
        venue: str,
        endpoint: str | None = None,
        kind: str = "status",
        symbol: str | None = None,
        times: int | None = None,
        **options: Any,
    ) -> int:
        """Register a fault (see :data:`positioning.sim.faults.FAULT_KINDS`); returns its id."""
        if endpoint is not None and endpoint not in venues.get(venue).endpoints():
            raise ValueError(f"{venue} has no endpoint {endpoint!r}")
        return self.faults.add(venue, endpoint, kind, symbol, times, **options)

    def remove_fault(self, fault_id: int) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset_rate_limits(self) -> None:
        """Forget every rate-limit counter and ban."""
        self.limiter.reset()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log: dicts venue, endpoint, path, params, status, ts (monotonic), client, body
        (the JSON body of a POST read, else None)."""
        with self._log_lock:
            return [dict(entry, params=dict(entry["params"])) for entry in self._log]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)

    def _set_status(self, entry: dict[str, Any], status: int) -> None:
        with self._log_lock:
            entry["status"] = status

    def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the simulator stops (then the connection is dropped)."""
        if seconds > 0 and self._stopping.wait(seconds):
            raise DropConnection

    # ------------------------------------------------------------------ request pipeline
    def _same_symbol(self, venue: str, fault_symbol: str, candidate: Any) -> bool:
        if not isinstance(candidate, str):
            return False
        if fault_symbol == candidate:
            return True
        instrument = self.state.instrument(venue, candidate)
        return instrument is not None and instrument.base == fault_symbol

    def handle_venue(self, venue: SimVenue, endpoint: str, path: str, path_symbol: str | None,
                     params: dict[str, str], client: str, body: Any = None) -> Reply | None:  # fmt: skip
        """Run one venue request through limits, faults and the renderer; None = reset the connection.
        ``body`` is the decoded JSON body of a POST read (logged as ``body``)."""
        now_ms = self.now_ms()
        entry = {"venue": venue.name, "endpoint": endpoint, "path": path, "params": params, "status": None,
                 "ts": time.monotonic(), "client": client, "body": body}  # fmt: skip
        self._record(entry)
        options = {name: self.venue_options.get(name, allowed[0]) for name, allowed in venue.options.items()}
        request = Request(venue.name, endpoint, path, params, now_ms, path_symbol, options, body)
        reply = self._respond(venue, request, client)
        self._set_status(entry, 0 if reply is None else reply.status)
        if reply is not None:
            for name, value in self._usage_headers(venue, client).items():
                reply.headers.setdefault(name, value)
        self._sleep(self._latency)
        return reply

    def _usage_headers(self, venue: SimVenue, client: str) -> dict[str, str]:
        """The venue's headers reporting this client's rate-limit usage (zeros when limits are not enforced)."""
        return venue.usage_headers(lambda bucket: self.limiter.used(client, f"{venue.name}:{bucket}", time.monotonic()))

    def _respond(self, venue: SimVenue, request: Request, client: str) -> Reply | None:
        if self.enforce_rate_limits:
            rejection = self.limiter.acquire(client, venue, request.endpoint, request.params, time.monotonic())
            if rejection is not None:
                return venue.rate_limited(rejection, client, request.now_ms)
        request_symbol = venue.request_symbol(request)
        faults = self.faults.take(
            venue.name,
            request.endpoint,
            request_symbol,
            lambda fault_symbol, symbol: self._same_symbol(venue.name, fault_symbol, symbol),
        )
        for fault in faults:
            if fault.kind == "latency":
                self._sleep(float(fault.options.get("seconds", 1.0)))
            elif fault.kind == "timeout":
                self._sleep(float(fault.options.get("seconds", DEFAULT_TIMEOUT_FAULT_SECONDS)))
        for fault in faults:
            terminal = self._terminal_reply(venue, fault, request)
            if terminal is not False:
                return terminal  # type: ignore[return-value]
            if fault.kind in venue.fault_kinds:
                venue.apply_fault(fault, request)
        try:
            reply = venue.handle(request, self.state)
        except VenueError as error:
            return error.reply
        if reply.status == 200:
            self._apply_data_faults(venue, request, request_symbol, faults, reply)
        if any(fault.kind == "malformed_json" for fault in faults):
            if reply.content is not None:  # a file: a truncated download
                reply.content = reply.content[: max(1, len(reply.content) // 2)]
            else:
                reply.text = json.dumps(reply.body, separators=(",", ":")) if reply.text is None else reply.text
                reply.text = reply.text[: max(1, len(reply.text) // 2)]
        return reply

    def _terminal_reply(self, venue: SimVenue, fault: Fault, request: Request) -> Reply | bool | None:
        """The reply a fault answers with instead of the venue's data; None = reset; False = not terminal."""
        options = fault.options
        if fault.kind == "connection_reset":
            return None
        if fault.kind == "status":
            status = int(options["status"])
            body = options.get("body", venue.error_body(status, request.now_ms))
            headers = dict(options.get("headers", {}))
            retry_after = options.get("retry_after", {429: 1, 418: 120}.get(status))
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            if isinstance(body, str):
                return Reply(status, headers=headers, text=body, content_type=options.get("content_type", "text/plain"))
            return Reply(status, body, headers)
        if fault.kind == "html_error":
            status = int(options.get("status", 502))
            page = options.get("body", CDN_ERROR_PAGE.format(status=status))
            return Reply(status, text=page, content_type="text/html; charset=UTF-8")
        if fault.kind == "error_envelope":
            body = venue.error_envelope(options.get("code"), options.get("msg"), request.now_ms)
            return Reply(int(options.get("status", 200)), body)
        return False

    def _apply_data_faults(self, venue: SimVenue, request: Request, request_symbol: str | None,
                           faults: list[Fault], reply: Reply) -> None:  # fmt: skip
        for fault in faults:
            if fault.kind == "empty_data":
                reply.body = venue.empty(request.endpoint, reply.body)
            elif fault.kind == "duplicate_rows":
                container, _rows = venue.locate_rows(request.endpoint, reply.body)
                if container is not None:
                    repeats = json.loads(json.dumps(container))
                    if "field" in fault.options:  # a repeat that disagrees with the original
                        apply_row_fault(dataclasses.replace(fault, kind="override"), repeats, lambda _row: True)
                    container.extend(repeats)
            elif fault.kind in ROW_FAULTS:
                _container, rows = venue.locate_rows(request.endpoint, reply.body)
                apply_row_fault(fault, rows, self._row_filter(venue, fault, request_symbol))

    def _row_filter(self, venue: SimVenue, fault: Fault, request_symbol: str | None):
        """Every row when the request names a symbol (already matched), else only the fault symbol's rows."""
        if fault.symbol is None or request_symbol is not None:
            return lambda row: True

        def selected(row: Any) -> bool:
            if not isinstance(row, dict):
                return False
            return any(self._same_symbol(venue.name, fault.symbol, row.get(key)) for key in venue.row_symbol_keys)

        return selected

    # ------------------------------------------------------------------ control API
    def handle_control(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        action = path.removeprefix(CONTROL_PREFIX).strip("/")
        if action == "health" and method == "GET":
            return 200, {"ok": True, "seed": self.seed, "now_ms": self.now_ms(), "base_url": self.base_url}
        if action == "faults":
            if method == "GET":
                return 200, {"faults": self.faults.list()}
            if method == "DELETE":
                self.clear_faults()
                return 200, {"ok": True}
            if method == "POST":
                if not isinstance(body, dict) or "venue" not in body:
                    return 400, {"error": "POST a JSON object with at least venue and kind"}
                try:
                    return 200, {"id": self.add_fault(**body)}
                except (TypeError, ValueError) as exc:
                    return 400, {"error": str(exc)}
        if action == "requests":
            if method == "GET":
                return 200, {"requests": self.requests}
            if method == "DELETE":
                self.clear_requests()
                return 200, {"ok": True}
        if action == "clock" and method == "POST" and isinstance(body, dict):
            self.set_now(body.get("now_ms"))
            return 200, {"now_ms": self.now_ms()}
        if action == "latency" and method == "POST" and isinstance(body, dict):
            self.set_latency(float(body.get("seconds", 0.0)))
            return 200, {"ok": True}
        if action == "rate-limits" and method == "DELETE":
            self.reset_rate_limits()
            return 200, {"ok": True}
        if action == "listed" and method == "GET":
            names = [params["venue"]] if params.get("venue") else venues.names()
            return 200, {name: self.state.listed(name) for name in names}
        return 404, {"error": f"unknown control call {method} {path}"}


def _checked_venue_options(given: Mapping[str, str]) -> dict[str, str]:
    """Every option the registered venues declare, set to ``given`` or its default; unknown names are a
    TypeError (as for any unexpected keyword), values outside the declared ones a ValueError."""
    declared = {name: allowed for venue in venues.all() for name, allowed in venue.options.items()}
    for name, value in given.items():
        if name not in declared:
            raise TypeError(f"VenueSimulator() got an unexpected keyword argument {name!r}")
        if value not in declared[name]:
            raise ValueError(f"{name} must be one of {declared[name]}")
    return {name: given.get(name, allowed[0]) for name, allowed in declared.items()}


def free_port() -> int:
    """A port free on 127.0.0.1 for a local server: the simulator, or any server a test or benchmark starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_forever(host: str = "127.0.0.1", port: int = 8900, **options: Any) -> int:
    """Serve until SIGINT/SIGTERM (``positioning sim``); prints the base URL once listening. Returns 0."""
    stop = threading.Event()
    with VenueSimulator(host=host, port=port, **options) as sim:
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: rely on KeyboardInterrupt
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        print(f"venue simulator (seed {sim.seed}) listening on {sim.base_url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return 0
