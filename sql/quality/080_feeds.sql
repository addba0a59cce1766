-- Feeds: a connection that is up but delivers nothing, and a change in the shape of a venue's raw
-- payloads (keys that appear or disappear, a timestamp whose unit changes from milliseconds to
-- microseconds), from samples of staging.frames.

create or replace function quality.find_silent_feeds(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  -- A session is connected from connected_at until closed_at (or still). Inside that, a stretch
  -- of at least quality.silent_feed_seconds (60) without a landed frame is a finding: the
  -- socket is alive (the watchdog counts pings and heartbeats) but no data comes. Feeds carry
  -- no instrument, so p_instruments does not narrow this detector.
  with s as (
    select s.session_id, s.feed, s.venue, greatest(s.connected_at, p_from - interval '1 hour') as live_from,
           least(coalesce(s.closed_at, 'infinity'), p_to, now()) as live_to
    from ops.sessions s
    where s.connected_at is not null and s.connected_at < p_to and coalesce(s.closed_at, 'infinity') > p_from
  ), f as (
    select f.session_id, f.received_at
    from staging.frames f
    join s using (session_id)
    where f.received_at >= p_from - interval '1 hour' and f.received_at < p_to
  ), marks as (
    -- The session's edges count as marks, so silence after connecting or before now is measured too.
    select s.session_id, s.live_from as at from s
    union all
    select s.session_id, s.live_to from s where s.live_to > s.live_from
    union all
    select f.session_id, f.received_at from f join s using (session_id) where f.received_at between s.live_from and s.live_to
  ), silences as (
    select m.session_id, m.at as silent_from, lead(m.at) over (partition by m.session_id order by m.at) as silent_to
    from marks m
  )
  select 'silent_feed', 'connected',
         case when x.silent_to - x.silent_from >= interval '5 minutes' then 'error' else 'warning' end,
         null::integer, s.feed, x.silent_from, x.silent_to,
         round(extract(epoch from x.silent_to - x.silent_from)::numeric, 3),
         quality.setting_numeric('quality.silent_feed_seconds', 60),
         jsonb_build_object('session_id', s.session_id, 'venue', s.venue)
  from silences x
  join s using (session_id)
  where x.silent_to - x.silent_from >= quality.setting_numeric('quality.silent_feed_seconds', 60) * interval '1 second'
    and x.silent_to > p_from
$$;
comment on function quality.find_silent_feeds(timestamptz, timestamptz, integer[]) is
  'Detector "silent_feeds": connected sessions (ops.sessions) without a landed frame for quality.silent_feed_seconds or more.';

create or replace function quality.payload_shape(p_payload text, p_received_at timestamptz)
returns table (keys text[], time_units jsonb)
language sql
stable
as $$
  -- Keys of the payload's object (of its first element for an array), one level of nested objects
  -- as parent.key; and for every integer field that reads as a time within five years of
  -- p_received_at in seconds, milliseconds, microseconds or nanoseconds, that unit. Ids and
  -- counters are far from any such time, so they never count as timestamps.
  with j as (
    select case when pg_input_is_valid(p_payload, 'jsonb') then p_payload::jsonb end as d
  ), root as (
    select case when jsonb_typeof(j.d) = 'array' then j.d->0 else j.d end as o, jsonb_typeof(j.d) = 'array' as arr from j
  ), fields as (
    select case when root.arr then '[].' else '' end || e.key as key, e.value
    from root, jsonb_each(case when jsonb_typeof(root.o) = 'object' then root.o else '{}' end) e
    union all
    select case when root.arr then '[].' else '' end || e.key || '.' || n.key, n.value
    from root, jsonb_each(case when jsonb_typeof(root.o) = 'object' then root.o else '{}' end) e,
         jsonb_each(case when jsonb_typeof(e.value) = 'object' then e.value else '{}' end) n
  ), units as (
    select f.key, u.unit
    from fields f
    cross join lateral (
      select u.unit from (values ('s', 1e0), ('ms', 1e3), ('us', 1e6), ('ns', 1e9)) u(unit, per_second)
      where jsonb_typeof(f.value) = 'number' and (f.value)::text ~ '^[0-9]{9,20}$'
        and abs((f.value)::text::numeric / u.per_second - extract(epoch from p_received_at)) < 5 * 366 * 86400
      limit 1
    ) u
  )
  select case when (select d from j) is null then array['(not json)']
              else coalesce((select array_agg(f.key order by f.key) from fields f), '{}') end,
         coalesce((select jsonb_object_agg(u.key, u.unit) from units u), '{}')
$$;
comment on function quality.payload_shape(text, timestamptz) is
  'The key set (one nested level) and timestamp units (s, ms, us, ns) of a raw payload.';

create or replace function quality.find_payload_shape_changes(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language plpgsql
as $$
declare
  v_every integer := greatest(quality.setting_numeric('quality.shape_sample_every', 100)::integer, 1);
begin
  -- Records the shapes of sampled frames (every v_every-th frame id, and the last frame of each
  -- venue and stream in the window, so a quiet stream is sampled too; no sort of the window's
  -- frames), then reports each shape first seen in the window for a venue and stream that had
  -- another shape before, against the most common earlier one.
  insert into quality.payload_shapes as p (venue, stream, shape, keys, time_units, first_frame_id, first_seen_at,
                                           last_seen_at, frames)
  select x.venue, x.stream, md5(x.keys::text || x.time_units::text), x.keys, x.time_units,
         min(x.frame_id), min(x.received_at), max(x.received_at), count(*)
  from (
    select f.venue, f.stream, f.frame_id, f.received_at, sh.keys, sh.time_units
    from staging.frames f
    cross join lateral quality.payload_shape(f.payload, f.received_at) sh
    where f.received_at >= p_from and f.received_at < p_to
      and (f.frame_id % v_every = 0
           or f.frame_id in (select max(l.frame_id) from staging.frames l
                             where l.received_at >= p_from and l.received_at < p_to group by l.venue, l.stream))
  ) x
  group by x.venue, x.stream, x.keys, x.time_units
  on conflict (venue, stream, shape) do update
    set first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
        first_frame_id = case when excluded.first_seen_at < p.first_seen_at then excluded.first_frame_id else p.first_frame_id end,
        last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at),
        frames = p.frames + excluded.frames;

  return query
  with new_shapes as (
    select n.* from quality.payload_shapes n
    where n.first_seen_at >= p_from and n.first_seen_at < p_to
  ), compared as (
    select n.*, o.keys as old_keys, o.time_units as old_units, o.shape as old_shape
    from new_shapes n
    cross join lateral (
      select o.* from quality.payload_shapes o
      where o.venue = n.venue and o.stream = n.stream and o.first_seen_at < n.first_seen_at
      order by o.frames desc, o.first_seen_at
      limit 1
    ) o
  ), diffs as (
    select c.*,
           array(select k from unnest(c.keys) k except select k from unnest(c.old_keys) k order by 1) as added,
           array(select k from unnest(c.old_keys) k except select k from unnest(c.keys) k order by 1) as removed,
           coalesce((select jsonb_object_agg(k, jsonb_build_object('from', c.old_units->>k, 'to', c.time_units->>k))
                     from jsonb_object_keys(c.time_units) k
                     where c.old_units ? k and c.old_units->>k <> c.time_units->>k), '{}') as unit_changes
    from compared c
  )
  select 'payload_shape'::text,
         case when d.unit_changes <> '{}' then 'time_unit' else 'keys' end,
         case when d.unit_changes <> '{}' or cardinality(d.removed) > 0 then 'error' else 'warning' end,
         null::integer, d.venue || ':' || d.stream, d.first_seen_at, d.last_seen_at, d.frames::numeric, null::numeric,
         jsonb_build_object('added', to_jsonb(d.added), 'removed', to_jsonb(d.removed), 'unit_changes', d.unit_changes,
                            'shape', d.shape, 'previous_shape', d.old_shape, 'first_frame_id', d.first_frame_id,
                            'keys', to_jsonb(d.keys), 'time_units', d.time_units)
  from diffs d
  where cardinality(d.added) > 0 or cardinality(d.removed) > 0 or d.unit_changes <> '{}';
end
$$;
comment on function quality.find_payload_shape_changes(timestamptz, timestamptz, integer[]) is
  'Detector "payload_shapes": records key sets and timestamp units of sampled raw frames (quality.payload_shapes) '
  'and reports a new shape of a venue''s stream: keys added or removed, a timestamp unit changed (label time_unit).';
