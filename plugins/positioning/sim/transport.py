"""The HTTP layer of the simulator: a threaded keep-alive server and the handler that parses requests.

The handler sends ``/__sim/*`` to the simulator's control API and every other path to the venue that
:func:`positioning.sim.venues.route` finds; what to answer is decided in :mod:`positioning.sim.server`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from positioning.sim import venues
from positioning.sim.venues.base import Reply

if TYPE_CHECKING:
    from positioning.sim.server import VenueSimulator

CONTROL_PREFIX = "/__sim/"


class DropConnection(Exception):
    """Raised inside the handler to end the connection without a response."""


class Server(ThreadingHTTPServer):
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real venues behind their CDNs
    server: Server
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
            try:
                # A body that is not JSON reaches the venue as the text it was (its own error to give).
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                body = raw_body.decode("utf-8", "replace")
            found = venues.route_request(method, path, body)
            if found is None:
                self._send(Reply(404, {"error": f"no simulated endpoint {method} {path}"}))
                return
            venue, endpoint, path_symbol = found
            reply = sim.handle_venue(venue, endpoint, path, path_symbol, params, self.client_address[0], body)
        except DropConnection:
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
        if reply.content is not None:
            payload = reply.content
        else:
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
