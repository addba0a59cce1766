-- Up Migration
create table market.agg_trades (
  instrument_id integer not null,
  traded_at timestamptz not null,
  agg_id bigint not null,
  first_trade_seq bigint not null,
  last_trade_seq bigint not null,
  price numeric not null,
  size numeric not null,
  side text not null,
  received_at timestamptz not null,
  source text not null,
  frame_id bigint,
  constraint agg_trades_pkey primary key (instrument_id, agg_id, traded_at),
  constraint agg_trades_side_check check (side in ('buy', 'sell'))
);
create index agg_trades_instrument_time_idx on market.agg_trades (instrument_id, traded_at);
comment on table market.agg_trades is 'Venue aggregate trades (one taker order filled at one price), with the range of trade ids they cover.';

-- The gap ledger: every disconnect, sequence break and hole found later.
create table quality.gaps (
  gap_id bigint generated always as identity primary key,
  venue text not null,
  stream text not null,
  instrument_id integer,
  gap_from timestamptz not null,
  gap_to timestamptz,
  from_seq bigint,
  to_seq bigint,
  detected_by text not null,
  state text not null default 'detected',
  detected_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  rows_recovered bigint not null default 0,
  session_id uuid,
  detail jsonb not null default '{}',
  constraint gaps_state_check check (state in ('detected', 'queued', 'recovering', 'recovered',
                                               'unrecoverable', 'venue_outage', 'market_closed')),
  constraint gaps_detected_by_check check (detected_by in ('disconnect', 'sequence_break', 'book_break', 'scan', 'stale'))
);
create index gaps_open_idx on quality.gaps (venue, stream, gap_from) where state in ('detected', 'queued', 'recovering');
comment on table quality.gaps is 'The gap ledger: a hole in a feed from gap_from to gap_to, how it was found, and what became of it.';

create table staging.normalizers (
  venue text not null,
  version text not null,
  valid_from timestamptz not null,
  valid_to timestamptz not null default 'infinity',
  fn regprocedure not null,
  constraint normalizers_pkey primary key (venue, version)
);
comment on table staging.normalizers is
  'Which normalizer function handles a venue''s frames received in [valid_from, valid_to); a format change adds a version.';

-- Buckets whose bars must be rebuilt because trades or quotes arrived for them.
create table market.bar_invalidations (
  instrument_id integer not null,
  bucket timestamptz not null,
  invalidated_at timestamptz not null default now(),
  constraint bar_invalidations_pkey primary key (instrument_id, bucket)
);

-- Down Migration
drop table market.bar_invalidations;
drop table staging.normalizers;
drop table quality.gaps;
drop table market.agg_trades;
