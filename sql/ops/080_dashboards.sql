-- What the Grafana dashboards (dashboards/*.json) read about ingestion. Panels call these with the
-- dashboard's time range and interval ($__timeFrom(), $__timeTo(), $__interval_ms) and only
-- select columns: grouping into time buckets and rates are computed here, not in panel SQL.

create or replace function ops.dashboard_bucket(p_from timestamptz, p_to timestamptz, p_interval_ms bigint)
returns interval
language sql
immutable parallel safe
as $$
  -- Grafana's interval, but never under a second nor more than 2000 buckets in the range.
  select greatest(coalesce(p_interval_ms, 60000) * interval '1 millisecond', interval '1 second', (p_to - p_from) / 2000)
$$;
comment on function ops.dashboard_bucket(timestamptz, timestamptz, bigint) is
  'Bucket width for a dashboard panel: Grafana''s $__interval_ms, at least 1 s, at most 2000 buckets over the range.';

create or replace view ops.venues as
select distinct venue from ops.sessions;
comment on view ops.venues is 'Venues that have had a live session (the venue variable of the ingestion dashboard).';

create or replace function ops.ingest_rate(p_from timestamptz, p_to timestamptz, p_interval_ms bigint, p_venue text default null)
returns table ("time" timestamptz, venue text, stream text, frames bigint, per_second numeric)
language sql
stable
as $$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, f.received_at, p_from) as time, f.venue, f.stream, count(*) as frames,
         round(count(*) / extract(epoch from b.width), 3) as per_second
  from staging.frames f, b
  where f.received_at >= p_from and f.received_at < p_to and (p_venue is null or f.venue = p_venue)
  group by 1, 2, 3, b.width
  order by 1, 2, 3
$$;
comment on function ops.ingest_rate(timestamptz, timestamptz, bigint, text) is
  'Frames landed per time bucket, venue and stream, with the rate per second (staging.frames by receive time).';

create or replace function ops.landing_latency(p_from timestamptz, p_to timestamptz, p_interval_ms bigint)
returns table ("time" timestamptz, batches bigint, frames bigint, mean_seconds numeric, max_seconds numeric)
language sql
stable
as $$
  -- landed_at is the start of the landing transaction, so this is the wait of the oldest frame of
  -- each batch before its COPY began; /metrics has the exact receive-to-commit histogram.
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, x.landed_at, p_from) as time, count(*) as batches, sum(x.frames)::bigint as frames,
         round(avg(extract(epoch from x.landed_at - x.first_received_at)), 6) as mean_seconds,
         round(max(extract(epoch from x.landed_at - x.first_received_at)), 6) as max_seconds
  from ops.batches x, b
  where x.landed_at >= p_from and x.landed_at < p_to and x.frames > 0 and x.first_received_at is not null
  group by 1, b.width
  order by 1
$$;
comment on function ops.landing_latency(timestamptz, timestamptz, bigint) is
  'Per time bucket: landed batches and frames, mean and max seconds from the receipt of a batch''s oldest frame to its landing.';

create or replace function ops.connection_events_over_time(p_from timestamptz, p_to timestamptz, p_interval_ms bigint,
                                                           p_venue text default null)
returns table ("time" timestamptz, feed text, kind text, series text, events bigint)
language sql
stable
as $$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, e.at, p_from) as time, e.feed, e.kind, e.feed || ': ' || e.kind as series, count(*) as events
  from ops.session_events e, b
  where e.at >= p_from and e.at < p_to and (p_venue is null or e.venue = p_venue)
    and e.kind in ('connecting', 'disconnected', 'error_frame', 'stale', 'sequence_break', 'resync', 'circuit_open')
  group by 1, 2, 3, 4, b.width
  order by 1, 2, 3
$$;
comment on function ops.connection_events_over_time(timestamptz, timestamptz, bigint, text) is
  'Connection attempts, disconnects and errors per time bucket, feed and kind (ops.session_events).';
