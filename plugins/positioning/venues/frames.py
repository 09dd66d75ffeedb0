"""Vectorised parsing of history pages: many JSON pages per polars call, for endpoints that answer with an
array of flat objects whose values are numeric strings (Binance ``/futures/data``, and any venue alike).

The result has the same columns as the row parsers' output (then ``warehouse.normalize``). A page is taken only
if every value is in a form whose meaning is certain (numeric strings both ``float()`` and polars read alike,
letter-led symbols, integer timestamps); any other page is "rejected" and the caller parses it with the venue's
row parser, so errors and edge cases stay the row parser's.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

NUMBER_PATTERN = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))$"
SYMBOL_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]*$"
NOT_SYMBOLS = ["true", "false", "null", "nan", "inf", "infinity"]
# Pages are decoded together by one ``str.json_decode`` call: an exception there (one page that is not an array
# of objects) sends the batch through one ``read_json`` per page instead, which isolates the odd page.
PAGE_COLUMNS = {"body": pl.String, "period": pl.String}
DECODE_PAGES = 64  # pages per json_decode chunk (a page is at most 500 rows, ~40 KB)


def _not_all_strings(names: Sequence[str]) -> pl.Expr:
    """True for a page where an occurrence of one of the quoted ``names`` is followed by something other than
    ``:"``, ``: "``, ``:null`` or ``: null``, in one regex pass per page."""
    if not names:
        return pl.lit(False)
    alternatives = "|".join(names)
    odd_value = r'(?:[^ "n]|n(?:[^u]|u[^l]|ul[^l]|$|u$|ul$)| (?:[^"n]|n(?:[^u]|u[^l]|ul[^l]|$|u$|ul$))|$| $)'
    return pl.col("body").str.contains(f'"(?:{alternatives})"(?:[^:]|$|:{odd_value})')


def frame_parser(
    venue: str,
    endpoint: str,
    required: dict[str, str],
    optional: dict[str, str],
    metric: str | None,
    *,
    string_fields: Sequence[str] = (),
):
    """``parse(pages) -> (frame, rejected)``: pages are ``(body_text, params)`` pairs, or a frame of
    :data:`PAGE_COLUMNS` (``body``, and ``period`` from the request's params); the frame has the row type's
    columns plus ``_page`` (index into ``pages``); ``rejected`` lists the pages the row parser must take."""
    fields = ["symbol", "timestamp", *required, *optional]
    schema = dict.fromkeys(fields, pl.String)
    page_type = pl.List(pl.Struct(schema))
    as_number = {name: pl.col(name).cast(pl.Float64, strict=False) for name in fields}

    def valid(name: str) -> pl.Expr:
        return pl.col(name).str.contains(NUMBER_PATTERN) & as_number[name].is_not_null()

    ts = as_number["timestamp"]
    ok = (
        pl.col("symbol").str.contains(SYMBOL_PATTERN)
        & ~pl.col("symbol").str.to_lowercase().is_in(NOT_SYMBOLS)
        & valid("timestamp")
        & ts.is_finite()
        & (ts >= 0)
        & ts.cast(pl.Int64, strict=False).is_not_null()
    )
    for name in required:
        ok = ok & valid(name)
    for name in optional:
        ok = ok & (pl.col(name).is_null() | (pl.col(name) == "") | valid(name))

    def value(name: str) -> pl.Expr:
        return pl.when(pl.col(name) != "").then(as_number[name])

    columns: dict[str, pl.Expr] = {
        "venue": pl.lit(venue),
        "key": pl.col("symbol"),
        **({"metric": pl.lit(metric)} if metric else {}),
        "period": pl.col("period"),
        "ts_ms": ts.cast(pl.Int64),
        **{column: value(name) for name, column in {**required, **optional}.items()},
        **({} if metric else {"contracts": pl.lit(None, pl.Float64)}),
        "_page": pl.col("_page"),
    }

    values = [name for name in (*required, *optional) if name in string_fields]
    # Row validity first, then the window over pages on a plain column (a window over the whole expression is
    # evaluated group by group, several times slower).
    page_ok = pl.col("_row_ok").all().over("_page")
    empty = pl.DataFrame(schema={**schema, "_page": pl.Int64, "period": pl.String})

    def decoded_together(pages: pl.DataFrame) -> pl.DataFrame | None:
        """Rows of every page (``_page``, ``period``, the fields), or None if one page is not an array of objects."""
        # In chunks of a few MB: json_decode over one large chunk holds ~10x the text in memory while it works.
        chunked = pl.concat(
            [pages.slice(start, DECODE_PAGES) for start in range(0, pages.height, DECODE_PAGES)] or [pages],
            rechunk=False,
        )
        try:
            return (
                chunked.select(pl.col("_page"), pl.col("period"), rows=pl.col("body").str.json_decode(page_type))
                .explode("rows")
                .unnest("rows")
            )
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
            return None

    def decoded_one_by_one(pages: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
        frames, rejected = [], []
        for index, period, body in pages.select("_page", "period", "body").iter_rows():
            try:
                page = pl.read_json(io.StringIO(body), schema=schema)
            except (Exception, pl.exceptions.PanicException):
                rejected.append(index)
                continue
            frames.append(page.with_columns(_page=pl.lit(index, pl.Int64), period=pl.lit(period, pl.String)))
        rows = pl.concat(frames, how="diagonal_relaxed") if frames else empty
        return rows.select(empty.columns), rejected

    def parse(pages: Sequence[tuple[str, Mapping[str, Any] | None]] | pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
        if not isinstance(pages, pl.DataFrame):
            pages = pl.DataFrame(
                {
                    "body": [body for body, _params in pages],
                    "period": [str((params or {}).get("period", "")) for _body, params in pages],
                },
                schema=PAGE_COLUMNS,
            )
        pages = pages.with_row_index("_page").with_columns(pl.col("_page").cast(pl.Int64))
        odd = pages.select(_not_all_strings(values).fill_null(True) | pl.col("body").is_null()).to_series()
        rejected = pages.filter(odd)["_page"].to_list()
        pages = pages.filter(~odd)
        rows = decoded_together(pages)
        if rows is None:
            rows, unreadable = decoded_one_by_one(pages)
            rejected += unreadable
        # An empty page ("[]", or something the reader took for nothing) is left for the row parser to decide;
        # explode turns it into one all-null row, which the checks below reject with its page.
        rows = rows.select(empty.columns).with_columns(_row_ok=ok.fill_null(False)).with_columns(_ok=page_ok)
        if not rows["_ok"].all():
            rejected = sorted({*rejected, *rows.filter(~pl.col("_ok"))["_page"].unique().to_list()})
            rows = rows.filter(pl.col("_ok"))
        return rows.select(**columns), sorted(rejected)

    parse.__name__ = f"frame_parse_{endpoint}"
    return parse
