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

  -- A disconnect opens a gap for the feed from its last frame; the next session's first data closes it.
  insert into quality.gaps (venue, stream, gap_from, detected_by, session_id, detail)
  select e->>'venue', e->>'feed', coalesce((e->'detail'->>'lastFrameAt')::timestamptz, (e->>'at')::timestamptz),
         'disconnect', (e->>'sessionId')::uuid, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'disconnected' and coalesce((e->'detail'->>'hadData')::boolean, false)
    and coalesce(e->'detail'->>'reason', '') <> 'rotated' and coalesce(e->'detail'->>'reason', '') <> 'shutdown';

  -- A diff that does not continue the book: the ingester resynchronizes from a new snapshot.
  insert into quality.gaps (venue, stream, gap_from, gap_to, detected_by, session_id, from_seq, to_seq, detail)
  select e->>'venue', e->>'feed' || ':' || coalesce(e->'detail'->>'key', ''), (e->>'at')::timestamptz,
         (e->>'at')::timestamptz, 'sequence_break', (e->>'sessionId')::uuid,
         (e->'detail'->>'expectedFrom')::bigint, (e->'detail'->>'receivedFirst')::bigint - 1, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'sequence_break';

  update quality.gaps g set gap_to = (e->'detail'->>'firstFrameAt')::timestamptz, updated_at = now()
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'subscribed' and e->'detail' ? 'firstFrameAt'
    and g.venue = e->>'venue' and g.stream = e->>'feed' and g.detected_by = 'disconnect' and g.gap_to is null
    and g.gap_from <= (e->'detail'->>'firstFrameAt')::timestamptz;
end
$$;
comment on function ops.record_events(jsonb) is 'Writes connection events, keeps ops.sessions current and opens/closes disconnect gaps.';
