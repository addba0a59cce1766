-- Connection lifecycle as data.

create or replace function ops.session_last_frame_at(p_session uuid, p_opened_at timestamptz, p_before timestamptz)
returns timestamptz
language plpgsql
stable
as $$
declare
  v_at timestamptz;
  v_hi timestamptz := p_before;
  v_lo timestamptz;
  v_span interval := interval '10 minutes';
begin
  -- staging.frames has no index by session: read back from p_before in windows of 10 minutes,
  -- 40, 160, ... (each a BRIN range), stopping at the first window with a frame of the session.
  -- The last frame is near the moment the run died, so what is read is about the frames landed
  -- since then, not the whole session (which may have run for days).
  loop
    v_lo := greatest(p_opened_at, v_hi - v_span);
    -- The first window is open above: frames stamped after p_before (a wall clock stepped
    -- back between the runs) are still the session's.
    select max(f.received_at) into v_at from staging.frames f
    where f.session_id = p_session and f.received_at >= v_lo
      and (v_hi = p_before or f.received_at < v_hi);
    exit when v_at is not null or v_lo <= p_opened_at;
    v_hi := v_lo;
    v_span := v_span * 4;
  end loop;
  return v_at;
end
$$;
comment on function ops.session_last_frame_at(uuid, timestamptz, timestamptz) is
  'Receive time of the last landed frame of a session (read back from the recent end first).';

create or replace function ops.record_events(p_events jsonb)
returns void
language plpgsql
as $$
declare
  v_orphans jsonb;
begin
  -- Sessions that a killed run of the feed left open (kill -9, power loss: the process never
  -- recorded their end). The first connection of the feed's next run closes them as disconnects
  -- at their last landed frame, so the window until the new run's first frame is a gap of the
  -- ledger like any other (closed by that first frame below, then recovered).
  select jsonb_agg(jsonb_build_object(
           'sessionId', s.session_id, 'feed', s.feed, 'venue', s.venue, 'at', e->>'at', 'kind', 'disconnected',
           'detail', jsonb_build_object(
             'reason', 'process ended without closing the session',
             'hadData', coalesce(d.last_frame_at, d.first_frame_at) is not null,
             'lastFrameAt', coalesce(d.last_frame_at, d.first_frame_at),
             'channels', e->'detail'->'channels', 'instruments', e->'detail'->'instruments')))
  into v_orphans
  from jsonb_array_elements(p_events) e
  join ops.sessions s on s.feed = e->>'feed' and s.venue = e->>'venue' and s.closed_at is null
                     and s.session_id <> (e->>'sessionId')::uuid
  cross join lateral (
    select (select (se.detail->>'firstFrameAt')::timestamptz from ops.session_events se
            where se.session_id = s.session_id and se.kind = 'subscribed' limit 1) as first_frame_at,
           ops.session_last_frame_at(s.session_id, s.opened_at, (e->>'at')::timestamptz) as last_frame_at
  ) d
  where e->>'kind' = 'connecting' and coalesce((e->'detail'->>'firstOfRun')::boolean, false);
  if v_orphans is not null then
    perform ops.record_events(v_orphans);
  end if;

  insert into ops.session_events (session_id, feed, venue, at, kind, detail)
  select (e->>'sessionId')::uuid, e->>'feed', e->>'venue', (e->>'at')::timestamptz, e->>'kind',
         coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e;

  insert into ops.sessions (session_id, feed, venue, url, opened_at)
  select (e->>'sessionId')::uuid, e->>'feed', e->>'venue', coalesce(e->>'url', ''), (e->>'at')::timestamptz
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'connecting'
  on conflict (session_id) do nothing;

  update ops.sessions s set connected_at = (e->>'at')::timestamptz
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'connected' and s.session_id = (e->>'sessionId')::uuid;

  update ops.sessions s set closed_at = (e->>'at')::timestamptz, close_reason = e->'detail'->>'reason'
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'disconnected' and s.session_id = (e->>'sessionId')::uuid;

  -- A disconnect opens a gap from the session's last frame, one per instrument and channel the
  -- feed carries (one for the whole feed when the event does not list them); the next session's
  -- first data closes it, and a closed gap queues its own recovery (quality.gaps_enqueue_recovery).
  insert into quality.gaps (venue, feed, stream, instrument_id, gap_from, detected_by, session_id, detail)
  select e->>'venue', e->>'feed', coalesce(ch.channel, e->>'feed'),
         (select i.instrument_id from market.instruments i
          where i.venue = e->>'venue' and i.symbol = ins.symbol order by i.instrument_id limit 1),
         coalesce((e->'detail'->>'lastFrameAt')::timestamptz, (e->>'at')::timestamptz),
         'disconnect', (e->>'sessionId')::uuid,
         (coalesce(e->'detail', '{}') - 'channels' - 'instruments')
           || case when ins.symbol is not null then jsonb_build_object('symbol', ins.symbol) else '{}' end
  from jsonb_array_elements(p_events) e
  left join lateral jsonb_array_elements_text(case when jsonb_typeof(e->'detail'->'channels') = 'array'
                                                   then e->'detail'->'channels' end) ch(channel) on true
  left join lateral jsonb_array_elements_text(case when jsonb_typeof(e->'detail'->'instruments') = 'array'
                                                   then e->'detail'->'instruments' end) ins(symbol) on true
  where e->>'kind' = 'disconnected' and coalesce((e->'detail'->>'hadData')::boolean, false)
    and coalesce(e->'detail'->>'reason', '') <> 'rotated' and coalesce(e->'detail'->>'reason', '') <> 'shutdown';

  -- A diff that does not continue the book: the ingester resynchronizes from a new snapshot.
  insert into quality.gaps (venue, feed, stream, gap_from, gap_to, detected_by, session_id, from_seq, to_seq, detail)
  select e->>'venue', e->>'feed', e->>'feed' || ':' || coalesce(e->'detail'->>'key', ''), (e->>'at')::timestamptz,
         (e->>'at')::timestamptz, 'sequence_break', (e->>'sessionId')::uuid,
         (e->'detail'->>'expectedFrom')::bigint, (e->'detail'->>'receivedFirst')::bigint - 1, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'sequence_break';

  update quality.gaps g set gap_to = (e->'detail'->>'firstFrameAt')::timestamptz, updated_at = now()
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'subscribed' and e->'detail' ? 'firstFrameAt'
    and g.venue = e->>'venue' and coalesce(g.feed, g.stream) = e->>'feed' and g.detected_by = 'disconnect' and g.gap_to is null
    and g.gap_from <= (e->'detail'->>'firstFrameAt')::timestamptz;
end
$$;
comment on function ops.record_events(jsonb) is 'Writes connection events, keeps ops.sessions current and opens/closes disconnect gaps.';
