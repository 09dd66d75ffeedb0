"""One local HTTP server speaking all four venues' public APIs under their real paths.

Used in-process by tests (``with VenueSimulator(now_ms=...) as sim``), by ``positioning sim`` (see
:func:`serve_forever`) and by benchmarks (``latency=``). The request pipeline, in order: log the request ->
rate limits (when enforced) -> faults (latency/timeout, then terminal faults such as ``status``) -> the venue's
wire renderer (:mod:`positioning.sim.wire`) -> data-row faults -> global latency -> response.

Control API on the same port (never rate limited, never logged):
``GET /__sim/health``, ``GET|POST|DELETE /__sim/faults`` (POST body = add_fault fields, returns ``{"id": n}``),
``GET|DELETE /__sim/requests``, ``POST /__sim/clock`` ``{"now_ms": ms | null}``, ``POST /__sim/latency``
``{"seconds": s}``, ``DELETE /__sim/rate-limits`` (forget counters and bans), ``GET /__sim/listed``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import struct
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from positioning.sim.faults import ROW_FAULTS, Fault, FaultBook, apply_row_fault
from positioning.sim.limits import BINANCE_BAN_SECONDS, Limit, RateLimiter
from positioning.sim.state import SimState
from positioning.sim.wire import (
    STRIKE_MARKET_SHAPES,
    STRIKE_MARKETS_SHAPES,
    VENUE_WIRES,
    Reply,
    Request,
    Venue,
    VenueError,
    route,
)

CONTROL_PREFIX = "/__sim/"
DEFAULT_TIMEOUT_FAULT_SECONDS = 30.0
CDN_ERROR_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway"
    "</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


class _DropConnection(Exception):
    """Raised inside the handler to end the connection without a response."""


class VenueSimulator:
    """Deterministic Binance/OKX/Bitget/Strike server with rate limits, fault injection and a request log.

    ``now_ms`` freezes the clock (tests); None follows the wall clock. ``latency`` (seconds) is added before every
    response. ``strike_markets_shape`` is ``"full"`` or ``"symbols_only"``, ``strike_market_shape`` is
    ``"flat"``, ``"wrapped"`` or ``"camel"``. ``rate_limits`` overrides entries of
    :data:`positioning.sim.limits.RATE_LIMITS`; ``ban_seconds`` is the Binance 418 ban length.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        now_ms: int | None = None,
        latency: float = 0.0,
        enforce_rate_limits: bool = True,
        strike_markets_shape: str = "full",
        strike_market_shape: str = "flat",
        rate_limits: Mapping[str, Limit] | None = None,
        ban_seconds: float = BINANCE_BAN_SECONDS,
    ):
        if strike_markets_shape not in STRIKE_MARKETS_SHAPES:
            raise ValueError(f"strike_markets_shape must be one of {STRIKE_MARKETS_SHAPES}")
        if strike_market_shape not in STRIKE_MARKET_SHAPES:
            raise ValueError(f"strike_market_shape must be one of {STRIKE_MARKET_SHAPES}")
        self.host = host
        self.port = port
        self.seed = seed
        self.state = SimState(seed)
        self.enforce_rate_limits = enforce_rate_limits
        self.strike_markets_shape = strike_markets_shape
        self.strike_market_shape = strike_market_shape
        limits = None
        if rate_limits is not None:
            from positioning.sim.limits import RATE_LIMITS

            limits = {**RATE_LIMITS, **rate_limits}
        self.limiter = RateLimiter(limits, ban_seconds=ban_seconds)
        self.faults = FaultBook()
        self._frozen_now = now_ms
        self._latency = float(latency)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> VenueSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self)
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
        if (
            endpoint is not None
            and endpoint not in VENUE_WIRES[venue].routes.values()
            and not (venue == "strike" and endpoint == "market")
        ):
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
        """A copy of the request log: dicts venue, endpoint, path, params, status, ts (monotonic), client."""
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
            raise _DropConnection

    # ------------------------------------------------------------------ request pipeline
    def _same_symbol(self, venue: str, fault_symbol: str, candidate: Any) -> bool:
        if not isinstance(candidate, str):
            return False
        if fault_symbol == candidate:
            return True
        instrument = self.state.instrument(venue, candidate)
        return instrument is not None and instrument.base == fault_symbol

    def handle_venue(self, venue: Venue, endpoint: str, path: str, path_symbol: str | None,
                     params: dict[str, str], client: str) -> Reply | None:  # fmt: skip
        """Run one venue request through limits, faults and the renderer; None = reset the connection."""
        now_ms = self.now_ms()
        entry = {"venue": venue.name, "endpoint": endpoint, "path": path, "params": params, "status": None,
                 "ts": time.monotonic(), "client": client}  # fmt: skip
        self._record(entry)
        request = Request(venue.name, endpoint, path, params, now_ms, path_symbol,
                          {"strike_markets_shape": self.strike_markets_shape,
                           "strike_market_shape": self.strike_market_shape})  # fmt: skip
        reply = self._respond(venue, request, client)
        self._set_status(entry, 0 if reply is None else reply.status)
        if reply is not None and venue.name == "binance":
            used = self.limiter.used(client, "binance:weight", time.monotonic())
            reply.headers.setdefault("X-MBX-USED-WEIGHT-1M", str(used))
        self._sleep(self._latency)
        return reply

    def _respond(self, venue: Venue, request: Request, client: str) -> Reply | None:
        if self.enforce_rate_limits:
            rejection = self.limiter.acquire(client, venue.name, request.endpoint, request.params, time.monotonic())
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
            if fault.kind == "strike_shape":
                shape = fault.options["shape"]
                key = "strike_markets_shape" if shape in STRIKE_MARKETS_SHAPES else "strike_market_shape"
                request.options[key] = shape
        try:
            reply = venue.handle(request, self.state)
        except VenueError as error:
            return error.reply
        if reply.status == 200:
            self._apply_data_faults(venue, request, request_symbol, faults, reply)
        if any(fault.kind == "malformed_json" for fault in faults):
            reply.text = json.dumps(reply.body, separators=(",", ":"))
            reply.text = reply.text[: max(1, len(reply.text) // 2)]
        return reply

    def _terminal_reply(self, venue: Venue, fault: Fault, request: Request) -> Reply | bool | None:
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

    def _apply_data_faults(self, venue: Venue, request: Request, request_symbol: str | None,
                           faults: list[Fault], reply: Reply) -> None:  # fmt: skip
        for fault in faults:
            if fault.kind == "empty_data":
                reply.body = venue.empty(request.endpoint, reply.body)
            elif fault.kind == "duplicate_rows":
                container, _rows = venue.locate_rows(request.endpoint, reply.body)
                if container is not None:
                    container.extend(json.loads(json.dumps(container)))
            elif fault.kind in ROW_FAULTS:
                _container, rows = venue.locate_rows(request.endpoint, reply.body)
                apply_row_fault(fault, rows, self._row_filter(venue.name, fault, request_symbol))

    def _row_filter(self, venue: str, fault: Fault, request_symbol: str | None):
        """Every row when the request names a symbol (already matched), else only the fault symbol's rows."""
        if fault.symbol is None or request_symbol is not None:
            return lambda row: True

        def selected(row: Any) -> bool:
            if not isinstance(row, dict):
                return False
            return any(self._same_symbol(venue, fault.symbol, row.get(key)) for key in ("symbol", "instId"))

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
            venues = [params["venue"]] if params.get("venue") else list(VENUE_WIRES)
            return 200, {venue: self.state.listed(venue) for venue in venues}
        return 404, {"error": f"unknown control call {method} {path}"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The stdlib default backlog of 5 drops SYNs when four venue clients open ~30 connections at once; the
    # client then sees a 1 s connect timeout that no real venue would cause.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type, sim: VenueSimulator):
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (after a timeout fault, say) are normal here; anything else is printed."""
        import sys

        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real venues behind their CDNs
    server: _Server
    server_version = "venue-sim/1"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()
        self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the request log is the record
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        path = unquote(url.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            if path.startswith(CONTROL_PREFIX):
                try:
                    body = json.loads(raw_body) if raw_body else None
                except ValueError:
                    self._send(Reply(400, {"error": "body is not JSON"}))
                    return
                status, payload = sim.handle_control(method, path, params, body)
                self._send(Reply(status, payload))
                return
            found = route(path)
            if found is None or method != "GET":
                self._send(Reply(404, {"error": f"no simulated endpoint {method} {path}"}))
                return
            venue, endpoint, path_symbol = found
            reply = sim.handle_venue(venue, endpoint, path, path_symbol, params, self.client_address[0])
        except _DropConnection:
            self.close_connection = True
            return
        if reply is None:
            self._reset_connection()
            return
        self._send(reply)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header follows the simulator's clock (frozen in tests), as a venue's follows its own."""
        return super().date_time_string(self.server.sim.now_ms() / 1000 if timestamp is None else timestamp)

    def _send(self, reply: Reply) -> None:
        text = reply.text if reply.text is not None else json.dumps(reply.body, separators=(",", ":"))
        payload = text.encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reset_connection(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0) so the client sees a connection reset, not a clean close."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


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
