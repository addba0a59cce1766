-- Up Migration
-- Request pacing by sliding windows, for venues that limit identical requests and requests per
-- instrument as well as requests per venue (Interactive Brokers' historical data: no identical
-- request within 15 s, 6 per contract per 2 s, 60 per 10 minutes). Fixed-window budgets
-- (ops.rate_limits) cannot say that: a fixed 10-minute window lets 120 requests through across
-- its edge. Every worker process draws on the same log (ops.pacing_take).
create table ops.pacing_rules (
  venue text not null,
  name text not null,
  scope text not null,
  window_length interval not null,
  max_per_window integer not null,
  updated_at timestamptz not null default now(),
  constraint pacing_rules_pkey primary key (venue, name),
  constraint pacing_rules_scope_check check (scope in ('request', 'key', 'venue')),
  constraint pacing_rules_window_check check (window_length > interval '0'),
  constraint pacing_rules_max_check check (max_per_window > 0)
);
comment on table ops.pacing_rules is
  'Sliding-window request limits per venue: scope request (identical requests), key (one instrument) or venue (all).';

create table ops.paced_requests (
  venue text not null,
  key text not null,
  request text not null,
  at timestamptz not null
);
create index paced_requests_venue_at_idx on ops.paced_requests (venue, at);
comment on table ops.paced_requests is 'Requests sent under ops.pacing_rules, kept as long as the longest window of their venue.';

-- Down Migration
drop table ops.paced_requests;
drop table ops.pacing_rules;
