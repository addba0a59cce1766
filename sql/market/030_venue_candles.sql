-- Venue candles with venue and canonical symbol: the public face of market.candles.

create or replace view market.venue_candles as
select i.venue, i.symbol, c.instrument_id, c.timeframe, c.price_side, c.bucket, c.open, c.high, c.low, c.close,
       c.volume, c.volume_kind, c.trade_count, c.complete, c.source, c.received_at, c.frame_id
from market.candles c
join market.instruments i using (instrument_id);
comment on view market.venue_candles is
  'Candles as venues publish them (Dukascopy files, exchange klines), by venue and canonical symbol; '
  'volume_kind says what volume counts.';
