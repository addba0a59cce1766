-- Up Migration
-- Venue candles: bars as a venue publishes them (Dukascopy candle files, OANDA and Binance
-- klines, Polygon aggregates), kept apart from the bars tickflow derives from trades and quotes,
-- so the two can be compared. One row per instrument, timeframe, price side and bucket start.
select ops.create_time_table(
  $ddl$create table market.candles (
  instrument_id integer not null,
  timeframe text not null,
  bucket timestamptz not null,
  price_side text not null,
  open numeric not null,
  high numeric not null,
  low numeric not null,
  close numeric not null,
  volume numeric,
  volume_kind text,
  trade_count bigint,
  complete boolean not null,
  source text not null,
  received_at timestamptz not null,
  frame_id bigint,
  constraint candles_pkey primary key (instrument_id, timeframe, price_side, bucket),
  constraint candles_timeframe_check check (timeframe ~ '^[1-9][0-9]*(s|m|h|d|w|mo)$'),
  constraint candles_price_side_check check (price_side in ('bid', 'ask', 'mid', 'trade')),
  constraint candles_volume_kind_check check (volume_kind in ('base', 'quote', 'tick_count', 'quoted_size')),
  constraint candles_volume_check check ((volume is null) = (volume_kind is null)
                                         and (volume is null or (volume >= 0 and volume <> 'NaN' and volume <> 'Infinity'))),
  constraint candles_price_check check (low > 0 and low <> 'NaN' and high <> 'NaN' and high <> 'Infinity'
                                        and open <> 'NaN' and close <> 'NaN'
                                        and low <= least(open, close) and high >= greatest(open, close)),
  constraint candles_trade_count_check check (trade_count >= 0)
)$ddl$,
  'market.candles', 'bucket', '1 month', '7 days');
comment on table market.candles is
  'Candles as the venue publishes them (not derived by tickflow); read through market.venue_candles.';
comment on column market.candles.timeframe is
  'Bucket length: <n>s, <n>m, <n>h, <n>d, <n>w or <n>mo (1m, 1h, 1d ...); bucket is the start, in UTC.';
comment on column market.candles.price_side is
  'Which price the candle is built from: bid, ask, mid (quotes) or trade.';
comment on column market.candles.volume_kind is
  'base: traded quantity in the base asset; quote: traded value in the quote asset; tick_count: number of price '
  'updates (OANDA); quoted_size: sum of the top-of-book sizes of the ticks on price_side, in base units (Dukascopy).';
comment on column market.candles.complete is
  'False while the bucket was still open when the venue served it; a later complete candle replaces it.';

-- Down Migration
delete from ops.time_tables where table_name = 'market.candles'::regclass;
drop table market.candles;
