"""The contract every simulated venue fulfils, and the values it exchanges with the server and the market.

A venue (one module per venue in this package) owns everything that differs between venues: its paths and
wire envelopes (``routes``, ``do_<endpoint>`` handlers, error bodies, where the data rows of a body sit), its
documented rate limits (``limits``, ``request_costs``, ``ban``, usage headers), its listing (``instruments``)
and how it spells numbers (funding decimals, the shape of its open interest, its ratio metrics).
:class:`~positioning.sim.state.SimState` computes the venue-independent market and asks the venue for these
rules, so a venue it has never heard of (a test's) gets deterministic values from the defaults below.
A venue never sleeps, counts or injects faults: the server does that, then calls the venue to render.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from positioning.sim.common import fmt, period_ms, reason

if TYPE_CHECKING:
    from positioning.sim.faults import Fault
    from positioning.sim.state import SimState

DEFAULT_OI_SCALE = 0.3  # OI of a venue that declares no scale, relative to the reference magnitude (1.0)


@dataclass(frozen=True)
class Limit:
    """At most ``capacity`` units (requests or request weight) in any ``window_s`` seconds, per client IP."""

    capacity: int
    window_s: float
    source: str


@dataclass(frozen=True)
class Ban:
    """A client that keeps sending after ``after_rejections`` rejections within a window is refused everything
    for ``seconds`` (HTTP 418 on the venue that does this)."""

    after_rejections: int
    seconds: float
    source: str


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused: the bucket that is full, seconds until it frees, and whether it is a ban."""

    venue: str
    bucket: str  # "<venue>:<bucket>", or "<venue>:ban"
    limit: Limit | None
    retry_after: int
    banned_until: float | None = None  # monotonic time, set for a ban


@dataclass(frozen=True)
class Instrument:
    """One entry of a venue's listing endpoint (including the entries clients must filter out)."""

    venue: str
    instrument_id: str
    base: str
    quote: str = "USDT"
    kind: str = "perpetual"  # perpetual | delivery | inverse | usdc
    status: str = ""  # the venue's own status string
    tradable: bool = True  # a live linear perpetual: what SimState.listed() returns
    contract_value: str = "1"  # base coins per contract (USD for an inverse swap)
    # Coins per unit the venue quotes in: Binance lists PEPE as 1000PEPEUSDT (base asset "1000PEPE"), serving
    # OI in thousands of PEPE and the mark price of a thousand. ``venue_base`` is that served base ("" = base).
    multiplier: int = 1
    venue_base: str = ""

    @property
    def served_base(self) -> str:
        return self.venue_base or self.base


@dataclass
class Request:
    """A parsed venue request; ``now_ms`` is the simulator clock when it arrived."""

    venue: str
    endpoint: str
    path: str
    params: dict[str, str]
    now_ms: int
    path_symbol: str | None = None  # a symbol carried in the path (route() returned it)
    options: dict[str, Any] = field(default_factory=dict)  # the simulator options this venue declares
    body: Any = None  # the decoded JSON body of a POST read (Hyperliquid /info); None for a GET


@dataclass
class Reply:
    """What to send: JSON ``body`` (or pre-rendered ``text``, or bytes ``content``), status and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    content_type: str = "application/json"
    content: bytes | None = None  # a binary body (the Binance archive's zips)


class VenueError(Exception):
    """Raised by a handler to answer with the venue's documented error."""

    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


