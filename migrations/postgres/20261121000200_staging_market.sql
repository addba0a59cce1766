-- Up Migration
-- Time-partitioned tables are hypertables with TimescaleDB and native range partitions
-- otherwise (monthly for market, daily for staging, created ahead by ops.ensure_partitions()).
create sequence staging.frame_id_seq;

select ops.create_time_table(
  $ddl$create table staging.frames (
  frame_id bigint not null default nextval('staging.frame_id_seq'),
  batch_id uuid not null,
  venue text not null,
  stream text not null,
  session_id uuid,
  seq bigint not null,
  received_at timestamptz not null,
  source text not null,
  request text,
  payload text not null,
  constraint frames_source_check check (source in ('ws', 'stream', 'rest', 'file', 'socket'))
)$ddl$,
  'staging.frames', 'received_at', '1 day', '1 day');
create index frames_batch_idx on staging.frames (batch_id);
create index frames_received_idx on staging.frames (received_at);
comment on table staging.frames is 'Raw venue payloads exactly as received (append-only), with their envelope.';

create table staging.quarantine (
  quarantine_id bigint generated always as identity primary key,
  frame_id bigint not null,
  item integer not null default -1,
  batch_id uuid,
  venue text not null,
  stream text not null,
  received_at timestamptz not null,
  payload text not null,
  reason text not null,
  normalizer text not null,
  quarantined_at timestamptz not null default now(),
  constraint quarantine_frame_item_key unique (frame_id, item)
);
comment on table staging.quarantine is 'Payloads (or items of a payload) that could not be normalized, with the reason; never deleted by retention.';

create table market.instruments (
  instrument_id integer generated always as identity primary key,
  venue text not null,
  venue_symbol text not null,
  symbol text not null,
  asset_class text not null default 'crypto',
  base text,
  quote text,
  first_seen_at timestamptz not null default now(),
  constraint instruments_venue_symbol_key unique (venue, venue_symbol),
  constraint instruments_asset_class_check check (asset_class in ('crypto', 'forex', 'index', 'equity', 'cfd'))
);
create index instruments_symbol_idx on market.instruments (symbol);

select ops.create_time_table(
  $ddl$create table market.trades (
  instrument_id integer not null,
  traded_at timestamptz not null,
  trade_id text not null,
  seq bigint,
  price numeric not null,
  size numeric not null,
  side text,
  received_at timestamptz not null,
  source text not null,
  frame_id bigint,
  constraint trades_pkey primary key (instrument_id, trade_id, traded_at),
  constraint trades_side_check check (side in ('buy', 'sell')),
  constraint trades_price_check check (price > 0 and price <> 'NaN' and price <> 'Infinity'),
  constraint trades_size_check check (size > 0 and size <> 'NaN' and size <> 'Infinity')
)$ddl$,
  'market.trades', 'traded_at', '1 month', '1 day');
comment on column market.trades.side is 'Aggressor side: buy when the buyer took liquidity.';
comment on column market.trades.seq is 'The venue''s numeric trade sequence where it has one (gap detection uses it).';
create index trades_instrument_time_idx on market.trades (instrument_id, traded_at);
create index trades_instrument_seq_idx on market.trades (instrument_id, seq);

select ops.create_time_table(
  $ddl$create table market.quotes (
  instrument_id integer not null,
  quoted_at timestamptz not null,
  seq bigint not null,
  bid numeric,
  bid_size numeric,
  ask numeric,
  ask_size numeric,
  tradeable boolean not null default true,
  time_source text not null default 'venue',
  received_at timestamptz not null,
  source text not null,
  frame_id bigint,
  constraint quotes_pkey primary key (instrument_id, seq, quoted_at),
  constraint quotes_time_source_check check (time_source in ('venue', 'received')),
  constraint quotes_price_check check ((bid is null or (bid > 0 and bid <> 'NaN' and bid <> 'Infinity'))
                                   and (ask is null or (ask > 0 and ask <> 'NaN' and ask <> 'Infinity')))
)$ddl$,
  'market.quotes', 'quoted_at', '1 month', '1 day');
comment on column market.quotes.seq is 'The venue''s update id, or microseconds since the epoch of quoted_at where the venue has none.';
comment on column market.quotes.time_source is 'received: the venue sends no event time for this stream, so quoted_at is our receive time.';
create index quotes_instrument_time_idx on market.quotes (instrument_id, quoted_at);

create table market.book_levels (
  instrument_id integer not null,
  side text not null,
  price numeric not null,
  size numeric not null,
  update_id bigint not null,
  updated_at timestamptz not null,
  constraint book_levels_pkey primary key (instrument_id, side, price),
  constraint book_levels_side_check check (side in ('bid', 'ask'))
);
comment on table market.book_levels is 'The current order book per instrument, kept by applying venue diffs in update-id order.';

create table market.book_state (
  instrument_id integer primary key,
  last_update_id bigint not null,
  snapshot_update_id bigint not null,
  in_sync boolean not null,
  synced_at timestamptz,
  updated_at timestamptz not null,
  last_snapshot_at timestamptz,
  diffs_applied bigint not null default 0,
  diffs_skipped bigint not null default 0,
  breaks bigint not null default 0
);

select ops.create_time_table(
  $ddl$create table market.book_snapshots (
  instrument_id integer not null,
  taken_at timestamptz not null,
  update_id bigint not null,
  origin text not null,
  bid_prices numeric[] not null,
  bid_sizes numeric[] not null,
  ask_prices numeric[] not null,
  ask_sizes numeric[] not null,
  received_at timestamptz not null,
  constraint book_snapshots_pkey primary key (instrument_id, update_id, origin, taken_at),
  constraint book_snapshots_origin_check check (origin in ('venue', 'derived'))
)$ddl$,
  'market.book_snapshots', 'taken_at', '1 month', '1 day');
comment on table market.book_snapshots is 'Book snapshots: venue REST snapshots (origin venue) and top levels of the maintained book (origin derived).';

-- Down Migration
drop table market.book_snapshots;
drop table market.book_state;
drop table market.book_levels;
drop table market.quotes;
drop table market.trades;
drop table market.instruments;
drop table staging.quarantine;
drop table staging.frames;
drop sequence staging.frame_id_seq;
