-- What `tickflow status` and the overview dashboard show per feed.

create or replace view ops.feed_status as
with latest as (
  select distinct on (feed) feed, venue, session_id, connected_at, closed_at
  from ops.sessions
  order by feed, opened_at desc
), last_event as (
  select distinct on (feed) feed, kind, at
  from ops.session_events
  where kind in ('circuit_open', 'circuit_closed', 'connected', 'disconnected', 'stale')
  order by feed, at desc
), traffic as (
  select s.feed, count(*) as frames_1m, max(f.received_at) as last_frame_at
  from staging.frames f
  join ops.sessions s using (session_id)
  where f.received_at > now() - interval '1 minute'
  group by s.feed
), last_frame as (
  select l.feed, (select max(f.received_at) from staging.frames f where f.session_id = l.session_id) as at
  from latest l
)
select l.feed, l.venue,
       (l.connected_at is not null and l.closed_at is null) as connected,
       case when e.kind = 'circuit_open' then 'circuit_open'
            when l.connected_at is not null and l.closed_at is null then 'connected'
            else 'disconnected' end as state,
       round(coalesce(t.frames_1m, 0) / 60.0, 1) as messages_per_second,
       round(extract(epoch from now() - coalesce(t.last_frame_at, lf.at))::numeric, 1) as last_message_age_s,
       (select count(*) from quality.gaps g
        where g.venue = l.venue and (g.feed = l.feed or g.stream = l.feed or g.stream like l.feed || ':%')
          and g.state in ('detected', 'queued', 'recovering'))::integer as open_gaps,
       (select count(*) from staging.quarantine q where q.venue = l.venue)::integer as quarantined
from latest l
left join last_event e using (feed)
left join traffic t using (feed)
left join last_frame lf using (feed);
comment on view ops.feed_status is 'Per feed: connection state, messages per second over the last minute, last message age, open gaps, quarantined payloads.';
