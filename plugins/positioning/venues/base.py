"""The venue contract: what one adapter (``venues/<venue>.py``) declares, and the toolkit its plan uses.

An adapter is one module that ends with ``SPEC = VenueSpec(...)``, the way ccxt's ``describe()`` is one place
for an exchange: identity (name, title, the DAG param that enables it, its Airflow connection and public URL),
documented rate limits and error envelope, its listing, the snapshot request plan (``plan``), the pure parsers
(payload in, ``positioning.rows`` out), history series with their paginators, what it cannot give for a past
interval, and its metric rules (which OI history is the venue's OI, which coin-level OI feeds the 24 h change,
whether its OI is split into sides). ``positioning.registry`` lists the adapters; nothing outside ``venues/``
branches on a venue name.

The columns a venue adds to the marts (``<venue>_oi_usd`` always; its ratios and extra values from ``columns``)
are generated from the registry into the SQL models, so a new venue needs no SQL edit.

Current and past intervals
--------------------------
Whether an interval is *past* is decided on the venue's clock (the ``Date`` header of its listing response,
which every plan fetches first; ours if it has none; ``ExtractRequest.now`` overrides both): past when its end
is older than :func:`freshness_tolerance`. A current interval uses the snapshot endpoints plus the ratio
history windows; a past one only history endpoints, over the same window, so values never depend on when the
run happened. What a venue keeps only as a snapshot is recorded in ``VenueExtract.unavailable`` (metric ->
reason) instead of storing today's value under an old timestamp; an interval older than a venue keeps an
endpoint (its *retention*) is not requested and is recorded the same way (:meth:`ExtractRequest.retention_gap`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from positioning.ingest.endpoints import Endpoint, EnvelopeError, FetchResult
from positioning.ingest.limits import RateLimit
from positioning.periods import PERIOD_MS, validate_period
from positioning.rows import Instrument, ParseError

if TYPE_CHECKING:
    from positioning.ingest.http import VenueClient


DAY = timedelta(days=1)
# The venue drops its oldest bucket while we are still asking: a window closer than this to the retention edge
# is treated as outside it (a clean gap rather than a 400 from the venue).
RETENTION_MARGIN = timedelta(minutes=10)
MIN_FRESHNESS = timedelta(minutes=90)
OUTSIDE_RETENTION = "outside retention"  # how a retention gap's reason starts (ops.interval_unavailable.kind)
SNAPSHOT_ONLY = "not available for this interval: {venue} {endpoint} gives only the current value (no history)"
VENUE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")  # it becomes SQL column names and a connection id


def unavailable_kind(reason: str) -> str:
    """``retention`` (the venue no longer keeps it) or ``snapshot_only`` (the venue never kept it)."""
    return "retention" if reason.startswith(OUTSIDE_RETENTION) else "snapshot_only"


def freshness_tolerance(interval_start: datetime, interval_end: datetime) -> timedelta:
    """How long after its end an interval still counts as current: max(90 min, 2 x its length).

    Within it, the snapshot endpoints still describe the interval (a scheduled run, or a UI trigger later in
    the following hour); beyond it they describe today, and only history endpoints are used. It is also longer
    than one 1h bucket, so the bucket ending at the interval end has ended (and is served) by then.
    """
    return max(MIN_FRESHNESS, 2 * (interval_end - interval_start))


def snapshot_only(venue: str, endpoint: str, metrics: tuple[str, ...]) -> dict[str, str]:
    return {metric: SNAPSHOT_ONLY.format(venue=venue, endpoint=endpoint) for metric in metrics}


@dataclass(frozen=True)
class ExtractRequest:
    """What one extract task asks of one venue."""

    symbols: tuple[str, ...]  # validated base symbols
    ls_period: str  # one of positioning.periods.LS_PERIODS
    interval_start: datetime
    interval_end: datetime
    include_oi_change_24h: bool = False
    now: datetime | None = None  # the clock to plan against; None = the venue's (see the module docstring)

    def __post_init__(self) -> None:
        validate_period(self.ls_period)

    def with_clock(self, venue_now: datetime | None) -> ExtractRequest:
        """This request with ``now`` set: an explicit ``now`` wins, then the venue's clock, then ours."""
        if self.now is not None:
            return self
        return dataclasses.replace(self, now=venue_now or datetime.now(UTC))

    @property
    def is_past(self) -> bool:
        """The interval ended longer ago than :func:`freshness_tolerance`: history endpoints only."""
        now = self.now or datetime.now(UTC)
        return now - self.interval_end > freshness_tolerance(self.interval_start, self.interval_end)

    def retention_gap(self, oldest_needed_ms: int, retention: timedelta, what: str) -> str | None:
        """Why ``what`` cannot be asked for this interval (its oldest bucket is older than the venue keeps it),
        or None when it can."""
        now = self.now or datetime.now(UTC)
        edge = now - retention + RETENTION_MARGIN
        oldest = datetime.fromtimestamp(oldest_needed_ms / 1000, UTC)
        if oldest < edge:
            return (
                f"{OUTSIDE_RETENTION}: {what} keeps {retention.days or retention} days of history and this interval "
                f"needs data from {oldest:%Y-%m-%d %H:%M} UTC"
            )
        return None

    @property
    def interval_end_ms(self) -> int:
        return int(self.interval_end.timestamp() * 1000)

    @property
    def interval_start_ms(self) -> int:
        return int(self.interval_start.timestamp() * 1000)

    @property
    def period_ms(self) -> int:
        return PERIOD_MS[self.ls_period]


