-- model: marts.taker_flow
-- layer: mart. Who is hitting the market: taker buy volume against taker sell volume, per venue and across
--        venues. Flow, not positioning (a market can be crowded long while its takers sell into it), so it is in
--        no long/short consensus; read it beside marts.skew_history.
-- grain: one row per (ts, symbol, venue) of stg.venue_interval with a taker ratio.
-- keys: (ts, symbol, venue). Incremental on ts (no lookback: nothing here looks at other intervals).
-- definitions:
--   taker_buy_sell_ratio   taker buy volume / taker sell volume of the venue's latest bucket ended at ts
--                          (Binance takerlongshortRatio per instrument; OKX rubik taker-volume per coin over all
--                          its contracts); taker_period is the bucket length in the venue's spelling
--   taker_buy_share        r / (1 + r): the buy fraction of the taker volume
--   taker_imbalance_pct    (r - 1) / (r + 1) x 100: +100 all buying, -100 all selling
--   venues_with_taker      venues of this (ts, symbol) with a taker ratio
--   consensus_taker_ratio  exp(mean(ln r)) over those venues (ratios are multiplicative); its imbalance as above
--                          in consensus_taker_imbalance_pct
--   taker_deviation_pct    taker_imbalance_pct - the consensus's: how far this venue's flow sits from the others
WITH venues AS (
    SELECT ts, symbol, venue, taker_buy_sell AS r, taker_period, oi_usd
    FROM stg.venue_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals) AND taker_buy_sell > 0
),

cross_venue AS (
    SELECT
        ts,
        symbol,
        count(*) AS venues_with_taker,
        exp(avg(ln(r))) AS consensus_taker_ratio
    FROM venues
    GROUP BY ts, symbol
)

SELECT
    v.ts,
    v.symbol,
    v.venue,
    v.r AS taker_buy_sell_ratio,
    v.taker_period,
    v.r / (1 + v.r) AS taker_buy_share,
    (v.r - 1) / (v.r + 1) * 100 AS taker_imbalance_pct,
    v.oi_usd,
    c.venues_with_taker::INTEGER AS venues_with_taker,
    c.consensus_taker_ratio,
    (c.consensus_taker_ratio - 1) / (c.consensus_taker_ratio + 1) * 100 AS consensus_taker_imbalance_pct,
    (v.r - 1) / (v.r + 1) * 100
    - (c.consensus_taker_ratio - 1) / (c.consensus_taker_ratio + 1) * 100 AS taker_deviation_pct
FROM venues AS v
INNER JOIN cross_venue AS c ON v.ts = c.ts AND v.symbol = c.symbol
