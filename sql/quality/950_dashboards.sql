-- What the data-quality dashboard (dashboards/quality.json) reads: the gap ledger with symbols,
-- gaps by label over time, spikes, and coverage by instrument and day. Panels only select.

create or replace view quality.gaps_labelled as
select g.gap_id, g.venue, g.stream, i.symbol, g.detected_by, g.state, g.detected_by || ': ' || g.state as label,
       g.gap_from, g.gap_to, g.gap_to is null or g.state in ('detected', 'queued', 'recovering') as open,
       round(extract(epoch from coalesce(g.gap_to, now()) - g.gap_from)::numeric, 3) as seconds,
       g.rows_recovered, g.detected_at, g.updated_at
from quality.gaps g
left join market.instruments i using (instrument_id);
comment on view quality.gaps_labelled is
  'Gaps of the ledger with the instrument''s symbol, a label (how it was detected: what became of it) and its length in seconds.';

create or replace function quality.gaps_over_time(p_from timestamptz, p_to timestamptz, p_interval_ms bigint)
returns table ("time" timestamptz, label text, gaps bigint)
language sql
stable
as $$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width),
  buckets as (
    select t as bucket_from, t + b.width as bucket_to
    from b, generate_series(date_bin(b.width, p_from, p_from), p_to, b.width) t
  )
  select k.bucket_from as time, g.label, count(*) as gaps
  from buckets k
  join quality.gaps_labelled g on g.gap_from < k.bucket_to and coalesce(g.gap_to, now()) >= k.bucket_from
  where g.gap_from < p_to and coalesce(g.gap_to, 'infinity') >= p_from
  group by 1, 2
  order by 1, 2
$$;
comment on function quality.gaps_over_time(timestamptz, timestamptz, bigint) is
  'Per time bucket and gap label: how many ledger gaps overlapped the bucket.';

create or replace function quality.coverage_by_day(p_from timestamptz, p_to timestamptz)
returns table ("time" timestamptz, venue text, symbol text, minutes_with_data bigint, minutes bigint, coverage numeric)
language sql
stable
as $$
  -- A minute is covered when the instrument has a bar in it: a trade bar, or a quote bar for
  -- quote-priced instruments. Days are UTC days; the range's first and last days count only
  -- their minutes inside the range.
  with covered as (
    select b.venue, b.symbol, b.bucket from market.bars_1m b where b.bucket >= p_from and b.bucket < p_to
    union
    select q.venue, q.symbol, q.bucket from market.quote_bars_1m q where q.bucket >= p_from and q.bucket < p_to
  ), days as (
    select c.venue, c.symbol, date_trunc('day', c.bucket, 'UTC') as day, count(*) as minutes_with_data
    from covered c
    group by 1, 2, 3
  )
  select d.day, d.venue, d.symbol, d.minutes_with_data, m.minutes, round(d.minutes_with_data::numeric / m.minutes, 4)
  from days d
  cross join lateral (select (extract(epoch from least(d.day + interval '1 day', p_to) - greatest(d.day, p_from)) / 60)::bigint as minutes) m
  order by 1, 2, 3
$$;
comment on function quality.coverage_by_day(timestamptz, timestamptz) is
  'Per instrument and UTC day in the range: minutes with a (trade or quote) bar, minutes in the day, and their ratio.';

-- Findings of the quality detectors (quality.findings) with the instrument's symbol. Created when
-- the findings model is there (its migration may come later than this file on an old database).
do $$
begin
  if to_regclass('quality.findings') is not null then
    create or replace view quality.findings_by_instrument as
    select f.finding_id, f.kind, f.label, f.severity, i.venue, i.symbol, f.source, f.window_from, f.window_to,
           f.value, f.baseline, f.detector, f.first_seen_at, f.last_seen_at, f.resolved_at
    from quality.findings f
    left join market.instruments i using (instrument_id);
    comment on view quality.findings_by_instrument is
      'Quality findings (gaps, spikes, anomalies) with venue and symbol; the spikes panel reads kind = spike.';
  end if;
end
$$;
