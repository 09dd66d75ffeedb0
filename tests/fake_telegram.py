"""A fake Telegram Bot API on 127.0.0.1 speaking the wire format of venues.md §5 (``sendMessage`` only).

* ``POST|GET /bot<token>/sendMessage`` with JSON, form or query parameters; a wrong token is HTTP 401
  ``{"ok": false, "error_code": 401, "description": "Unauthorized"}``, an unknown chat HTTP 400 "chat not found".
* ``text`` longer than 4096 characters after entities parsing (counted in UTF-16 units): HTTP 400
  "Bad Request: message is too long". HTML that Telegram would reject (an unsupported or unbalanced tag, a bare
  ``&``/``<``): HTTP 400 "Bad Request: can't parse entities: ...".
* ``queue(status, body)`` makes the next requests answer with canned responses first, e.g. a 429
  ``{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters":
  {"retry_after": 1}}`` (see :meth:`FakeTelegram.flood`).
* Accepted messages are kept in ``messages`` (with their arrival time) for the tests to read.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
ALLOWED_TAGS |= {"blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")


def parse_html(text: str) -> str:
    """The text after entities parsing, or ValueError with Telegram's kind of complaint."""
    stack: list[str] = []
    out: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        out.append(text[position : match.start()])
        closing, name = match.group(1), match.group(2).lower()
        if name not in ALLOWED_TAGS:
            raise ValueError(f'Unsupported start tag "{name}" at byte offset {match.start()}')
        if closing:
            if not stack or stack.pop() != name:
                raise ValueError(f'Unmatched end tag at byte offset {match.start()}, expected "</{name}>"')
        else:
            stack.append(name)
        position = match.end()
    out.append(text[position:])
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    plain = "".join(out)
    if "<" in plain or ">" in plain:
        raise ValueError("Unexpected end of name token")
    for amp in re.finditer("&", plain):
        if not _ENTITY.match(plain, amp.start()):
            raise ValueError(f"Character '&' is reserved at byte offset {amp.start()}")
    return html.unescape(plain)


class FakeTelegram:
    def __init__(self, token: str, chat_id: str = "42"):
        self.token = token
        self.chat_id = chat_id
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # every request: status answered, parse_mode, text length
        self._canned: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._next_id = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # the request line holds the token
                pass

            def do_GET(self) -> None:
                fake._handle(self, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = (self.headers.get("content-type") or "").split(";")[0].strip()
                if kind == "application/json":
                    fields = json.loads(raw or b"{}")
                else:
                    fields = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                fake._handle(self, fields)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, status: int, body: dict[str, Any], times: int = 1) -> None:
        with self._lock:
            self._canned.extend([(status, body)] * times)

    def flood(self, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` requests get Telegram's flood-control answer."""
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }
        self.queue(429, body, times)

    def _handle(self, handler: BaseHTTPRequestHandler, fields: dict[str, Any]) -> None:
        url = urlsplit(handler.path)
        fields = {**{k: v[-1] for k, v in parse_qs(url.query).items()}, **fields}
        status, body = self._answer(url.path, fields)
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, path: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        text = str(fields.get("text", ""))
        record = {"at": time.monotonic(), "parse_mode": fields.get("parse_mode"), "length": len(text)}
        with self._lock:
            if self._canned:
                status, body = self._canned.pop(0)
                self.requests.append({**record, "status": status})
                return status, body
            match = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
            if not match or match.group(1) != self.token:
                answer = (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            elif match.group(2).lower() != "sendmessage":
                answer = (404, {"ok": False, "error_code": 404, "description": "Not Found"})
            elif str(fields.get("chat_id")) != self.chat_id:
                answer = (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
            else:
                answer = self._send(text, fields.get("parse_mode"))
            self.requests.append({**record, "status": answer[0]})
            return answer

    def _send(self, text: str, parse_mode: Any) -> tuple[int, dict[str, Any]]:
        try:
            shown = parse_html(text) if parse_mode == "HTML" else text
        except ValueError as exc:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {exc}"}
        if not shown.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if len(shown.encode("utf-16-le")) // 2 > 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        self._next_id += 1
        message = {
            "message_id": self._next_id,
            "from": {"id": 5927593490, "is_bot": True, "first_name": "Positioning", "username": "PositioningBot"},
            "chat": {"id": int(self.chat_id), "type": "private"},
            "date": int(time.time()),
            "text": shown,
        }
        self.messages.append({**message, "html": text, "parse_mode": parse_mode, "at": time.monotonic()})
        return 200, {"ok": True, "result": message}
