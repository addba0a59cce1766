-- Grants on what sql/ defines, for the roles created by migration 20261121018800_roles.sql.
-- This file is applied after every other sql/ file (path order: "zz"), at every migrate, because
-- `create or replace function` resets SECURITY DEFINER and SET search_path, and because views
-- and functions are (re)created by the files above. Everything here is idempotent.

-- Entry points of the ingester. They run as tickflow_worker (their owner): normalization,
-- connection events and the bars-refresh request write market, quality, ops and the job queue
-- with the worker's rights, and the ingester itself can only append frames. search_path is
-- pinned so a caller cannot redirect names.
do $$
declare
  v_fn text;
begin
  foreach v_fn in array array['staging.normalize_batch(uuid)', 'ops.record_events(jsonb)', 'ops.request_bars_refresh()'] loop
    if to_regprocedure(v_fn) is not null then
      execute format('alter function %s owner to tickflow_worker', v_fn);
      execute format('alter function %s security definer set search_path = pg_catalog, public, pg_temp', v_fn);
      execute format('revoke execute on function %s from public', v_fn);
      execute format('grant execute on function %s to tickflow_ingester, tickflow_worker', v_fn);
    end if;
  end loop;
  -- Partition maintenance is DDL on tables the schema owner owns: it runs as the owner.
  if to_regprocedure('ops.run_maintenance()') is not null then
    alter function ops.run_maintenance() security definer set search_path = pg_catalog, public, pg_temp;
    revoke execute on function ops.run_maintenance() from public;
    grant execute on function ops.run_maintenance() to tickflow_worker;
  end if;
  -- The job queue's tables, whoever installed them and when (default privileges cover those the
  -- owner installs after migration 20261121018800; this covers an older database).
  if to_regclass('graphile_worker._private_jobs') is not null then
    grant usage on schema graphile_worker to tickflow_worker;
    grant all on all tables in schema graphile_worker to tickflow_worker;
    grant all on all sequences in schema graphile_worker to tickflow_worker;
  end if;
  -- graphile-worker installs its schema on first start (create schema if not exists needs CREATE
  -- on the database); the worker then owns the queue's tables, which have row level security.
  begin
    execute format('grant create on database %I to tickflow_worker', current_database());
  exception when internal_error then
    -- PGlite (single-user WASM Postgres, used by the TimescaleDB tests) cannot update pg_database.
    raise warning 'could not grant CREATE on database % to tickflow_worker: %', current_database(), sqlerrm;
  end;
end
$$;

-- TimescaleDB: refresh_continuous_aggregate() must be called by the aggregate's owner, and the
-- worker is the one that calls it (jobs/bars_refresh.ts). The public bars views keep reading them.
do $$
declare
  v_cagg text;
begin
  if to_regclass('timescaledb_information.continuous_aggregates') is not null then
    for v_cagg in execute 'select format(''%I.%I'', view_schema, view_name) from timescaledb_information.continuous_aggregates
                           where view_schema in (''market'', ''quality'') order by 1' loop
      execute format('alter materialized view %s owner to tickflow_worker', v_cagg);
    end loop;
  end if;
end
$$;

-- Analysts and Grafana read every view of market and quality, never the tables behind them.
-- TimescaleDB's continuous aggregates are views too, but they are the private stores of the bars
-- (market.bars_<tf>_data); the public bars views read them.
do $$
declare
  v_caggs text[] := '{}';
  v_view text;
begin
  if to_regclass('timescaledb_information.continuous_aggregates') is not null then
    execute 'select coalesce(array_agg(format(''%I.%I'', view_schema, view_name)), ''{}'')
             from timescaledb_information.continuous_aggregates' into v_caggs;
  end if;
  for v_view in
    select format('%I.%I', n.nspname, c.relname)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('market', 'quality') and c.relkind in ('v', 'm')
    order by 1
  loop
    if not v_view = any(v_caggs) then
      execute format('grant select on %s to tickflow_analyst, tickflow_grafana', v_view);
    end if;
  end loop;
end
$$;

-- Grafana's operational views and functions (the overview and ingestion dashboards). The functions
-- read staging and ops tables Grafana may not read itself: they run as tickflow_worker, read-only
-- (stable), with a pinned search_path.
grant select on ops.feed_status, ops.venues to tickflow_grafana;
do $$
declare
  v_fn text;
begin
  foreach v_fn in array array['ops.ingest_rate(timestamptz, timestamptz, bigint, text)',
                              'ops.landing_latency(timestamptz, timestamptz, bigint)',
                              'ops.connection_events_over_time(timestamptz, timestamptz, bigint, text)'] loop
    execute format('alter function %s owner to tickflow_worker', v_fn);
    execute format('alter function %s security definer set search_path = pg_catalog, public, pg_temp', v_fn);
    execute format('revoke execute on function %s from public', v_fn);
    execute format('grant execute on function %s to tickflow_grafana', v_fn);
  end loop;
end
$$;

-- Quotes of a time range from both stores (sql/market/015_quote_blocks.sql): analysts and Grafana
-- may not read the tables, and market.bbo cannot skip blocks by time. It runs as tickflow_worker,
-- read-only (stable), with a pinned search_path.
alter function market.bbo_between(timestamptz, timestamptz, text[]) owner to tickflow_worker;
alter function market.bbo_between(timestamptz, timestamptz, text[]) security definer
  set search_path = pg_catalog, public, pg_temp;
revoke execute on function market.bbo_between(timestamptz, timestamptz, text[]) from public;
grant execute on function market.bbo_between(timestamptz, timestamptz, text[])
  to tickflow_analyst, tickflow_grafana, tickflow_worker;
