-- Up Migration
create table ops.sessions (
  session_id uuid primary key,
  feed text not null,
  venue text not null,
  url text not null,
  opened_at timestamptz not null,
  connected_at timestamptz,
  closed_at timestamptz,
  close_reason text
);
create index sessions_feed_opened_idx on ops.sessions (feed, opened_at desc);
comment on table ops.sessions is 'One row per connection attempt of a live feed, from connect to close with its reason.';

create table ops.session_events (
  event_id bigint generated always as identity primary key,
  session_id uuid not null,
  feed text not null,
  venue text not null,
  at timestamptz not null,
  kind text not null,
  detail jsonb not null default '{}',
  constraint session_events_kind_check check (kind in (
    'connecting', 'connected', 'subscribed', 'ack', 'error_frame', 'disconnected',
    'rotating', 'stale', 'circuit_open', 'circuit_closed', 'resync', 'snapshot', 'sequence_break'))
);
create index session_events_feed_at_idx on ops.session_events (feed, at);
create index session_events_session_idx on ops.session_events (session_id);
comment on table ops.session_events is 'Connection lifecycle as data: connects, subscription acks, error frames, disconnects with reason.';

create table ops.batches (
  batch_id uuid primary key,
  landed_at timestamptz not null default now(),
  frames integer not null,
  first_received_at timestamptz,
  last_received_at timestamptz,
  normalized_at timestamptz,
  normalize_error text,
  counts jsonb not null default '{}'
);
create index batches_pending_idx on ops.batches (landed_at) where normalized_at is null;
comment on table ops.batches is 'One row per landed batch; a batch id that exists was committed (retries after a lost ack are detected by it).';

-- Down Migration
drop table ops.batches;
drop table ops.session_events;
drop table ops.sessions;
