"""A tiny local venue for wire tests: a stdlib HTTP server on 127.0.0.1 serving canned venues.md payloads.

Stand-in until the venue simulator (``positioning.sim``) is ready: the venue modules talk to it through the real
:class:`~positioning.ingest.http.VenueClient` (real sockets, real retries, real landing), nothing is mocked in-process.

A route maps a path to a :class:`Reply`, a list of replies (served in order, the last one repeated) or a
function of the query parameters. Every request is recorded as ``(path, query)``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    body: Any  # JSON-able, or str/bytes sent verbatim
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Responder = Reply | list[Reply] | Callable[[dict[str, str]], Reply]


class FakeVenue:
    """``with FakeVenue() as venue: venue.route("/path", Reply({...})); ... venue.base_url``."""

    def __init__(self) -> None:
        self.routes: dict[str, Responder] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, responder: Responder) -> None:
        self.routes[path] = list(responder) if isinstance(responder, list) else responder

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for seen, _ in self.requests if path is None or seen == path)

    def queries(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [query for seen, query in self.requests if seen == path]

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the FakeVenue first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _reply(self, path: str, query: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append((path, query))
            responder = self.routes.get(path)
            if isinstance(responder, list):
                return responder.pop(0) if len(responder) > 1 else responder[0]
        if responder is None:
            return Reply({"error": 404, "message": f"no route for {path}"}, status=404)
        if isinstance(responder, Reply):
            return responder
        return responder(query)

    def __enter__(self) -> FakeVenue:
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                reply = venue._reply(parts.path, dict(parse_qsl(parts.query)))
                body = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 makes concurrent connects wait 1 s for a SYN retry
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------------------ canned payloads (venues.md)

TS = 1705327200000  # 2024-01-15T14:00:00Z


def _price(base: str) -> str:
    return str(100 + len(base))


def okx_ok(data: Any) -> dict:
    return {"code": "0", "msg": "", "data": data}


def bitget_ok(data: Any) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": TS, "data": data}


OKX_RATE_LIMITED = {"msg": "Too Many Requests", "code": "50011"}  # §2.0 observed 429 body, no data
OKX_UNKNOWN_INSTRUMENT = {
    "code": "51001",
    "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
    "data": [],
}
BITGET_RATE_LIMITED = {"code": "429", "msg": "Too Many Requests", "requestTime": TS, "data": None}


def okx_routes(venue: FakeVenue, listed: Iterable[str]) -> None:
    """OKX §2: every listed base as a USDT swap, plus an inverse BTC-USD-SWAP the parsers must drop."""
    bases = list(listed)
    instruments = [
        {
            "instId": f"{base}-USDT-SWAP",
            "instType": "SWAP",
            "instFamily": f"{base}-USDT",
            "uly": f"{base}-USDT",
            "ctType": "linear",
            "ctVal": "0.01",
            "ctValCcy": base,
            "settleCcy": "USDT",
            "state": "live",
        }
        for base in bases
    ]
    instruments.append(
        {
            "instId": "BTC-USD-SWAP",
            "ctVal": "100",
            "ctValCcy": "USD",
            "settleCcy": "BTC",
            "ctType": "inverse",
            "state": "live",
        }
    )
    swaps = [*(f"{base}-USDT-SWAP" for base in bases), "BTC-USD-SWAP"]
    venue.route("/api/v5/public/instruments", Reply(okx_ok(instruments)))
    venue.route(
        "/api/v5/public/open-interest",
        Reply(
            okx_ok(
                [
                    {"instType": "SWAP", "instId": swap, "oi": "5000", "oiCcy": "50", "oiUsd": "50000", "ts": str(TS)}
                    for swap in swaps
                ]
            )
        ),
    )
    venue.route(
        "/api/v5/public/mark-price",
        Reply(okx_ok([{"instType": "SWAP", "instId": swap, "markPx": "200", "ts": str(TS)} for swap in swaps])),
    )
    venue.route(
        "/api/v5/public/funding-rate",
        Reply(
            okx_ok(
                [
                    {
                        "instId": swap,
                        "instType": "SWAP",
                        "fundingRate": "0.0001",
                        "nextFundingTime": str(TS + 3600_000),
                        "ts": str(TS),
                    }
                    for swap in swaps
                ]
            )
        ),
    )
    # Rubik rows are arrays, newest first.
    venue.route(
        "/api/v5/rubik/stat/contracts/long-short-account-ratio",
        lambda query: Reply(okx_ok([[str(TS), "1.25"], [str(TS - 300_000), "1.2"]])),
    )
    venue.route(
        "/api/v5/rubik/stat/contracts/open-interest-volume",
        lambda query: Reply(okx_ok([[str(TS), "1713028741.6898", "39800873.554"]])),
    )
    venue.route(  # venues-more.md §4.1: [ts, sellVol, buyVol]
        "/api/v5/rubik/stat/taker-volume",
        lambda query: Reply(okx_ok([[str(TS), "7596.2651", "7149.4855"], [str(TS - 300_000), "5312.78", "7002.75"]])),
    )


def bitget_routes(venue: FakeVenue, listed: Iterable[str]) -> None:
    """Bitget §3: USDT perpetuals for every listed base, plus a delivery contract the parser must drop."""
    bases = list(listed)
    contracts = [
        {
            "symbol": f"{base}USDT",
            "baseCoin": base,
            "quoteCoin": "USDT",
            "symbolType": "perpetual",
            "symbolStatus": "normal",
        }
        for base in bases
    ]
    contracts.append(
        {
            "symbol": "BTCUSDT0627",
            "baseCoin": "BTC",
            "quoteCoin": "USDT",
            "symbolType": "delivery",
            "symbolStatus": "normal",
        }
    )
    venue.route("/api/v2/mix/market/contracts", Reply(bitget_ok(contracts)))
    venue.route(
        "/api/v2/mix/market/tickers",
        Reply(
            bitget_ok(
                [
                    {
                        "symbol": f"{base}USDT",
                        "markPrice": _price(base),
                        "fundingRate": "0.000069",
                        "holdingAmount": "35194.2193999999167",
                        "deliveryStartTime": None,
                        "deliveryTime": None,
                        "ts": str(TS),
                    }
                    for base in bases
                ]
            )
        ),
    )
    venue.route(
        "/api/v2/mix/market/open-interest",
        lambda query: Reply(
            bitget_ok({"openInterestList": [{"symbol": query["symbol"], "size": "34278.06"}], "ts": str(TS)})
        ),
    )
    venue.route(
        "/api/v2/mix/market/account-long-short",
        lambda query: Reply(
            bitget_ok(
                [
                    {
                        "longAccountRatio": "0.55",
                        "shortAccountRatio": "0.45",
                        "longShortAccountRatio": "1.22",
                        "ts": str(TS),
                    }
                ]
            )
        ),
    )


STRIKE_MARKETS = ("BTC", "ETH", "SOL", "BNB", "XRP", "HYPE")


def strike_flat_market(symbol: str) -> dict:
    """§4 (a), the seed page's example, for any market."""
    return {
        "symbol": symbol,
        "position_multiplier": "0.000001",
        "long_funding_rate_hourly": "0.000125",
        "short_funding_rate_hourly": "-0.000075",
        "long_oi": "2500000.00",
        "short_oi": "1800000.00",
        "total_oi": "4300000.00",
        "skew": "0.1628",
        "volumeUsd24h": "45000000.00",
    }


