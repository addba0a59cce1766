-- Backfill as a plan: a request becomes chunks on a fixed grid (ops.backfill_chunks), each a
-- graphile-worker job (task backfill_chunk, job key backfill_chunk:<chunk_id>) that fetches the
-- venue's REST pages within the venue's budget, lands them in staging and records progress.
-- A chunk already done is never fetched again, by this plan or a later one over the same range.

create or replace function ops.backfill_chunk_length(p_kind text, p_timeframe text)
returns interval
language sql
immutable parallel safe
as $$
  -- About ten pages of 1,000 rows per chunk for candles; an hour of trades; a day of tick files.
  select case
    when p_kind = 'trades' then interval '1 hour'
    when p_kind = 'ticks' then interval '1 day'
    when p_timeframe = '1s' then interval '3 hours'
    when p_timeframe = '1m' then interval '7 days'
    when p_timeframe in ('3m', '5m') then interval '28 days'
    when p_timeframe in ('15m', '30m') then interval '112 days'
    when p_timeframe in ('1h', '2h') then interval '364 days'
    else interval '3640 days'
  end
$$;
comment on function ops.backfill_chunk_length(text, text) is
  'Length of one backfill chunk by kind and timeframe (chunks are aligned to a grid from Monday 2000-01-03 UTC).';

create or replace function ops.graphile_worker_installed()
returns boolean
language sql
stable
as $$
  select to_regprocedure('graphile_worker.add_job(text, json, text, timestamptz, integer, text, integer, text[], text)') is not null
$$;
comment on function ops.graphile_worker_installed() is 'True once graphile-worker has installed its schema (the first worker start does).';

create or replace function ops.enqueue_backfill_chunks(p_plan bigint)
returns integer
language plpgsql
as $$
declare
  v_chunk record;
  v_done integer := 0;
  v_attempts integer := ops.setting('backfill.max_attempts', '5')::integer;
begin
  if not ops.graphile_worker_installed() then
    return 0; -- the first worker start enqueues them (ops.enqueue_pending_backfills)
  end if;
  for v_chunk in
    select c.chunk_id from ops.backfill_plan_chunks pc join ops.backfill_chunks c using (chunk_id)
    where pc.plan_id = p_plan and c.state = 'queued'
    order by c.chunk_from
  loop
    perform graphile_worker.add_job('backfill_chunk', json_build_object('chunkId', v_chunk.chunk_id),
                                    job_key := 'backfill_chunk:' || v_chunk.chunk_id, max_attempts := v_attempts,
                                    job_key_mode := 'preserve_run_at');
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$$;
comment on function ops.enqueue_backfill_chunks(bigint) is 'Adds (or keeps) one job per queued chunk of a plan; returns how many.';

create or replace function ops.plan_backfill(p_venue text, p_symbol text, p_kind text, p_timeframe text,
                                             p_from timestamptz, p_to timestamptz, p_requested_by text default 'sql')
returns bigint
language plpgsql
as $$
declare
  v_plan bigint;
  v_len interval;
  v_timeframe text := case when p_kind = 'candles' then p_timeframe end;