@dataclass
class VenueExtract:
    """What a venue's plan returns."""

    venue: str
    results: list[FetchResult] = field(default_factory=list)
    instruments: dict[str, str] = field(default_factory=dict)  # base symbol -> venue instrument
    skipped: dict[str, str] = field(default_factory=dict)  # base symbol -> why it was not requested
    fatal: str | None = None  # set when nothing useful could be fetched (listing failed, geo-block...)
    # metric -> why the venue cannot give it for this interval (snapshot-only endpoint, outside retention)
    unavailable: dict[str, str] = field(default_factory=dict)
    history: bool = False  # the past-interval (history endpoints only) plan was used
    as_of: datetime | None = None  # the clock the plan was decided on


# ------------------------------------------------------------------------------------------ declarations


@dataclass(frozen=True)
class Listing:
    """The call that says which instruments a venue trades (every plan's first step)."""

    endpoint: Endpoint
    params: Mapping[str, Any] | None
    parse: Callable[[Any], list[Instrument]]
    # A listing served in pages (Bybit instruments-info, ``nextPageCursor``): the params of the page after the one
    # answered with ``payload`` to ``params``, or None when it was the last.
    next_page: Callable[[Any, Mapping[str, Any]], Mapping[str, Any] | None] | None = None


@dataclass(frozen=True)
class Column:
    """A column a venue adds to ``intermediate.symbol_interval`` (and the marts that carry it).

    ``source`` is a column of ``stg.venue_interval`` (a fact metric, or ``oi_long_usd``/``oi_short_usd``).
    A ``ratio`` column enters the consensus ratio and the per-venue imbalance; ``seed_average`` ones also the
    seed product's ``avg_ls_ratio``. A ``value`` column with ``snapshot`` also reaches ``marts.symbol_snapshot``.
    """

    name: str
    source: str
    kind: str = "ratio"  # "ratio" | "value"
    seed_average: bool = False
    snapshot: bool = True


class Paginator(Protocol):
    """How one history endpoint is paged over ``[start_ms, end_ms]`` (dlt's paginator-on-an-endpoint idea)."""

    async def pages(
        self, client: VenueClient, endpoint: Endpoint, params: dict[str, Any], symbol: str, start_ms: int, end_ms: int
    ) -> list[FetchResult]: ...


MAX_PAGES = 1000  # a safety stop for a venue that keeps answering with the same page


