-- Quality on every 1-minute bar, joinable on (instrument_id, bucket):
--   observed   messages in the minute (trades of the bar and quotes);
--   expected   the instrument's usual messages per open minute at that hour of the week;
--   coverage   observed / expected;
--   sources    how the bar's trades arrived (ws, stream, rest, file ...);
--   gap        a gap finding (venue outage or our loss) or an open ledger gap overlaps the minute;
--   spike      a spike finding overlaps it; anomaly: any other open anomaly finding does;
--   revised    a backfill changed it: live and backfilled trades mixed, or a recovered ledger gap;
--   flags      the above as a list, plus low_coverage (under a tenth of at least 10 expected);
--   ok         no flag but revised: the one clause to filter on (where q.ok).

create or replace view quality.bar_quality_1m as
select b.instrument_id, b.bucket, x.observed, x.expected,
       case when x.expected > 0 then round((x.observed / x.expected)::numeric, 3) end as coverage,
       x.sources, x.gap, x.spike, x.anomaly, x.revised,
       array_remove(array[case when x.gap then 'gap' end, case when x.spike then 'spike' end,
                          case when x.anomaly then 'anomaly' end,
                          case when x.expected >= 10 and x.observed < 0.1 * x.expected then 'low_coverage' end,
                          case when x.revised then 'revised' end], null) as flags,
       not (x.gap or x.spike or x.anomaly or coalesce(x.expected >= 10 and x.observed < 0.1 * x.expected, false)) as ok
from market.bars_1m_data b
join market.instruments i using (instrument_id)
cross join lateral (
  select c.time_zone from quality.calendars c
  where c.calendar = coalesce((select ic.calendar from quality.instrument_calendars ic where ic.instrument_id = b.instrument_id),
                              (select ac.calendar from quality.asset_class_calendars ac where ac.asset_class = i.asset_class),
                              'crypto')
) cal
cross join lateral (
  select s.*,
         b.trades + (select count(*) from market.all_quotes q
                     where q.instrument_id = b.instrument_id
                       and q.hour_start = date_bin(interval '1 hour', b.bucket, timestamptz '1970-01-01 00:00:00+00')
                       and q.quoted_at >= b.bucket and q.quoted_at < b.bucket + interval '1 minute') as observed,
         -- The usual rate (quality.messages_per_minute, written out: a view reads tables with its
         -- owner's rights, a function with its caller's, and analysts may not read the tables).
         coalesce(
           (select p.messages::float8 / p.open_minutes from quality.activity_profiles p
            where p.instrument_id = b.instrument_id and p.open_minutes >= 30
              and p.hour_of_week = quality.hour_of_week(b.bucket, cal.time_zone)),
           (select sum(p.messages)::float8 / nullif(sum(p.open_minutes), 0) from quality.activity_profiles p
            where p.instrument_id = b.instrument_id)) as expected,
         exists (select 1 from quality.findings f
                 where f.instrument_id = b.instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
                   and f.resolved_at is null and f.window_from < b.bucket + interval '1 minute' and f.window_to > b.bucket)
         or exists (select 1 from quality.gaps g
                    where g.venue = i.venue and (g.instrument_id is null or g.instrument_id = b.instrument_id)
                      and g.state in ('detected', 'queued', 'recovering', 'unrecoverable', 'venue_outage')
                      and g.gap_from < b.bucket + interval '1 minute' and coalesce(g.gap_to, 'infinity') > b.bucket) as gap,
         exists (select 1 from quality.findings f
                 where f.instrument_id = b.instrument_id and f.kind = 'spike' and f.resolved_at is null
                   and f.window_from < b.bucket + interval '1 minute' and f.window_to > b.bucket) as spike,
         exists (select 1 from quality.findings f
                 where f.instrument_id = b.instrument_id and f.kind not in ('gap', 'spike') and f.severity <> 'info'
                   and f.resolved_at is null and f.window_from < b.bucket + interval '1 minute' and f.window_to > b.bucket) as anomaly,
         ('ws' = any (s.sources) or 'stream' = any (s.sources) or 'socket' = any (s.sources))
           and ('rest' = any (s.sources) or 'file' = any (s.sources))
         or exists (select 1 from quality.gaps g
                    where g.venue = i.venue and (g.instrument_id is null or g.instrument_id = b.instrument_id)
                      and g.state = 'recovered' and g.gap_from < b.bucket + interval '1 minute'
                      and coalesce(g.gap_to, 'infinity') > b.bucket) as revised
  from (select array(select distinct t.source from market.trades t
                     where t.instrument_id = b.instrument_id and t.traded_at >= b.bucket
                       and t.traded_at < b.bucket + interval '1 minute' order by 1) as sources) s
) x;
comment on view quality.bar_quality_1m is
  'Quality of each 1-minute bar (join on instrument_id, bucket): observed and expected messages, coverage, sources, '
  'gap / spike / anomaly overlaps, revised by a backfill, flags, and ok (no flag but revised).';

create or replace view quality.bars_1m as
select b.venue, b.symbol, b.instrument_id, b.bucket, b.open, b.high, b.low, b.close, b.volume, b.vwap, b.trades,
       q.observed, q.expected, q.coverage, q.sources, q.gap, q.spike, q.anomaly, q.revised, q.flags, q.ok
from market.bars_1m b
join quality.bar_quality_1m q using (instrument_id, bucket);
comment on view quality.bars_1m is
  '1-minute bars with their quality: select * from quality.bars_1m where symbol = ''BTC/USDT'' and bucket >= ... and ok.';
