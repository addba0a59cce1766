-- Up Migration
-- Ticks of whole venue files (a Dukascopy hour) are kept a file to a row, as columns: one
-- instrument-year is about 40 million ticks, and storing them a row each (two indexes, a numeric
-- per price) cannot go faster than about 200,000 rows a second a core, three minutes a year.
--
-- staging.tick_columns: the decoded records of a file, as the venue wrote them (offsets and prices
-- in the file's integers, volumes as the shortest decimals of its float32s), landed by binary COPY
-- in the transaction of their frame (staging.frames, same frame_id). landed_at is our clock at
-- landing, never before the frame's received_at, so a batch's receive times prune it too.
select ops.create_time_table(
  $ddl$create table staging.tick_columns (
  frame_id bigint not null,
  landed_at timestamptz not null default now(),
  ms integer[] not null,
  ask integer[] not null,
  bid integer[] not null,
  ask_volume numeric[] not null,
  bid_volume numeric[] not null
)$ddl$,
  'staging.tick_columns', 'landed_at', '1 day', '1 day');
create index tick_columns_frame_idx on staging.tick_columns (frame_id);
comment on table staging.tick_columns is
  'Records of a landed tick file as columns (venue integers and decimals, file order), beside its frame (staging.frames, same frame_id).';

-- The landing transaction writes a file's columns beside its frame.
grant insert on staging.tick_columns to tickflow_ingester;

-- market.quote_blocks: a file's ticks that SQL accepted, still in points and file order, with the
-- price of one point; market.quotes_between() presents them as quotes (sql/market/015_quote_blocks.sql).
select ops.create_time_table(
  $ddl$create table market.quote_blocks (
  instrument_id integer not null,
  hour_start timestamptz not null,
  ticks integer not null,
  unit numeric not null,
  ms integer[] not null,
  ask integer[] not null,
  bid integer[] not null,
  ask_volume numeric[] not null,
  bid_volume numeric[] not null,
  received_at timestamptz not null,
  source text not null,
  frame_id bigint,
  sync_xid xid8 default pg_current_xact_id(),
  sync_id bigint default nextval('market.sync_id_seq'),
  constraint quote_blocks_pkey primary key (instrument_id, hour_start),
  constraint quote_blocks_hour_check check (extract(epoch from hour_start) % 3600 = 0),
  constraint quote_blocks_ticks_check check (ticks = cardinality(ms) and ticks = cardinality(ask) and ticks = cardinality(bid)
                                             and ticks = cardinality(ask_volume) and ticks = cardinality(bid_volume))
)$ddl$,
  'market.quote_blocks', 'hour_start', '1 month', '1 month');
create index quote_blocks_sync_idx on market.quote_blocks (sync_xid, sync_id);
comment on table market.quote_blocks is
  'An hour of a venue file''s ticks as columns (ms offset, ask and bid in points, volumes in the venue''s unit); '
  'read them as quotes with market.quotes_between(from, to).';
comment on column market.quote_blocks.unit is 'The price of one point: price = points * unit.';

-- Arrays are large values: compressed with lz4 where the server has it, else stored as they are
-- (pglz would be the slowest step of landing; see 20261121020400_frames_payload_storage.sql).
do $$
declare
  v_col record;
begin
  for v_col in
    select t, c from unnest(array['staging.tick_columns', 'market.quote_blocks']) t,
                     unnest(array['ms', 'ask', 'bid', 'ask_volume', 'bid_volume']) c
  loop
    if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
      execute format('alter table %s alter column %I set compression lz4', v_col.t, v_col.c);
    else
      execute format('alter table %s alter column %I set storage external', v_col.t, v_col.c);
    end if;
  end loop;
exception when feature_not_supported then
  raise notice 'tick columns keep their storage: %', sqlerrm;
end
$$;

-- The files a batch recorded (staging.dukascopy_check_empty_hours) are found by their frames.
create index venue_files_frame_idx on market.venue_files (frame_id);

-- TimescaleDB: retention is a policy per hypertable (ops.apply_timescale_retention keeps it in
-- line with the settings): staging's, and the ticks'.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    perform add_retention_policy('staging.tick_columns',
      coalesce((select value from ops.settings where key = 'retention.staging_days'), '30')::integer * interval '1 day',
      if_not_exists => true);
    perform add_retention_policy('market.quote_blocks',
      coalesce((select value from ops.settings where key = 'retention.ticks_days'), '365')::integer * interval '1 day',
      if_not_exists => true);
  end if;
end
$$;

-- Down Migration
drop index market.venue_files_frame_idx;
delete from ops.time_tables where table_name::text in ('staging.tick_columns', 'market.quote_blocks');
drop table market.quote_blocks;
drop table staging.tick_columns;
