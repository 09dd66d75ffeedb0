-- Migration 005: what the real venues send (issue #15).

-- core.dim_instrument.multiplier: coins of the asset per unit the venue quotes in. 1000 for Binance
-- `1000PEPEUSDT` (OI counted in thousands of PEPE, mark price per thousand), 1 for everything else. The fact
-- table's oi_coins and mark_price are per coin of the asset (the venue's figures converted by it); USD values
-- are the venue's.
ALTER TABLE core.dim_instrument ADD COLUMN IF NOT EXISTS multiplier DOUBLE DEFAULT 1;

-- core.fact_positioning.ratio_source (ratio rows): where the published ratio came from:
--   'venue'    the venue's ratio as sent;
--   'shares'   the quotient of the venue's long and short shares, because the venue's ratio equals it only after
--              a factor of 100 (Bitget's longShortAccountRatio on a x0.01 scale); quality.expectation_results
--              records it under ratio_on_shares_scale;
--   'oi_sides' long OI / short OI (Strike).
-- core.fact_positioning.venue_ratio: the venue's ratio as sent (ratio rows from a ratio endpoint).
ALTER TABLE core.fact_positioning ADD COLUMN IF NOT EXISTS ratio_source VARCHAR;
ALTER TABLE core.fact_positioning ADD COLUMN IF NOT EXISTS venue_ratio DOUBLE;
