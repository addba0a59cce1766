-- Venue request budgets held in Postgres, drawn by every worker process (ops.rate_limits,
-- ops.rate_state). A request first takes its weight from every limit of its venue
-- (ops.rate_take), then reports what the venue answered (ops.rate_report): the venue's own
-- count of used weight corrects ours, a 429 pauses everyone until Retry-After and halves the
-- budget for a while, a 418 stops the venue for the ban.

create or replace function ops.set_rate_limit(p_venue text, p_name text, p_unit text, p_window interval,
                                              p_max integer, p_edge_guard interval default interval '250 milliseconds')
returns void
language sql
as $$
  insert into ops.rate_limits (venue, name, unit, window_length, max_per_window, edge_guard)
  values (p_venue, p_name, p_unit, p_window, p_max, p_edge_guard)
  on conflict (venue, name) do update
    set unit = excluded.unit, window_length = excluded.window_length, max_per_window = excluded.max_per_window,
        edge_guard = excluded.edge_guard, window_start = null, used = 0, updated_at = now();
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
$$;
comment on function ops.set_rate_limit(text, text, text, interval, integer, interval) is
  'Defines (or redefines) a venue limit: unit weight or requests, fixed window length, maximum per window.';

create or replace function ops.rate_take(p_venue text, p_weight integer, p_seen_limit text default null,
                                         p_seen_used integer default null, p_seen_at timestamptz default null)
returns integer
language plpgsql
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_state ops.rate_state;
  v_limit record;
  v_wait interval := interval '0';
  v_factor numeric;
  v_start timestamptz;
  v_used integer;
  v_cost integer;
begin
  -- Returns 0 when the request may go now (its weight is taken), or the milliseconds to wait
  -- before asking again (nothing is taken). The state row lock orders every process's takes.
  select * into v_state from ops.rate_state where venue = p_venue for update;
  if not found then
    return 0; -- a venue without a budget is not limited here
  end if;
  if v_state.banned_until > v_now then
    return ceil(extract(epoch from v_state.banned_until - v_now) * 1000)::integer;
  end if;
  if v_state.paused_until > v_now then
    return ceil(extract(epoch from v_state.paused_until - v_now) * 1000)::integer;
  end if;
  v_factor := case when v_state.slow_until > v_now then v_state.slow_factor else 1 end;
  -- What the venue said about the window of this process's last answer (its used-weight
  -- header) raises our count of that window: other clients on the same address use it too.
  if p_seen_used is not null then
    update ops.rate_limits l
       set used = greatest(l.used, p_seen_used), updated_at = v_now
     where l.venue = p_venue and l.name = p_seen_limit
       and l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
       and date_bin(l.window_length, p_seen_at, timestamptz '1970-01-01 00:00:00+00') = l.window_start;
  end if;
  for v_limit in select * from ops.rate_limits where venue = p_venue order by name for update loop
    v_start := date_bin(v_limit.window_length, v_now, timestamptz '1970-01-01 00:00:00+00');
    v_used := case when v_limit.window_start = v_start then v_limit.used else 0 end;
    v_cost := case when v_limit.unit = 'weight' then p_weight else 1 end;
    if v_start + v_limit.window_length - v_now < v_limit.edge_guard then
      -- Too close to the end of the window: the request could arrive in the next one.
      v_wait := greatest(v_wait, v_start + v_limit.window_length - v_now);
    elsif v_used + v_cost > floor(v_limit.max_per_window * v_factor) then
      v_wait := greatest(v_wait, v_start + v_limit.window_length - v_now);
    end if;
  end loop;
  if v_wait > interval '0' then
    return greatest(1, ceil(extract(epoch from v_wait) * 1000))::integer;
  end if;
  update ops.rate_limits l
     set used = case when l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
                     then l.used else 0 end + case when l.unit = 'weight' then p_weight else 1 end,
         window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00'),
         updated_at = v_now
   where l.venue = p_venue;
  update ops.rate_state set requests = requests + 1, updated_at = v_now where venue = p_venue;
  return 0;