@dataclass(frozen=True)
class AscendingCursor:
    """Pages of ``limit`` rows from ``start`` upwards: the next page starts one period after the last row's
    timestamp; a short page (or the end) stops. (Binance ``startTime``/``endTime``/``limit``.)"""

    limit: int
    period_ms: int
    start_param: str = "startTime"
    end_param: str = "endTime"
    limit_param: str = "limit"
    ts_field: str = "timestamp"

    async def pages(
        self, client: VenueClient, endpoint: Endpoint, params: dict[str, Any], symbol: str, start_ms: int, end_ms: int
    ) -> list[FetchResult]:
        results, cursor = [], start_ms
        for _ in range(MAX_PAGES):
            query = {**params, self.start_param: cursor, self.end_param: end_ms, self.limit_param: self.limit}
            result = await client.get(endpoint, query, symbol=symbol)
            results.append(result)
            if not result.ok or not isinstance(result.payload, list) or len(result.payload) < self.limit:
                break
            cursor = int(result.payload[-1][self.ts_field]) + self.period_ms
            if cursor > end_ms:
                break
        return results


@dataclass(frozen=True)
class DescendingWindow:
    """The whole range in one call; if the venue answers with less (newest first), ask again for what is older
    than its oldest row. (OKX rubik ``begin``/``end``, rows ``[ts, ...]`` under ``data``.)"""

    period_ms: int
    begin_param: str = "begin"
    end_param: str = "end"

    async def pages(
        self, client: VenueClient, endpoint: Endpoint, params: dict[str, Any], symbol: str, start_ms: int, end_ms: int
    ) -> list[FetchResult]:
        results, end = [], end_ms
        for _ in range(MAX_PAGES):
            query = {**params, self.begin_param: start_ms, self.end_param: end}
            result = await client.get(endpoint, query, symbol=symbol)
            results.append(result)
            rows = result.payload.get("data") if result.ok and isinstance(result.payload, dict) else None
            if not rows:
                break
            oldest = min(int(row[0]) for row in rows)
            if oldest - self.period_ms < start_ms:
                break
            end = oldest - 1
        return results


@dataclass(frozen=True)
class HistorySeries:
    """One history endpoint of a venue at one bucket period, with how it is paged and how a symbol is named."""

    endpoint: Endpoint
    metrics: tuple[str, ...]
    period: str  # the venue's spelling
    period_ms: int
    retention: timedelta
    paginator: Paginator
    symbol_param: str = "symbol"
    by_instrument: bool = True  # the param takes the venue instrument (else the base coin)
    extra_params: Mapping[str, Any] = field(default_factory=dict)  # sent with every page (OKX instType)
    # A coarser period of the same metrics that the venue keeps longer (OKX 1D): the bulk fill asks it only for the
    # hours the finer series no longer reaches.
    coarser: bool = False

    def params(self, symbol: str, instrument: str) -> dict[str, Any]:
        return {self.symbol_param: instrument if self.by_instrument else symbol, "period": self.period,
                **self.extra_params}  # fmt: skip


@dataclass(frozen=True)
class VenueSpec:
    """Everything about one venue, in one declaration (see the module docstring)."""

    name: str
    title: str  # for people: "Binance USD-M"
    param: str  # the DAG param that enables it: includeBinance
    param_help: str
    public_url: str
    limits: Mapping[str, RateLimit]
    envelope_error: Callable[[Any], EnvelopeError | None]
    listing: Listing
    parsers: Mapping[str, Callable[..., list[Any]]]
    plan: Callable[[VenueClient, ExtractRequest], Awaitable[VenueExtract]]
    past_unavailable: Callable[[], dict[str, str]]
    columns: tuple[Column, ...] = ()
    ratio_basis: str = "accounts"  # what its ratios count, for marts.imbalance_by_venue
    colour: str = "#6b7280"  # the dashboard's colour for it
    # endpoint -> vectorised parser ``pages -> (frame, rejected)``; a function so polars loads only when used
    frame_parsers: Callable[[], Mapping[str, Callable[..., Any]]] = dict
    history: Callable[[str], list[HistorySeries]] = lambda ls_period: []
    # metric rules
    instrument_oi_history: bool = False  # its OI history is per instrument: it becomes the venue's OI facts
    oi_change_period: str | None = None  # its coin-level OI history at this period feeds oi_usd_change_24h_pct
    oi_sides_metric: str | None = None  # its OI is split into long/short sides: their quotient is this metric
    ratio_endpoints: Mapping[str, str] = field(default_factory=dict)  # ratio metric -> the endpoint that sends it
    # hours per funding payment where its responses do not say (FundingInterval rows override it per instrument)
    funding_interval_hours: float | None = None

    def __post_init__(self) -> None:
        if not VENUE_NAME.fullmatch(self.name):
            raise ValueError(f"venue name {self.name!r} must match {VENUE_NAME.pattern} (it names SQL columns)")
        for column in self.columns:
            if not VENUE_NAME.fullmatch(column.name) or not VENUE_NAME.fullmatch(column.source):
                raise ValueError(f"{self.name}: column {column.name!r} / {column.source!r} is not an identifier")

    @property
    def connection_id(self) -> str:
        return f"positioning_{self.name}"

    @property
    def has_history(self) -> bool:
        """Whether the bulk fill can ask it for past buckets."""
        return bool(self.history("1h"))

    def endpoint_of(self, metric: str) -> str:
        """The endpoint a ratio metric comes from (for messages), or the metric itself if undeclared."""
        return self.ratio_endpoints.get(metric, metric)

    def ratio_columns(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.kind == "ratio")


