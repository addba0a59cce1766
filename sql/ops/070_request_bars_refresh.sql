-- The landing writer asks the worker for a bars refresh after batches with new trades. It calls
-- this function rather than graphile_worker.add_job() so that an ingester connected as
-- tickflow_ingester needs no rights on the job queue: SECURITY DEFINER with a fixed body (one job,
-- one key) and a pinned search_path, owned by tickflow_worker (sql/zz_privileges.sql).

create or replace function ops.request_bars_refresh()
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- plpgsql, not sql: the job queue's schema is installed by the worker, possibly after this.
  perform graphile_worker.add_job('bars_refresh', '{}'::json, job_key := 'bars_refresh',
                                  run_at := now() + interval '1 second', job_key_mode := 'preserve_run_at');
end
$$;
comment on function ops.request_bars_refresh() is
  'Queues one bars_refresh job a second from now (keyed, so repeated calls collapse); callable by the ingester role.';
