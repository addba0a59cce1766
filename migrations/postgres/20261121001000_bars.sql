-- Up Migration
-- OHLCV bars 1m, 5m, 15m, 1h, 4h, 1d from market.trades, in one of two physical forms with the
-- same names and columns (instrument_id, bucket, open, high, low, close, volume, notional, trades):
--   * TimescaleDB: hierarchical continuous aggregates (1m from trades, 5m from 1m, ... 1d from 4h);
--   * otherwise: plain tables kept by the rollup in sql/market/bars_rollup.sql.
-- Consumers read the views market.bars_<timeframe> and market.bars() (sql/market/bars.sql).
-- notional = sum(price * size) is stored so that vwap = notional / volume is one division,
-- computed the same way on both engines. Buckets are aligned like time_bucket():
-- date_bin(width, t, '2000-01-03 00:00:00+00').

-- The order of trades within a bucket (first = open, last = close): traded_at, then the venue's
-- numeric trade sequence (trades without one first), then trade_id in byte order. Unique, because
-- (instrument_id, trade_id, traded_at) is the key of market.trades, and one scalar, so that
-- TimescaleDB's first()/last() and the rollup's ordered array_agg() sort identically. Each integer
-- is big-endian with its sign bit flipped, so byte order is numeric order. convert_to() is only
-- "stable" because conversions can be redefined; to the server encoding it is a plain copy, so
-- the key never changes for a stored row and "immutable" holds. Existing bars were built with this
-- definition: changing it means rebuilding every bar.
create function market.trade_order_key(p_traded_at timestamptz, p_seq bigint, p_trade_id text)
returns bytea
language sql
immutable parallel safe
as $$
  select set_byte(timestamptz_send(p_traded_at), 0, get_byte(timestamptz_send(p_traded_at), 0) # 128)
      || case when p_seq is null then '\x00'::bytea
              else '\x01'::bytea || set_byte(int8send(p_seq), 0, get_byte(int8send(p_seq), 0) # 128) end
      || convert_to(p_trade_id, 'UTF8')
$$;
comment on function market.trade_order_key(timestamptz, bigint, text) is
  'Sort key of a trade within its bar: (traded_at, seq nulls first, trade_id in byte order) as one bytea.';

do $$
declare
  v_staging interval := coalesce((select value from ops.settings where key = 'retention.staging_days'), '30')::integer * interval '1 day';
  v_ticks interval := coalesce((select value from ops.settings where key = 'retention.ticks_days'), '365')::integer * interval '1 day';
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    -- materialized_only: bars appear when their window is refreshed, as on the rollup path, so
    -- both engines show the same rows at the same point of the pipeline.
    create materialized view market.bars_1m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id,
           time_bucket(interval '1 minute', traded_at) as bucket,
           first(price, market.trade_order_key(traded_at, seq, trade_id)) as open,
           max(price) as high,
           min(price) as low,
           last(price, market.trade_order_key(traded_at, seq, trade_id)) as close,
           sum(size) as volume,
           sum(price * size) as notional,
           count(*) as trades
    from market.trades
    group by instrument_id, time_bucket(interval '1 minute', traded_at)
    with no data;

    create materialized view market.bars_5m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '5 minutes', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(volume) as volume, sum(notional) as notional, sum(trades)::bigint as trades
    from market.bars_1m_data
    group by instrument_id, time_bucket(interval '5 minutes', bucket)
    with no data;

    create materialized view market.bars_15m_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '15 minutes', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(volume) as volume, sum(notional) as notional, sum(trades)::bigint as trades
    from market.bars_5m_data
    group by instrument_id, time_bucket(interval '15 minutes', bucket)
    with no data;

    create materialized view market.bars_1h_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '1 hour', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(volume) as volume, sum(notional) as notional, sum(trades)::bigint as trades
    from market.bars_15m_data
    group by instrument_id, time_bucket(interval '1 hour', bucket)
    with no data;

    create materialized view market.bars_4h_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '4 hours', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(volume) as volume, sum(notional) as notional, sum(trades)::bigint as trades
    from market.bars_1h_data
    group by instrument_id, time_bucket(interval '4 hours', bucket)
    with no data;

    create materialized view market.bars_1d_data
    with (timescaledb.continuous, timescaledb.materialized_only = true) as
    select instrument_id, time_bucket(interval '1 day', bucket) as bucket,
           first(open, bucket) as open, max(high) as high, min(low) as low, last(close, bucket) as close,
           sum(volume) as volume, sum(notional) as notional, sum(trades)::bigint as trades
    from market.bars_4h_data
    group by instrument_id, time_bucket(interval '1 day', bucket)
    with no data;

    -- refresh_continuous_aggregate() cannot run in a transaction, so market.refresh_bars() only
    -- turns invalidated minutes into windows here, and the bars_refresh job refreshes each window
    -- with its own CALL and then deletes it. A window stays queued until refreshed.
    create table market.bar_refresh_windows (
      window_id bigint generated always as identity primary key,
      level smallint not null,
      cagg regclass not null,
      window_start timestamptz not null,
      window_end timestamptz not null,
      queued_at timestamptz not null default now(),
      constraint bar_refresh_windows_key unique (cagg, window_start, window_end),
      constraint bar_refresh_windows_check check (window_end > window_start)
    );
    comment on table market.bar_refresh_windows is
      'TimescaleDB engine: continuous-aggregate windows waiting for refresh_continuous_aggregate(), lowest level first.';

    -- Compression of chunks older than 7 days. Columns of unique keys must be segment-by or
    -- order-by columns.
    alter table staging.frames set (timescaledb.compress, timescaledb.compress_segmentby = 'venue, stream',
                                    timescaledb.compress_orderby = 'received_at, frame_id');
    alter table market.trades set (timescaledb.compress, timescaledb.compress_segmentby = 'instrument_id',
                                   timescaledb.compress_orderby = 'traded_at, trade_id');
    alter table market.quotes set (timescaledb.compress, timescaledb.compress_segmentby = 'instrument_id',
                                   timescaledb.compress_orderby = 'quoted_at, seq');
    alter table market.book_snapshots set (timescaledb.compress, timescaledb.compress_segmentby = 'instrument_id',
                                           timescaledb.compress_orderby = 'taken_at, update_id, origin');
    perform add_compression_policy('staging.frames', interval '7 days', if_not_exists => true);
    perform add_compression_policy('market.trades', interval '7 days', if_not_exists => true);
    perform add_compression_policy('market.quotes', interval '7 days', if_not_exists => true);
    perform add_compression_policy('market.book_snapshots', interval '7 days', if_not_exists => true);

    -- Retention of raw detail (the partition-dropping ops.run_maintenance() does the same on the
    -- portable path). Bars are kept forever; they are only recomputed for windows that received
    -- trades, so dropping old trades never empties old bars.
    perform add_retention_policy('staging.frames', v_staging, if_not_exists => true);
    perform add_retention_policy('market.trades', v_ticks, if_not_exists => true);
    perform add_retention_policy('market.quotes', v_ticks, if_not_exists => true);
    perform add_retention_policy('market.book_snapshots', v_ticks, if_not_exists => true);
    comment on view market.bars_1m_data is '1-minute bars (private); read market.bars_1m or market.bars().';
    comment on view market.bars_5m_data is '5-minute bars (private); read market.bars_5m or market.bars().';
    comment on view market.bars_15m_data is '15-minute bars (private); read market.bars_15m or market.bars().';
    comment on view market.bars_1h_data is '1-hour bars (private); read market.bars_1h or market.bars().';
    comment on view market.bars_4h_data is '4-hour bars (private); read market.bars_4h or market.bars().';
    comment on view market.bars_1d_data is '1-day bars (private); read market.bars_1d or market.bars().';
  else
    create table market.bars_1m_data (
      instrument_id integer not null,
      bucket timestamptz not null,
      open numeric not null,
      high numeric not null,
      low numeric not null,
      close numeric not null,
      volume numeric not null,
      notional numeric not null,
      trades bigint not null,
      constraint bars_1m_data_pkey primary key (instrument_id, bucket)
    );
    create table market.bars_5m_data (like market.bars_1m_data including all);
    create table market.bars_15m_data (like market.bars_1m_data including all);
    create table market.bars_1h_data (like market.bars_1m_data including all);
    create table market.bars_4h_data (like market.bars_1m_data including all);
    create table market.bars_1d_data (like market.bars_1m_data including all);
    comment on table market.bars_1m_data is '1-minute bars (private); read market.bars_1m or market.bars().';
    comment on table market.bars_5m_data is '5-minute bars (private); read market.bars_5m or market.bars().';
    comment on table market.bars_15m_data is '15-minute bars (private); read market.bars_15m or market.bars().';
    comment on table market.bars_1h_data is '1-hour bars (private); read market.bars_1h or market.bars().';
    comment on table market.bars_4h_data is '4-hour bars (private); read market.bars_4h or market.bars().';
    comment on table market.bars_1d_data is '1-day bars (private); read market.bars_1d or market.bars().';
  end if;
end
$$;

create index bar_invalidations_bucket_idx on market.bar_invalidations (bucket);

-- Down Migration
-- Compression settings stay on the hypertables: turning them off needs every chunk decompressed.
drop index market.bar_invalidations_bucket_idx;
do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    perform remove_retention_policy('staging.frames', if_exists => true);
    perform remove_retention_policy('market.trades', if_exists => true);
    perform remove_retention_policy('market.quotes', if_exists => true);
    perform remove_retention_policy('market.book_snapshots', if_exists => true);
    perform remove_compression_policy('staging.frames', if_exists => true);
    perform remove_compression_policy('market.trades', if_exists => true);
    perform remove_compression_policy('market.quotes', if_exists => true);
    perform remove_compression_policy('market.book_snapshots', if_exists => true);
    drop table market.bar_refresh_windows;
    drop materialized view market.bars_1d_data cascade;
    drop materialized view market.bars_4h_data cascade;
    drop materialized view market.bars_1h_data cascade;
    drop materialized view market.bars_15m_data cascade;
    drop materialized view market.bars_5m_data cascade;
    drop materialized view market.bars_1m_data cascade;
  else
    drop table market.bars_1d_data, market.bars_4h_data, market.bars_1h_data, market.bars_15m_data,
               market.bars_5m_data, market.bars_1m_data cascade;
  end if;
end
$$;
drop function market.trade_order_key(timestamptz, bigint, text);
