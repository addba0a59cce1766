-- Up Migration
-- History and recovery: venue rate budgets shared by every worker process, backfill plans of
-- chunks, liveness of the processes running history jobs, and what the gap ledger needs to
-- drive recovery.

-- A venue's request budget: one row per limit the venue enforces, counted in fixed windows
-- aligned to the epoch (Binance counts request weight per UTC minute). unit = 'weight': a
-- request draws its weight; unit = 'requests': every request draws 1. Every process draws
-- from the same row under a row lock, so ten parallel jobs together stay inside the limit.
create table ops.rate_limits (
  venue text not null,
  name text not null,
  unit text not null default 'weight',
  window_length interval not null,
  max_per_window integer not null,
  -- A request is not started this close to the end of a window: it could reach the venue in
  -- the next window, which this one did not charge.
  edge_guard interval not null default '250 milliseconds',
  window_start timestamptz,
  used integer not null default 0,
  updated_at timestamptz not null default now(),
  constraint rate_limits_pkey primary key (venue, name),
  constraint rate_limits_unit_check check (unit in ('weight', 'requests')),
  constraint rate_limits_window_check check (window_length > interval '0' and edge_guard >= interval '0'
                                             and edge_guard < window_length),
  constraint rate_limits_max_check check (max_per_window > 0),
  constraint rate_limits_used_check check (used >= 0)
);
comment on table ops.rate_limits is
  'Request budgets per venue and limit, in fixed windows; drawn by ops.rate_take() from every worker process.';

-- What the venue said about our requests: a 429 pauses every process until Retry-After and
-- slows the budget down for a while; a 418 (ban) stops the venue until the ban ends.
create table ops.rate_state (
  venue text primary key,
  paused_until timestamptz,
  banned_until timestamptz,
  slow_until timestamptz,
  slow_factor numeric not null default 1,
  requests bigint not null default 0,
  throttled bigint not null default 0,
  bans bigint not null default 0,
  last_status integer,
  last_used_reported integer,
  last_throttle_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint rate_state_slow_factor_check check (slow_factor > 0 and slow_factor <= 1)
);
comment on table ops.rate_state is
  'Per venue: pause after a 429 (Retry-After), ban after a 418, temporary slowdown, and request counters.';

-- A backfill request, as asked: venue, instrument, kind, timeframe and range.
create table ops.backfill_plans (
  plan_id bigint generated always as identity primary key,
  venue text not null,
  symbol text not null,
  kind text not null,
  timeframe text,
  range_from timestamptz not null,
  range_to timestamptz not null,
  chunk_length interval not null,
  requested_by text not null default 'sql',
  requested_at timestamptz not null default now(),
  constraint backfill_plans_kind_check check (kind in ('candles', 'trades')),
  constraint backfill_plans_timeframe_check check ((kind = 'candles') = (timeframe is not null)),
  constraint backfill_plans_range_check check (range_to > range_from)
);
comment on table ops.backfill_plans is 'Backfill requests; each is cut into chunks (ops.backfill_chunks) on a fixed grid.';

-- One chunk of history, on a grid that does not depend on the request, so that a second plan
-- over the same range finds the chunks already done and fetches only what is missing.
create table ops.backfill_chunks (
  chunk_id bigint generated always as identity primary key,
  venue text not null,
  symbol text not null,
  kind text not null,
  timeframe text,
  chunk_from timestamptz not null,
  chunk_to timestamptz not null,
  state text not null default 'queued',
  -- Complete up to here (a chunk that reached "now" is partial until a later run).
  fetched_to timestamptz,
  pages integer not null default 0,
  weight bigint not null default 0,
  rows_received bigint not null default 0,
  rows_new bigint not null default 0,
  attempts integer not null default 0,
  last_error text,
  queued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint backfill_chunks_key unique nulls not distinct (venue, symbol, kind, timeframe, chunk_from),
  constraint backfill_chunks_state_check check (state in ('queued', 'running', 'done', 'partial', 'failed')),
  constraint backfill_chunks_range_check check (chunk_to > chunk_from)
);
create index backfill_chunks_state_idx on ops.backfill_chunks (state) where state in ('queued', 'running', 'failed');
comment on table ops.backfill_chunks is
  'Backfill chunks (one graphile-worker job each, job key backfill_chunk:<chunk_id>) with their progress; read ops.backfill_progress.';

create table ops.backfill_plan_chunks (
  plan_id bigint not null references ops.backfill_plans on delete cascade,
  chunk_id bigint not null references ops.backfill_chunks on delete cascade,
  constraint backfill_plan_chunks_pkey primary key (plan_id, chunk_id)
);
create index backfill_plan_chunks_chunk_idx on ops.backfill_plan_chunks (chunk_id);

-- Liveness of history jobs: the database session each running job holds. A job whose session
-- is gone was running in a process that died; its graphile-worker lock is released at once
-- (ops.release_orphaned_jobs()) instead of after graphile-worker's four hours.
create table ops.job_leases (
  worker_id text primary key,
  job_key text,
  backend_pid integer not null,
  backend_start timestamptz not null,
  leased_at timestamptz not null default now()
);
comment on table ops.job_leases is
  'graphile-worker worker ids running history jobs, with the Postgres session each holds (dead session: the job is released).';

-- The gap ledger, for recovery: the feed that had the gap, when it was resolved, attempts and
-- the last error. from_seq / to_seq hold the missing id range once recovery has bounded it.
alter table quality.gaps add column feed text;
alter table quality.gaps add column resolved_at timestamptz;
alter table quality.gaps add column attempts integer not null default 0;
alter table quality.gaps add column last_error text;
create index gaps_instrument_idx on quality.gaps (instrument_id, stream, gap_from);
comment on column quality.gaps.rows_recovered is 'Rows the recovery brought back (new rows only).';

-- Down Migration
drop index quality.gaps_instrument_idx;
alter table quality.gaps drop column last_error, drop column attempts, drop column resolved_at, drop column feed;
drop table ops.job_leases;
drop table ops.backfill_plan_chunks;
drop table ops.backfill_chunks;
drop table ops.backfill_plans;
drop table ops.rate_state;
drop table ops.rate_limits;