def strike_routes(venue: FakeVenue, *, symbols_only: bool) -> None:
    """Strike §4: /markets in the per-market (camelCase) or the symbols-only variant; /market/{symbol} flat."""
    if symbols_only:
        markets: dict = {"markets": [{"symbol": f"{base}-USD"} for base in STRIKE_MARKETS], "count": 6}
    else:
        markets = {
            "markets": [
                {
                    "symbol": f"{base}-USD",
                    "price": "98742.50",
                    "longOi": "1250000.75",
                    "shortOi": "1180000.25",
                    "totalOi": "2430001.00",
                    "skew": "0.0287",
                }
                for base in STRIKE_MARKETS
            ]
        }
    venue.route("/markets", Reply(markets))
    for base in STRIKE_MARKETS:
        venue.route(f"/market/{base}-USD", Reply(strike_flat_market(f"{base}-USD")))


def binance_routes(venue: FakeVenue, listed: Iterable[str]) -> None:
    """Binance §1: exchangeInfo with every listed base as a trading USDT perpetual."""
    bases = list(listed)
    symbols = [
        {
            "symbol": f"{base}USDT",
            "contractType": "PERPETUAL",
            "status": "TRADING",
            "baseAsset": base,
            "quoteAsset": "USDT",
        }
        for base in bases
    ]
    venue.route("/fapi/v1/exchangeInfo", Reply({"symbols": symbols}))
    venue.route(
        "/fapi/v1/premiumIndex",
        Reply(
            [
                {"symbol": f"{base}USDT", "markPrice": _price(base), "lastFundingRate": "0.0001", "time": TS}
                for base in bases
            ]
        ),
    )
    venue.route(
        "/fapi/v1/openInterest",
        lambda query: Reply({"openInterest": "10659.509", "symbol": query["symbol"], "time": TS}),
    )

    def ratio(query: dict[str, str]) -> Reply:
        row = {"symbol": query["symbol"], "longShortRatio": "1.4342", "longAccount": "0.5891", "shortAccount": "0.4108"}
        return Reply([{**row, "timestamp": TS}])  # a number, as the live payload sends it

    for path in (
        "/futures/data/topLongShortPositionRatio",
        "/futures/data/topLongShortAccountRatio",
        "/futures/data/globalLongShortAccountRatio",
    ):
        venue.route(path, ratio)
    taker = {"buySellRatio": "1.5586", "buyVol": "387.3300", "sellVol": "248.5030", "timestamp": TS}  # §3.5
    venue.route("/futures/data/takerlongshortRatio", Reply([taker]))
    venue.route("/fapi/v1/fundingInfo", Reply([]))  # no symbol adjusted: every one pays every 8 hours
