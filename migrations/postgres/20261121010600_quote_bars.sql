-- Up Migration
-- Bars of quote-priced instruments (forex and CFDs have no trades): OHLC of the mid price
-- (bid + ask) / 2 of tradeable two-sided quotes, ticks = number of quotes (the volume of a
-- quote bar), and slots = how many 10-second slots of the bar had at least one quote (the
-- coverage measure of market.canonical_bars). The same two engines as the trade bars
-- (20261121001000_bars.sql): hierarchical continuous aggregates on TimescaleDB, tables kept by
-- the rollup in sql/market/quote_bars_rollup.sql otherwise; views in sql/market/quote_bars.sql.
-- Which instruments are quote-priced is their asset class: forex and cfd, on both engines.

-- The order of quotes within a bar (first = open, last = close): quoted_at, then seq, as one
-- scalar (unique: (instrument_id, seq, quoted_at) is the key of market.quotes). Integers are
-- big-endian with the sign bit flipped, so byte order is numeric order.
create function market.quote_order_key(p_quoted_at timestamptz, p_seq bigint)
returns bytea
language sql
immutable parallel safe
as $$
  select set_byte(timestamptz_send(p_quoted_at), 0, get_byte(timestamptz_send(p_quoted_at), 0) # 128)
      || set_byte(int8send(p_seq), 0, get_byte(int8send(p_seq), 0) # 128)
$$;
comment on function market.quote_order_key(timestamptz, bigint) is
  'Sort key of a quote within its bar: (quoted_at, seq) as one bytea.';

-- Minutes whose quote bars must be rebuilt (written by the quote normalizers).
create table market.quote_bar_invalidations (
  instrument_id integer not null,
  bucket timestamptz not null,
  invalidated_at timestamptz not null default now(),
  constraint quote_bar_invalidations_pkey primary key (instrument_id, bucket)
);
create index quote_bar_invalidations_bucket_idx on market.quote_bar_invalidations (bucket);
comment on table market.quote_bar_invalidations is 'Minutes whose quote (mid-price) bars must be rebuilt because quotes arrived for them.';

do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    create materialized view market.quote_bars_1m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select q.instrument_id,
           time_bucket(interval '1 minute', q.quoted_at) as bucket,
           first((q.bid + q.ask) / 2, market.quote_order_key(q.quoted_at, q.seq)) as open,
           max((q.bid + q.ask) / 2) as high,
           min((q.bid + q.ask) / 2) as low,
           last((q.bid + q.ask) / 2, market.quote_order_key(q.quoted_at, q.seq)) as close,
           count(*) as ticks,
           count(distinct time_bucket(interval '10 seconds', q.quoted_at)) as slots
    from market.quotes q
    join market.instruments i on i.instrument_id = q.instrument_id
    where q.tradeable and q.bid is not null and q.ask is not null and i.asset_class in ('forex', 'cfd')
    group by q.instrument_id, time_bucket(interval '1 minute', q.quoted_at)
    with no data;

    create materialized view market.quote_bars_5m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '5 minutes', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(ticks)::bigint as ticks, sum(slots)::bigint as slots
    from market.quote_bars_1m_data
    group by instrument_id, time_bucket(interval '5 minutes', bucket)
    with no data;

    create materialized view market.quote_bars_15m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '15 minutes', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(ticks)::bigint as ticks, sum(slots)::bigint as slots
    from market.quote_bars_5m_data
    group by instrument_id, time_bucket(interval '15 minutes', bucket)
    with no data;

    create materialized view market.quote_bars_1h_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '1 hour', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(ticks)::bigint as ticks, sum(slots)::bigint as slots
    from market.quote_bars_15m_data
    group by instrument_id, time_bucket(interval '1 hour', bucket)
    with no data;

    create materialized view market.quote_bars_4h_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '4 hours', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(ticks)::bigint as ticks, sum(slots)::bigint as slots
    from market.quote_bars_1h_data
    group by instrument_id, time_bucket(interval '4 hours', bucket)
    with no data;

    create materialized view market.quote_bars_1d_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '1 day', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(ticks)::bigint as ticks, sum(slots)::bigint as slots
    from market.quote_bars_4h_data
    group by instrument_id, time_bucket(interval '1 day', bucket)
    with no data;
    comment on view market.quote_bars_1m_data is '1-minute mid-price bars (private); read market.quote_bars_1m.';
    comment on view market.quote_bars_5m_data is '5-minute mid-price bars (private); read market.quote_bars_5m.';
    comment on view market.quote_bars_15m_data is '15-minute mid-price bars (private); read market.quote_bars_15m.';
    comment on view market.quote_bars_1h_data is '1-hour mid-price bars (private); read market.quote_bars_1h.';
    comment on view market.quote_bars_4h_data is '4-hour mid-price bars (private); read market.quote_bars_4h.';
    comment on view market.quote_bars_1d_data is '1-day mid-price bars (private); read market.quote_bars_1d.';
  else
    create table market.quote_bars_1m_data (
      instrument_id integer not null,
      bucket timestamptz not null,
      open numeric not null,
      high numeric not null,
      low numeric not null,
      close numeric not null,
      ticks bigint not null,
      slots bigint not null,
      constraint quote_bars_1m_data_pkey primary key (instrument_id, bucket)
    );
    create table market.quote_bars_5m_data (like market.quote_bars_1m_data including all);
    create table market.quote_bars_15m_data (like market.quote_bars_1m_data including all);
    create table market.quote_bars_1h_data (like market.quote_bars_1m_data including all);
    create table market.quote_bars_4h_data (like market.quote_bars_1m_data including all);
    create table market.quote_bars_1d_data (like market.quote_bars_1m_data including all);
    comment on table market.quote_bars_1m_data is '1-minute mid-price bars (private); read market.quote_bars_1m.';
    comment on table market.quote_bars_5m_data is '5-minute mid-price bars (private); read market.quote_bars_5m.';
    comment on table market.quote_bars_15m_data is '15-minute mid-price bars (private); read market.quote_bars_15m.';
    comment on table market.quote_bars_1h_data is '1-hour mid-price bars (private); read market.quote_bars_1h.';
    comment on table market.quote_bars_4h_data is '4-hour mid-price bars (private); read market.quote_bars_4h.';
    comment on table market.quote_bars_1d_data is '1-day mid-price bars (private); read market.quote_bars_1d.';
  end if;
end
$$;

-- Down Migration
do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    delete from market.bar_refresh_windows where cagg::text like 'market.quote_bars_%';
    drop materialized view market.quote_bars_1d_data cascade;
    drop materialized view market.quote_bars_4h_data cascade;
    drop materialized view market.quote_bars_1h_data cascade;
    drop materialized view market.quote_bars_15m_data cascade;
    drop materialized view market.quote_bars_5m_data cascade;
    drop materialized view market.quote_bars_1m_data cascade;
  else
    drop table market.quote_bars_1d_data, market.quote_bars_4h_data, market.quote_bars_1h_data,
               market.quote_bars_15m_data, market.quote_bars_5m_data, market.quote_bars_1m_data cascade;
  end if;
end
$$;
drop table market.quote_bar_invalidations;
drop function market.quote_order_key(timestamptz, bigint);