begin
  if p_venue is null or p_symbol is null or p_from is null or p_to is null then
    raise exception using errcode = '22004',
      message = 'ops.plan_backfill: expected venue, symbol, from and to, received a null';
  end if;
  if p_kind is null or p_kind not in ('candles', 'trades', 'ticks') then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected kind candles, trades or ticks, received %s', coalesce(quote_literal(p_kind), 'null'));
  end if;
  if p_kind = 'candles' and (p_timeframe is null or p_timeframe !~ '^[1-9][0-9]*(s|m|h|d)$') then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected a timeframe such as 1m or 1h for candles, received %s',
                       coalesce(quote_literal(p_timeframe), 'null'));
  end if;
  if p_to <= p_from then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected from before to, received from %s, to %s', p_from, p_to);
  end if;
  v_len := ops.backfill_chunk_length(p_kind, v_timeframe);
  insert into ops.backfill_plans (venue, symbol, kind, timeframe, range_from, range_to, chunk_length, requested_by)
  values (p_venue, p_symbol, p_kind, v_timeframe, p_from, p_to, v_len, p_requested_by)
  returning plan_id into v_plan;
  -- Partitions for the whole range first (rows never pile up in a default partition).
  perform ops.ensure_partitions(case p_kind when 'candles' then 'market.candles' when 'ticks' then 'market.quotes'
                                  else 'market.trades' end::regclass, p_from, p_to);
  if p_kind = 'ticks' then
    perform ops.ensure_partitions('market.quote_blocks', p_from, p_to);
  end if;
  -- The grid cells of the range, clipped to it, less what finished chunks (of any earlier plan)
  -- already cover: each remaining piece is a chunk; the finished chunks it overlaps join the plan.
  insert into ops.backfill_chunks (venue, symbol, kind, timeframe, chunk_from, chunk_to)
  select p_venue, p_symbol, p_kind, v_timeframe, lower(r), upper(r)
  from generate_series(date_bin(v_len, p_from, timestamptz '2000-01-03 00:00:00+00'), p_to - interval '1 microsecond', v_len) g
  cross join lateral unnest(
    tstzmultirange(tstzrange(greatest(g, p_from), least(g + v_len, p_to)))
    - coalesce((select range_agg(tstzrange(d.chunk_from, d.chunk_to))
                from ops.backfill_chunks d
                where d.venue = p_venue and d.symbol = p_symbol and d.kind = p_kind
                  and d.timeframe is not distinct from v_timeframe and d.state = 'done'
                  and d.chunk_from < least(g + v_len, p_to) and d.chunk_to > greatest(g, p_from)),
               '{}'::tstzmultirange)) r
  on conflict on constraint backfill_chunks_key do nothing;
  insert into ops.backfill_plan_chunks (plan_id, chunk_id)
  select v_plan, c.chunk_id
  from ops.backfill_chunks c
  where c.venue = p_venue and c.symbol = p_symbol and c.kind = p_kind and c.timeframe is not distinct from v_timeframe
    and c.chunk_from < p_to and c.chunk_to > p_from
    -- finished chunks it overlaps, and the chunks of its own pieces (inside the range)
    and (c.state = 'done' or (c.chunk_from >= p_from and c.chunk_to <= p_to))
  on conflict do nothing;
  -- What an earlier run left unfinished is fetched again; what it finished is not.
  update ops.backfill_chunks c
     set state = 'queued', attempts = 0, last_error = null, queued_at = now(), updated_at = now()
    from ops.backfill_plan_chunks pc
   where pc.plan_id = v_plan and pc.chunk_id = c.chunk_id and c.state in ('failed', 'partial');
  perform ops.enqueue_backfill_chunks(v_plan);
  return v_plan;
end
$$;
comment on function ops.plan_backfill(text, text, text, text, timestamptz, timestamptz, text) is
  'Plans a backfill of [p_from, p_to): venue, canonical symbol (BTC/USDT), kind candles (with timeframe), trades or ticks. '
  'Chunks already done are reused, the rest are queued as jobs. Returns the plan id; progress in ops.backfill_progress.';

create or replace function ops.enqueue_pending_backfills()
returns integer
language sql
as $$
  -- Plans made before graphile-worker was installed, and chunks whose job is gone.
  select coalesce(sum(ops.enqueue_backfill_chunks(p.plan_id)), 0)::integer
  from ops.backfill_plans p
  where exists (select 1 from ops.backfill_plan_chunks pc join ops.backfill_chunks c using (chunk_id)
                where pc.plan_id = p.plan_id and c.state = 'queued')
$$;

create or replace function ops.backfill_chunk_start(p_chunk bigint)
returns setof ops.backfill_chunks
language sql
as $$
  -- A chunk that is done is not started again (a job left over from an earlier plan).
  update ops.backfill_chunks
     set state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, clock_timestamp()),
         finished_at = null, updated_at = clock_timestamp()
   where chunk_id = p_chunk and state <> 'done'
  returning *
