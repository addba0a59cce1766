-- Connection lifecycle as data.

create or replace function ops.record_events(p_events jsonb)
returns void
language plpgsql
as $$
begin
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