class SimVenue:
    """One simulated venue. Subclass, set ``name`` and ``routes`` and write a ``do_<endpoint>`` per endpoint
    (dashes become underscores); everything else has a working default.

    Class attributes (override as needed):

    * ``routes``: path -> endpoint name; ``limits``: bucket -> :class:`Limit` (served as ``"<name>:<bucket>"``
      in ``positioning.sim.RATE_LIMITS``); ``ban``: :class:`Ban` or None;
    * ``unlisted``: symbols of the shared universe absent from the default listing;
    * ``ratio_metrics``: the metric names ``SimState.ratio`` accepts (None = any);
    * ``oi_scale``: OI relative to the reference magnitude; ``funding_decimals``, ``oi_decimals``: served decimals;
    * ``funding_interval_hours``: hours between funding payments, ``funding_intervals`` the exceptions (base ->
      hours): the venue's funding rate is served per its interval;
    * ``row_symbol_keys``: the row fields naming a symbol (symbol-scoped row faults on all-symbol bodies);
    * ``options``: simulator keyword options this venue reads from ``Request.options``: name -> allowed values,
      the first the default; ``fault_kinds``/``fault_options``: venue-specific fault kinds and their required
      options (applied by :meth:`apply_fault`).
    """

    name: ClassVar[str] = ""
    routes: ClassVar[dict[str, str]] = {}
    limits: ClassVar[dict[str, Limit]] = {}
    ban: ClassVar[Ban | None] = None
    unlisted: ClassVar[frozenset[str]] = frozenset()
    ratio_metrics: ClassVar[tuple[str, ...] | None] = None
    oi_scale: ClassVar[float] = DEFAULT_OI_SCALE
    funding_decimals: ClassVar[int] = 8
    funding_interval_hours: ClassVar[int] = 8
    funding_intervals: ClassVar[dict[str, int]] = {}
    oi_decimals: ClassVar[int] = 4
    row_symbol_keys: ClassVar[tuple[str, ...]] = ("symbol",)
    options: ClassVar[dict[str, tuple[str, ...]]] = {}
    fault_kinds: ClassVar[dict[str, str]] = {}
    fault_options: ClassVar[dict[str, tuple[str, ...]]] = {}

    # ------------------------------------------------------------------ routing
    def route(self, path: str) -> tuple[str, str | None] | None:
        """(endpoint, symbol carried in the path) when this venue serves ``path``, else None."""
        endpoint = self.routes.get(path)
        return (endpoint, None) if endpoint else None

    def route_request(self, method: str, path: str, body: Any) -> tuple[str, str | None] | None:
        """:meth:`route` for a request with its method and decoded JSON body: by default only GETs are served
        (a venue whose reads are POSTs, naming the endpoint in the body, overrides this)."""
        return self.route(path) if method == "GET" else None

    def endpoints(self) -> frozenset[str]:
        """Every endpoint name (what ``add_fault`` accepts)."""
        return frozenset(self.routes.values())

    def handle(self, request: Request, state: SimState) -> Reply:
        handler = getattr(self, "do_" + request.endpoint.replace("-", "_"))
        return handler(request, state)

    def request_symbol(self, request: Request) -> str | None:
        """The symbol a request is about (instrument id or base), for fault matching; None = all symbols."""
        return request.params.get("symbol") or None

    # ------------------------------------------------------------------ rate limits
    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        """The (bucket, units) a request consumes; by default one unit of the bucket named like the endpoint."""
        return [(endpoint, 1)] if endpoint in self.limits else []

    def usage_headers(self, used: Callable[[str], int]) -> dict[str, str]:
        """Headers reporting the client's usage (``used(bucket)`` = units in its current window)."""
        return {}

    # ------------------------------------------------------------------ listing and numbers
    def instruments(self, state: SimState) -> list[Instrument]:
        """The listing endpoint's entries, in served order: by default a linear USDT perpetual per symbol."""
        return [Instrument(self.name, f"{base}USDT", base) for base in state.symbols if base not in self.unlisted]

    def funding_string(self, rate: float) -> str:
        """The served funding rate for the market's per-interval ``rate``."""
        return fmt(rate, self.funding_decimals)

    def open_interest_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        """Served OI strings at ``ts_ms`` (already quantised to the second); by default ``coins``."""
        units = state.oi_coins(self.name, instrument, ts_ms) / instrument.multiplier
        return {"coins": fmt(units, self.oi_decimals)}

    def open_interest(self, state: SimState, symbol: str, served: dict[str, float], ts_ms: int) -> dict[str, Any]:
        """``SimState.open_interest`` from the parsed served strings: by default coins (the served units × the
        instrument's multiplier) and served units × served mark (USD does not depend on the multiplier)."""
        multiplier = state.require(self.name, symbol).multiplier
        return {
            "coins": served["coins"] * multiplier,
            "usd": served["coins"] * state.mark_price(self.name, symbol, ts_ms),
        }

    def ratio_strings(self, state: SimState, metric: str, base: str, period: str, bucket_ms: int) -> dict[str, str]:
        """Served long/short of one bucket: ``ratio``, ``long_share``, ``short_share``."""
        return state.shares(state.ratio_value(self.name, metric, base, period_ms(period), bucket_ms))

    # ------------------------------------------------------------------ errors and faults
    def error_body(self, status: int, now_ms: int) -> Any:
        """The venue's default body for an HTTP error status (fault kind ``status``)."""
        return {"error": status, "message": reason(status)}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        """The venue's error envelope (fault kind ``error_envelope``, sent with HTTP 200 by default)."""
        return {"code": code, "msg": msg}

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, self.error_body(429, now_ms), {"Retry-After": str(rejection.retry_after)})

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        """(the list holding the data rows or None, the row containers faults operate on)."""
        if isinstance(body, list):
            return body, body
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, list):
            return data, data
        return None, [body] if isinstance(body, dict) else []

    def empty(self, endpoint: str, body: Any) -> Any:
        """The same envelope with no data."""
        container, _rows = self.locate_rows(endpoint, body)
        if container is not None:
            container.clear()
            return body
        return {}

    def apply_fault(self, fault: Fault, request: Request) -> None:
        """Apply one of this venue's own ``fault_kinds`` to the request before it is rendered."""