$$;

create or replace function ops.backfill_chunk_progress(p_chunk bigint, p_pages integer, p_weight integer,
                                                       p_rows_received bigint, p_rows_new bigint, p_fetched_to timestamptz)
returns void
language sql
as $$
  update ops.backfill_chunks
     set pages = pages + p_pages, weight = weight + p_weight, rows_received = rows_received + p_rows_received,
         rows_new = rows_new + p_rows_new, fetched_to = greatest(fetched_to, p_fetched_to), updated_at = clock_timestamp()
   where chunk_id = p_chunk
$$;

create or replace function ops.backfill_chunk_finish(p_chunk bigint, p_fetched_to timestamptz)
returns text
language sql
as $$
  -- A chunk that ends in the future is partial: a later plan fetches the rest.
  update ops.backfill_chunks
     set fetched_to = greatest(fetched_to, p_fetched_to),
         state = case when greatest(fetched_to, p_fetched_to) >= chunk_to then 'done' else 'partial' end,
         last_error = null, finished_at = clock_timestamp(), updated_at = clock_timestamp()
   where chunk_id = p_chunk
  returning state
$$;

create or replace function ops.backfill_chunk_fail(p_chunk bigint, p_error text, p_final boolean)
returns void
language sql
as $$
  update ops.backfill_chunks
     set state = case when p_final then 'failed' else 'queued' end, last_error = left(p_error, 2000),
         finished_at = case when p_final then clock_timestamp() end, updated_at = clock_timestamp()
   where chunk_id = p_chunk
$$;

create or replace view ops.backfill_progress as
with per_plan as (
  select p.plan_id, p.venue, p.symbol, p.kind, p.timeframe, p.range_from, p.range_to, p.requested_at, p.requested_by,
         count(*)::integer as chunks,
         count(*) filter (where c.state in ('done', 'partial'))::integer as chunks_done,
         count(*) filter (where c.state = 'running')::integer as chunks_running,
         count(*) filter (where c.state = 'queued')::integer as chunks_queued,
         count(*) filter (where c.state = 'failed')::integer as chunks_failed,
         count(*) filter (where c.state in ('done', 'partial') and c.finished_at >= p.requested_at)::integer as chunks_done_here,
         coalesce(sum(c.rows_new), 0)::bigint as rows_new,
         coalesce(sum(c.rows_received), 0)::bigint as rows_received,
         coalesce(sum(c.rows_received) filter (where c.updated_at >= p.requested_at), 0)::bigint as rows_received_here,
         coalesce(sum(c.pages), 0)::bigint as pages,
         coalesce(sum(c.weight), 0)::bigint as weight,
         min(c.started_at) filter (where c.started_at >= p.requested_at) as started_at,
         max(c.updated_at) filter (where c.updated_at >= p.requested_at) as last_update_at,
         array_agg(c.chunk_from::text || ': ' || c.last_error order by c.chunk_from) filter (where c.state = 'failed') as errors
  from ops.backfill_plans p
  join ops.backfill_plan_chunks pc using (plan_id)
  join ops.backfill_chunks c using (chunk_id)
  group by p.plan_id
)
select plan_id, venue, symbol, kind, timeframe, range_from, range_to, requested_at, requested_by,
       case when chunks_running + chunks_queued > 0 and chunks_done + chunks_failed + chunks_running = 0 then 'queued'
            when chunks_running + chunks_queued > 0 then 'running'
            when chunks_failed > 0 then 'failed'
            else 'done' end as state,
       chunks, chunks_done, chunks_running, chunks_queued, chunks_failed, rows_new, rows_received, pages, weight,
       started_at,
       extract(epoch from coalesce(last_update_at, started_at) - started_at)::numeric(12, 1) as seconds,
       case when last_update_at > started_at
            then round(rows_received_here / extract(epoch from last_update_at - started_at)::numeric) end as rows_per_second,
       case when chunks_running + chunks_queued = 0 then 0
            when chunks_done_here > 0 and last_update_at > started_at
            then round(extract(epoch from last_update_at - started_at)::numeric / chunks_done_here
                       * (chunks_running + chunks_queued)) end as eta_seconds,
       errors
