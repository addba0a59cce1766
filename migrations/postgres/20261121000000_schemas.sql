-- Up Migration
-- The four layers of tickflow: staging (raw payloads), market (normalized facts and bars),
-- quality (findings) and ops (sessions, batches, watermarks, settings).
create schema if not exists staging;
create schema if not exists market;
create schema if not exists quality;
create schema if not exists ops;

-- TimescaleDB is used when the server has it; otherwise the portable rollup path is taken.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'timescaledb')
     and coalesce(current_setting('tickflow.bars_engine', true), 'auto') <> 'rollup' then
    create extension if not exists timescaledb;
  end if;
end
$$;

create table ops.settings (
  key text primary key,
  value text not null,
  updated_at timestamptz not null default now()
);
comment on table ops.settings is 'Runtime settings kept in the database (retention, thresholds); changed with ops.set_setting().';

-- Down Migration
drop schema if exists ops cascade;
drop schema if exists quality cascade;
drop schema if exists market cascade;
drop schema if exists staging cascade;
