-- Up Migration
-- Several sources per instrument (forex from OANDA first, Polygon second), index values, and a
-- price side for candles of a value that is neither bid, ask, mid nor a trade (an index level).

-- Which venue's data is canonical for a symbol, in priority order. market.instruments holds one
-- row per venue; this says how those rows rank. A row with symbol '*' applies to every symbol of
-- its asset class; rows naming a symbol replace the '*' rows for that symbol entirely.
create table market.instrument_sources (
  asset_class text not null,
  symbol text not null default '*',
  venue text not null,
  priority integer not null,
  constraint instrument_sources_pkey primary key (asset_class, symbol, venue),
  constraint instrument_sources_priority_key unique (asset_class, symbol, priority),
  constraint instrument_sources_priority_check check (priority >= 1),
  constraint instrument_sources_asset_class_check check (asset_class in ('crypto', 'forex', 'index', 'equity', 'cfd'))
);
comment on table market.instrument_sources is
  'Source priority per asset class (symbol ''*'') or per symbol: 1 is preferred. market.canonical_bars() picks, per bucket, '
  'the best-ranked source that covered the bucket completely.';
insert into market.instrument_sources (asset_class, symbol, venue, priority) values
  ('forex', '*', 'oanda', 1), ('forex', '*', 'polygon', 2),
  ('cfd', '*', 'oanda', 1),
  ('index', '*', 'polygon', 1),
  ('equity', '*', 'polygon', 1), ('equity', '*', 'ib', 2),
  ('crypto', '*', 'binance', 1), ('crypto', '*', 'polygon', 2);

-- Index levels (Polygon V events): a computed value, not a trade and not a quote.
select ops.create_time_table(
  $ddl$create table market.index_values (
  instrument_id integer not null,
  valued_at timestamptz not null,
  value numeric not null,
  received_at timestamptz not null,
  source text not null,
  frame_id bigint,
  constraint index_values_pkey primary key (instrument_id, valued_at),
  constraint index_values_value_check check (value > 0 and value <> 'NaN' and value <> 'Infinity')
)$ddl$,
  'market.index_values', 'valued_at', '1 month', '7 days');
comment on table market.index_values is 'Index levels as the venue publishes them (one per instrument and venue time).';

alter table market.candles drop constraint candles_price_side_check;
alter table market.candles add constraint candles_price_side_check
  check (price_side in ('bid', 'ask', 'mid', 'trade', 'value'));
comment on column market.candles.price_side is
  'Which price the candle is built from: bid, ask, mid (quotes), trade, or value (an index level).';

-- Down Migration
alter table market.candles drop constraint candles_price_side_check;
alter table market.candles add constraint candles_price_side_check check (price_side in ('bid', 'ask', 'mid', 'trade'));
delete from ops.time_tables where table_name = 'market.index_values'::regclass;
drop table market.index_values;
drop table market.instrument_sources;