from per_plan;
comment on view ops.backfill_progress is
  'Per backfill plan: state, chunks done / running / queued / failed, rows received and new, rate, ETA, and the errors of failed chunks.';

create or replace function ops.release_orphaned_jobs()
returns integer
language plpgsql
as $$
declare
  v_dead text[];
begin
  -- History jobs record the database session they hold (ops.job_leases). A worker (graphile-
  -- worker pool: one per process) none of whose leases has a live session died mid-job: its
  -- locks are released now (graphile-worker itself would wait four hours) and another worker
  -- resumes its jobs. A pool with one live lease is alive; its other jobs end by themselves.
  with dead as (
    delete from ops.job_leases l
    where not exists (select 1 from ops.job_leases a
                      join pg_stat_activity s on s.pid = a.backend_pid and s.backend_start = a.backend_start
                      where a.worker_id = l.worker_id)
    returning l.worker_id
  )
  select array_agg(distinct worker_id) into v_dead from dead;
  if v_dead is null then
    return 0;
  end if;
  if ops.graphile_worker_installed() then
    perform graphile_worker.force_unlock_workers(v_dead);
  end if;
  return cardinality(v_dead);
end
$$;
comment on function ops.release_orphaned_jobs() is
  'Releases the graphile-worker locks of workers whose every history job lost its database session (the process died); returns how many workers.';

create or replace function ops.take_job_lease(p_worker_id text, p_job_key text)
returns void
language sql
as $$
  insert into ops.job_leases (worker_id, job_key, backend_pid, backend_start)
  select p_worker_id, p_job_key, a.pid, a.backend_start from pg_stat_activity a where a.pid = pg_backend_pid()
  on conflict (worker_id, job_key) do update
    set backend_pid = excluded.backend_pid, backend_start = excluded.backend_start, leased_at = now()
$$;
comment on function ops.take_job_lease(text, text) is
  'Records that this session runs a job (worker pool id, job key); see ops.release_orphaned_jobs().';

create or replace function ops.end_job_lease(p_worker_id text, p_job_key text)
returns void
language sql
as $$
  delete from ops.job_leases where worker_id = p_worker_id and job_key = p_job_key
$$;

create or replace function ops.backfill_id_bounds(p_venue text, p_symbol text, p_from timestamptz, p_to timestamptz)
returns table (instrument_id integer, from_id bigint, to_id bigint)
language sql
stable
as $$
  -- The trade ids of [p_from, p_to), from the venue's aggregate trades landed at both ends: the
  -- first trade id at or after p_from, and the one before the first at or after p_to.
  select i.instrument_id,
         (select a.first_trade_seq from market.agg_trades a
          where a.instrument_id = i.instrument_id and a.traded_at >= p_from
          order by a.traded_at, a.agg_id limit 1),
         (select a.first_trade_seq - 1 from market.agg_trades a
          where a.instrument_id = i.instrument_id and a.traded_at >= p_to
          order by a.traded_at, a.agg_id limit 1)
  from market.instruments i
  where i.venue = p_venue and i.symbol = p_symbol
  order by i.instrument_id
  limit 1
$$;
comment on function ops.backfill_id_bounds(text, text, timestamptz, timestamptz) is
  'Trade id range of [p_from, p_to) for an instrument, read from landed aggregate trades at both ends (nulls when none).';

create or replace function ops.missing_files(p_venue text, p_paths text[])
returns setof text
language sql
stable
as $$
  -- Files a backfill still needs: not read whole yet, or read before their period ended.
  select p.path
  from unnest(p_paths) with ordinality p(path, n)
  where not exists (select 1 from market.venue_files f
                    where f.venue = p_venue and f.path = ltrim(p.path, '/') and f.complete)
  order by p.n
$$;
comment on function ops.missing_files(text, text[]) is
  'The paths (leading / ignored) of a venue''s history files not yet recorded whole in market.venue_files, in the order given.';
