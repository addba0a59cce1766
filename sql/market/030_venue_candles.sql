-- Venue candles with venue and canonical symbol: the public face of market.candles.

create or replace function market.candle_price_sides()
returns text[]
language sql
immutable parallel safe
as $$
  -- Every price side market.candles allows (its check constraint). Filtering on all of them,
  -- rather than not at all, keeps price_side a usable part of the key (instrument_id, timeframe,
  -- price_side, bucket) for bucket ranges on servers without btree skip scan (before Postgres 18).
  select array['trade', 'bid', 'ask', 'mid', 'value']
$$;
comment on function market.candle_price_sides() is 'The price sides a candle can have: trade, bid, ask, mid, value.';

create or replace view market.venue_candles as
select i.venue, i.symbol, c.instrument_id, c.timeframe, c.price_side, c.bucket, c.open, c.high, c.low, c.close,
       c.volume, c.volume_kind, c.trade_count, c.complete, c.source, c.received_at, c.frame_id
from market.candles c
join market.instruments i using (instrument_id);
comment on view market.venue_candles is
  'Candles as venues publish them (Dukascopy files, exchange klines), by venue and canonical symbol; '
  'volume_kind says what volume counts.';
