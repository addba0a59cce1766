-- Up Migration
-- Least privilege in the database: four roles, each allowed what its part of tickflow does.
--
--   tickflow_ingester  lands raw frames: INSERT into staging.frames and ops.batches, and two
--                      SECURITY DEFINER entry points (staging.normalize_batch, ops.record_events,
--                      see sql/zz_privileges.sql) that run as tickflow_worker. It reads nothing.
--   tickflow_worker    runs the job queue: reads and writes every table of staging, market,
--                      quality and ops (no DDL: partitions are created through ops.run_maintenance,
--                      a SECURITY DEFINER function of the schema owner) and the job queue's tables
--                      (graphile_worker, whoever installs them: the owner in single-process mode,
--                      the worker itself when it runs as tickflow_worker; they have row level
--                      security, hence BYPASSRLS where the migration may grant it).
--   tickflow_analyst   reads the market and quality views (not the tables behind them).
--   tickflow_grafana   reads the views the dashboards use; read-only transactions and a statement
--                      timeout by default.
--
-- Roles are cluster-wide and are created here without LOGIN and without a password (a migration
-- never holds a secret): an operator gives one a password (`alter role tickflow_grafana login
-- password '...'`), or creates login users that are members of it; docker-compose's database
-- init script creates them with LOGIN and passwords from .env before this runs, and then only the
-- grants below apply. Grants on views and functions defined in sql/ are in sql/zz_privileges.sql,
-- which is applied after them at every migrate.
do $$
declare
  v_role text;
begin
  foreach v_role in array array['tickflow_ingester', 'tickflow_worker', 'tickflow_analyst', 'tickflow_grafana'] loop
    if not exists (select from pg_roles where rolname = v_role) then
      begin
        execute format('create role %I nologin', v_role);
      exception when duplicate_object or unique_violation then
        null; -- created concurrently by a migration of another database of this cluster
      end;
    end if;
  end loop;
  -- Only a superuser may grant BYPASSRLS; elsewhere the worker must own the queue's tables.
  if (select rolsuper from pg_roles where rolname = current_user) then
    alter role tickflow_worker bypassrls;
  end if;
end
$$;

-- The job queue: graphile-worker installs its tables here on first start ("create schema if not
-- exists" needs CREATE on the database, granted in sql/zz_privileges.sql); tables the owner
-- installs are the worker's to use.
create schema if not exists graphile_worker;
grant usage, create on schema graphile_worker to tickflow_worker;
alter default privileges in schema graphile_worker grant all on tables to tickflow_worker;
alter default privileges in schema graphile_worker grant all on sequences to tickflow_worker;
alter default privileges in schema graphile_worker grant execute on functions to tickflow_worker;
grant usage on schema staging, ops to tickflow_ingester;
grant usage on schema staging, market, quality, ops to tickflow_worker;
grant usage on schema market, quality to tickflow_analyst;
grant usage on schema market, quality, ops to tickflow_grafana;

-- The landing transaction: COPY into staging.frames, the batch row (insert ... on conflict
-- (batch_id) do nothing returning batch_id), and the batch's normalize_error when inline
-- normalization fails.
grant insert on staging.frames to tickflow_ingester;
grant usage on sequence staging.frame_id_seq to tickflow_ingester;
grant insert, select (batch_id), update (normalize_error) on ops.batches to tickflow_ingester;

grant select, insert, update, delete on all tables in schema staging, market, quality, ops to tickflow_worker;
grant usage, select, update on all sequences in schema staging, market, quality, ops to tickflow_worker;
-- Tables and sequences the schema owner creates later (later migrations, new partitions).
alter default privileges in schema staging, market, quality, ops
  grant select, insert, update, delete on tables to tickflow_worker;
alter default privileges in schema staging, market, quality, ops
  grant usage, select, update on sequences to tickflow_worker;

-- Dashboards must never hold a lock or a connection for long, nor write.
alter role tickflow_grafana set statement_timeout = '10s';
alter role tickflow_grafana set default_transaction_read_only = on;

-- Down Migration
alter default privileges in schema graphile_worker revoke execute on functions from tickflow_worker;
alter default privileges in schema graphile_worker revoke all on sequences from tickflow_worker;
alter default privileges in schema graphile_worker revoke all on tables from tickflow_worker;
revoke usage, create on schema graphile_worker from tickflow_worker;
alter role tickflow_grafana reset default_transaction_read_only;
alter role tickflow_grafana reset statement_timeout;
alter default privileges in schema staging, market, quality, ops
  revoke usage, select, update on sequences from tickflow_worker;
alter default privileges in schema staging, market, quality, ops
  revoke select, insert, update, delete on tables from tickflow_worker;
revoke all on all sequences in schema staging, market, quality, ops from tickflow_worker, tickflow_ingester;
revoke all on all tables in schema staging, market, quality, ops from tickflow_worker, tickflow_ingester, tickflow_analyst, tickflow_grafana;
revoke usage on schema staging, market, quality, ops from tickflow_ingester, tickflow_worker, tickflow_analyst, tickflow_grafana;