end
$$;
comment on function ops.rate_take(text, integer, text, integer, timestamptz) is
  'Takes a request''s weight from every limit of the venue: 0 = go now; otherwise milliseconds to wait (nothing taken). '
  'p_seen_*: the venue''s own count of a window, from the last answer (applied first).';

create or replace function ops.rate_report(p_venue text, p_status integer, p_used_name text, p_used integer,
                                           p_retry_after_s numeric)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_retry interval := coalesce(p_retry_after_s, 0) * interval '1 second';
begin
  -- The venue's count of the current window (X-MBX-USED-WEIGHT-1M) raises ours: other clients
  -- on the same address, or requests we counted in another window, use the same budget.
  if p_used is not null and p_used_name is not null then
    update ops.rate_limits l
       set used = greatest(case when l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
                                then l.used else 0 end, p_used),
           window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00'),
           updated_at = v_now
     where l.venue = p_venue and l.name = p_used_name;
  end if;
  update ops.rate_state s
     set last_status = p_status,
         last_used_reported = coalesce(p_used, s.last_used_reported),
         throttled = s.throttled + case when p_status = 429 then 1 else 0 end,
         bans = s.bans + case when p_status = 418 then 1 else 0 end,
         -- 429: every process waits for Retry-After (at least one window when the venue says
         -- nothing), then draws at half the budget (down to a tenth) until five windows pass.
         paused_until = case when p_status = 429
                             then greatest(s.paused_until, v_now + greatest(v_retry,
                                  coalesce((select max(window_length) from ops.rate_limits where venue = p_venue), interval '1 minute')
                                  * case when p_retry_after_s is null then 1 else 0 end))
                             else s.paused_until end,
         -- One halving per throttle event: the answers of requests already in flight when the
         -- first 429 came back (during its pause) are the same event.
         slow_factor = case when p_status = 429 and not coalesce(s.paused_until > v_now, false)
                            then greatest(0.1, case when s.slow_until > v_now then s.slow_factor else 1 end * 0.5)
                            when s.slow_until <= v_now then 1 else s.slow_factor end,
         slow_until = case when p_status = 429 and not coalesce(s.paused_until > v_now, false)
                           then v_now + 5 * coalesce((select max(window_length) from ops.rate_limits where venue = p_venue), interval '1 minute')
                           else s.slow_until end,
         -- 418: the address is banned; nothing goes out until the ban ends.
         banned_until = case when p_status = 418
                             then greatest(s.banned_until, v_now + greatest(v_retry, interval '2 minutes' * case when p_retry_after_s is null then 1 else 0 end))
                             else s.banned_until end,
         last_throttle_at = case when p_status in (429, 418) then v_now else s.last_throttle_at end,
         updated_at = v_now
   where s.venue = p_venue;
end
$$;
comment on function ops.rate_report(text, integer, text, integer, numeric) is
  'Records a venue answer: its used-weight count, 429 (pause until Retry-After, slow down) or 418 (ban until Retry-After).';

create or replace view ops.rate_status as
select s.venue, l.name, l.unit, l.window_length, l.max_per_window,
       floor(l.max_per_window * case when s.slow_until > now() then s.slow_factor else 1 end)::integer as effective_max,
       case when l.window_start = date_bin(l.window_length, now(), timestamptz '1970-01-01 00:00:00+00') then l.used else 0 end as used,
       case when s.banned_until > now() then 'banned' when s.paused_until > now() then 'paused'
            when s.slow_until > now() then 'slowed' else 'ok' end as state,
       s.banned_until, s.paused_until, s.slow_until, s.requests, s.throttled, s.bans, s.last_status, s.last_throttle_at
from ops.rate_state s
join ops.rate_limits l using (venue);
comment on view ops.rate_status is 'Per venue limit: budget, use in the current window, and whether the venue is paused (429) or banned (418).';

-- Binance spot: 6,000 request weight per minute per IP address; a budget of 5,000 leaves room
-- for the live feeds' snapshots and for clocks that disagree at the minute boundary.
do $$
begin
  if not exists (select 1 from ops.rate_limits where venue = 'binance') then
    perform ops.set_rate_limit('binance', 'request_weight', 'weight', interval '1 minute', 5000);
  end if;
end
$$;
