-- What `tickflow quality report` prints and Grafana charts: completeness per instrument and UTC
-- day (quality.daily_coverage, refreshed by the quality_detect job and by the report for its
-- range), and findings per day by kind and label.

create or replace function quality.refresh_daily_coverage(p_from timestamptz, p_to timestamptz,
                                                          p_instruments integer[] default null)
returns integer
language sql
as $$
  -- Whole UTC days touching [p_from, p_to), for instruments with data in them or a row already.
  with days as (
    select (d at time zone 'UTC')::date as day
    from generate_series(date_trunc('day', p_from, 'UTC'), p_to - interval '1 microsecond', interval '1 day') d
  ), span as (
    select min(day)::timestamp at time zone 'UTC' as f, (max(day) + 1)::timestamp at time zone 'UTC' as t from days
  ), act as (
    select a.instrument_id, (a.bucket at time zone 'UTC')::date as day, a.bucket, a.messages
    from span, quality.minute_activity(span.f, span.t, p_instruments) a
  ), inst as (
    select i.instrument_id, quality.instrument_calendar(i.instrument_id) as calendar
    from market.instruments i
    where (p_instruments is null or i.instrument_id = any (p_instruments))
      and (exists (select 1 from act a where a.instrument_id = i.instrument_id)
           or exists (select 1 from quality.daily_coverage c, days d where c.instrument_id = i.instrument_id and c.day = d.day))
  ), cal as (
    select c.calendar, c.time_zone, d.day,
           quality.expected_hours(c.calendar, d.day::timestamp at time zone 'UTC', (d.day + 1)::timestamp at time zone 'UTC') as expected
    from quality.calendars c, days d
    where c.calendar in (select calendar from inst)
  ), expected_messages as (
    -- Sum over the day's expected minutes of the usual rate at their hour of the week.
    select inst.instrument_id, cal.day, sum(p.messages::float8 / nullif(p.open_minutes, 0) * h.minutes) as messages
    from inst
    join cal using (calendar)
    cross join lateral (
      select quality.hour_of_week(m, cal.time_zone) as how, count(*) as minutes
      from unnest(cal.expected) r, generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
      group by 1
    ) h
    join quality.activity_profiles p on p.instrument_id = inst.instrument_id and p.hour_of_week = h.how
    group by 1, 2
  ), rows as (
    select inst.instrument_id, cal.day, quality.minutes_of(cal.expected)::integer as expected_minutes,
           (select count(*) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day)::integer as active_minutes,
           (select count(*) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day
              and cal.expected @> a.bucket)::integer as active_open_minutes,
           (select coalesce(sum(a.messages), 0) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day)::bigint
             as messages,
           round(e.messages::numeric) as expected_messages
    from inst
    join cal using (calendar)
    left join expected_messages e on e.instrument_id = inst.instrument_id and e.day = cal.day
  ), up as (
    insert into quality.daily_coverage as c (instrument_id, day, expected_minutes, active_minutes, active_open_minutes,
                                             messages, expected_messages, computed_at)
    select r.instrument_id, r.day, r.expected_minutes, r.active_minutes, r.active_open_minutes, r.messages,
           r.expected_messages, now()
    from rows r
    on conflict (instrument_id, day) do update
      set expected_minutes = excluded.expected_minutes, active_minutes = excluded.active_minutes,
          active_open_minutes = excluded.active_open_minutes, messages = excluded.messages,
          expected_messages = excluded.expected_messages, computed_at = excluded.computed_at
    returning 1
  )
  select count(*)::integer from up
$$;
comment on function quality.refresh_daily_coverage(timestamptz, timestamptz, integer[]) is
  'Recomputes quality.daily_coverage for the UTC days touching [p_from, p_to).';

create or replace function quality.lost_minutes(p_instrument_id integer, p_from timestamptz, p_to timestamptz)
returns numeric
language sql
stable
as $$
  -- Minutes of [p_from, p_to) inside open gap findings (venue outage or our loss) of the instrument.
  select quality.minutes_of(coalesce(range_agg(tstzrange(f.window_from, f.window_to)), '{}')
                            * tstzmultirange(tstzrange(p_from, p_to)))
  from quality.findings f
  where f.instrument_id = p_instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
    and f.resolved_at is null and f.window_from < p_to and f.window_to > p_from
$$;

create or replace view quality.daily_completeness as
select i.venue, i.symbol, c.instrument_id, c.day, c.expected_minutes, c.active_open_minutes, c.active_minutes,
       l.lost_minutes,
       case when c.expected_minutes > 0 and (c.active_minutes > 0 or l.lost_minutes > 0)
            then round(1 - least(l.lost_minutes, c.expected_minutes) / c.expected_minutes, 4) end as completeness,
       c.messages, c.expected_messages,
       case when c.expected_messages > 0 then round(c.messages / c.expected_messages, 3) end as message_coverage,
       c.computed_at
from quality.daily_coverage c
join market.instruments i using (instrument_id)
cross join lateral (
  -- quality.lost_minutes(), written out: a view reads tables with its owner's rights, a function
  -- with its caller's, and analysts and Grafana may not read the tables.
  select quality.minutes_of(coalesce(range_agg(tstzrange(f.window_from, f.window_to)), '{}')
                            * tstzmultirange(tstzrange(c.day::timestamp at time zone 'UTC', (c.day + 1)::timestamp at time zone 'UTC')))
           as lost_minutes
  from quality.findings f
  where f.instrument_id = c.instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
    and f.resolved_at is null and f.window_from < (c.day + 1)::timestamp at time zone 'UTC'
    and f.window_to > c.day::timestamp at time zone 'UTC'
) l;
comment on view quality.daily_completeness is
  'Per instrument and UTC day: minutes the calendar expected data, minutes with data, minutes lost in gaps (venue outage, '
  'our loss), completeness = 1 - lost / expected (null for a day with no data and no gap: nothing was observed), '
  'messages against the usual rate (message_coverage).';

create or replace view quality.daily_findings as
select i.venue, i.symbol, f.instrument_id, f.source, (f.window_from at time zone 'UTC')::date as day, f.kind, f.label,
       f.severity, count(*) as findings,
       round(sum(extract(epoch from f.window_to - f.window_from) / 60)::numeric, 1) as minutes,
       count(*) filter (where f.alerted_at is not null) as alerted
from quality.findings f
left join market.instruments i using (instrument_id)
where f.resolved_at is null
group by i.venue, i.symbol, f.instrument_id, f.source, (f.window_from at time zone 'UTC')::date, f.kind, f.label, f.severity;
comment on view quality.daily_findings is
  'Open findings per UTC day by instrument (or source), kind, label and severity, with the minutes they span.';

create or replace view quality.open_findings as
select f.finding_id, i.venue, i.symbol, f.instrument_id, f.kind, f.label, f.severity, f.source, f.window_from, f.window_to,
       f.value, f.baseline, f.detail, f.detector, f.first_seen_at, f.last_seen_at, f.alerted_at
from quality.findings f
left join market.instruments i using (instrument_id)
where f.resolved_at is null;
comment on view quality.open_findings is 'Findings not resolved by a later run, with venue and symbol.';