# --------------------------------------------------------------------------------------------- plan toolkit


def venue_clock(result: FetchResult) -> datetime | None:
    """The venue's clock when it answered: the ``Date`` header of the landed response (None if absent)."""
    from positioning.ingest.raw import read_raw

    if not result.raw_paths:
        return None
    try:
        date = read_raw(result.raw_paths[-1]).meta.get("headers", {}).get("date")
        return parsedate_to_datetime(date).astimezone(UTC) if date else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


async def gather_per_symbol(calls: list[Any]) -> list[FetchResult]:
    """Run per-symbol coroutines concurrently; the client's limiters pace them."""
    return list(await asyncio.gather(*calls))


def map_listed(
    venue: str, instruments: list[Instrument], symbols: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """Base symbol -> tradable venue instrument, and base symbol -> why it is skipped on this venue.

    A symbol the venue does not list (or lists but does not trade) is skipped and reported, not an error. Where a
    venue trades an asset both singly and in multiples, the single one is used.
    """
    by_symbol: dict[str, Instrument] = {}
    for instrument in instruments:
        current = by_symbol.get(instrument.symbol)
        if current is None or (instrument.tradable, instrument.multiplier == 1) > (
            current.tradable,
            current.multiplier == 1,
        ):
            by_symbol[instrument.symbol] = instrument
    mapped, skipped = {}, {}
    for symbol in symbols:
        instrument = by_symbol.get(symbol)
        if instrument is None:
            skipped[symbol] = f"not listed on {venue}"
        elif not instrument.tradable:
            skipped[symbol] = f"{instrument.instrument} is {instrument.status} on {venue}, not trading"
        else:
            mapped[symbol] = instrument.instrument
    return mapped, skipped


async def fetch_listing(
    client: VenueClient, venue: str, listing: Listing, request: ExtractRequest
) -> tuple[VenueExtract, ExtractRequest, FetchResult]:
    """Every plan's first step: the listing call, which symbols the venue trades, and the venue's clock.

    Returns the extract so far (``fatal`` set when the listing failed or did not parse: nothing else is asked),
    the request with ``now`` set from the listing's ``Date`` header, and the listing response itself (its first
    page; every page is in the extract's ``results``).
    """
    result = VenueExtract(venue)
    instruments: list[Instrument] = []
    params: Mapping[str, Any] | None = listing.params
    first: FetchResult | None = None
    for _ in range(MAX_PAGES):
        response = await client.get(listing.endpoint, params)
        result.results.append(response)
        first = first or response
        if not response.ok:
            result.fatal = f"{venue} {listing.endpoint.name} failed: {response.error}"
            return result, request, first
        try:
            instruments += listing.parse(response.payload)
            params = listing.next_page(response.payload, params or {}) if listing.next_page else None
        except ParseError as exc:
            result.fatal = str(exc)
            return result, request, first
        if params is None:
            break
    assert first is not None
    result.instruments, result.skipped = map_listed(venue, instruments, request.symbols)
    request = request.with_clock(venue_clock(first))
    result.as_of = request.now
    return result, request, first
