-- Sliding-window request pacing (ops.pacing_rules, ops.paced_requests), first needed by
-- Interactive Brokers' historical data; any venue with rules of these scopes can use it.
-- ops.pacing_take() is called before each request, by every worker process: 0 = send now (the
-- request is logged), otherwise the milliseconds to wait (nothing logged). The venue's state row
-- (ops.rate_state) orders the takes and carries a pause after the venue reported a violation
-- (ops.rate_report with 429).

create or replace function ops.set_pacing_rule(p_venue text, p_name text, p_scope text, p_window interval, p_max integer)
returns void
language sql
as $$
  insert into ops.pacing_rules (venue, name, scope, window_length, max_per_window)
  values (p_venue, p_name, p_scope, p_window, p_max)
  on conflict (venue, name) do update
    set scope = excluded.scope, window_length = excluded.window_length, max_per_window = excluded.max_per_window, updated_at = now();
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
$$;
comment on function ops.set_pacing_rule(text, text, text, interval, integer) is
  'Defines a sliding-window limit: scope request (identical requests), key (per instrument) or venue; at most p_max per p_window.';

create or replace function ops.pacing_take(p_venue text, p_key text, p_request text,
                                           p_guard interval default interval '250 milliseconds')
returns integer
language plpgsql
as $$
declare
  v_now timestamptz;
  v_state ops.rate_state;
  v_rule ops.pacing_rules;
  v_nth timestamptz;
  v_wait interval := interval '0';
begin
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
  select * into v_state from ops.rate_state where venue = p_venue for update;
  v_now := clock_timestamp(); -- after the lock: the time the request goes out
  if v_state.banned_until > v_now or v_state.paused_until > v_now then
    return ceil(extract(epoch from greatest(v_state.banned_until, v_state.paused_until) - v_now) * 1000)::integer;
  end if;
  for v_rule in select * from ops.pacing_rules where venue = p_venue loop
    -- The max-th most recent request this rule counts: a new one may go once it is out of the
    -- window (plus a guard for the time the request takes to reach the venue).
    select r.at into v_nth
    from ops.paced_requests r
    where r.venue = p_venue and r.at > v_now - v_rule.window_length - p_guard
      and (v_rule.scope = 'venue' or r.key = p_key)
      and (v_rule.scope <> 'request' or r.request = p_request)
    order by r.at desc
    offset v_rule.max_per_window - 1 limit 1;
    if found then
      v_wait := greatest(v_wait, v_nth + v_rule.window_length + p_guard - v_now);
    end if;
  end loop;
  if v_wait > interval '0' then
    return greatest(1, ceil(extract(epoch from v_wait) * 1000))::integer;
  end if;
  insert into ops.paced_requests (venue, key, request, at) values (p_venue, p_key, p_request, v_now);
  delete from ops.paced_requests
  where venue = p_venue
    and at < v_now - coalesce((select max(window_length) from ops.pacing_rules where venue = p_venue), interval '0') - p_guard;
  update ops.rate_state set requests = requests + 1, updated_at = v_now where venue = p_venue;
  return 0;
end
$$;
comment on function ops.pacing_take(text, text, text, interval) is
  'Takes a slot for a request under the venue''s sliding-window rules: 0 = go now (logged), else milliseconds to wait.';

-- Interactive Brokers historical data: an identical request (same contract, end, duration, bar
-- size, what to show) not within 15 s, at most 6 requests for one contract within 2 s, at most 60
-- within 10 minutes. An operator may tighten them (ops.set_pacing_rule); a deployment keeps its own.
do $$
begin
  if not exists (select 1 from ops.pacing_rules where venue = 'ib') then
    perform ops.set_pacing_rule('ib', 'identical_request', 'request', interval '15 seconds', 1);
    perform ops.set_pacing_rule('ib', 'per_contract', 'key', interval '2 seconds', 6);
    perform ops.set_pacing_rule('ib', 'per_venue', 'venue', interval '10 minutes', 60);
  end if;
end
$$;
