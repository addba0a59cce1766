-- Observed activity: which minutes of an instrument had data, from every series tickflow keeps
-- for it (1-minute bars built from trades, quotes, 1-minute venue candles that are not fillers),
-- and what is usual for it by hour of the week (quality.activity_profiles).

-- Its columns changed once (first_active and last_active went): drop the old form first.
drop function if exists quality.silences(timestamptz, timestamptz, integer[]);
create function quality.silences(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns table (instrument_id integer, series text, silence tstzmultirange)
language sql
stable
as $$
  -- Per instrument and series, the whole minutes of [start, p_to) without data, where start is
  -- the series' last minute with data before p_from (one index probe, so a silence that began
  -- earlier keeps its start from one run to the next). A series with nothing before p_from
  -- starts with its first row: what came before it is not a silence of the series. Minute m has
  -- data when a row falls in [m, m + 1 minute). Each series is read in the order of its
  -- (instrument, time) index (quotes of both stores are sorted: blocks are unnested), and only
  -- the rows that start a silence reach the aggregate.
  with w as materialized (
    select date_trunc('minute', p_from) as f, greatest(date_trunc('minute', p_to), date_trunc('minute', p_from)) as t,
           coalesce(p_instruments, array(select i.instrument_id from market.instruments i)) as ids
  ), steps as (
    select b.instrument_id, 'trades'::text as series, b.bucket as m,
           lead(b.bucket) over (partition by b.instrument_id order by b.bucket) as next_m
    from market.bars_1m_data b
    where b.instrument_id = any ((select ids from w)::integer[]) and b.bucket >= (select f from w) and b.bucket < (select t from w)
    union all
    select q.instrument_id, 'quotes', date_trunc('minute', q.quoted_at),
           date_trunc('minute', lead(q.quoted_at) over (partition by q.instrument_id order by q.quoted_at))
    from w cross join lateral market.quotes_between(w.f, w.t) q
    where q.instrument_id = any (w.ids)
    union all
    select c.instrument_id, 'candles:' || c.price_side, c.bucket,
           lead(c.bucket) over (partition by c.instrument_id, c.price_side order by c.bucket)
    from market.candles c
    where c.instrument_id = any ((select ids from w)::integer[]) and c.timeframe = '1m' and c.bucket >= (select f from w)
      and c.bucket < (select t from w) and c.volume is distinct from 0
  ), inside as (
    select s.instrument_id, s.series,
           range_agg(tstzrange(s.m + interval '1 minute', coalesce(s.next_m, w.t))) as sil
    from steps s, w
    where coalesce(s.next_m, w.t) > s.m + interval '1 minute'
    group by s.instrument_id, s.series
  ), edges as (
    -- Per instrument and series: the last minute with data before the window and the first in it.
    select x.instrument_id, x.series, x.prev_m, x.first_m
    from (
      select i.id as instrument_id, 'trades'::text as series,
             (select max(b.bucket) from market.bars_1m_data b where b.instrument_id = i.id and b.bucket < w.f) as prev_m,
             (select min(b.bucket) from market.bars_1m_data b where b.instrument_id = i.id and b.bucket >= w.f and b.bucket < w.t) as first_m
      from w, unnest(w.ids) i(id)
      union all
      select i.id, 'quotes',
             date_trunc('minute', market.last_quote_time_before(i.id, w.f)),
             date_trunc('minute', market.first_quote_time_in(i.id, w.f, w.t))
      from w, unnest(w.ids) i(id)
      union all
      select i.id, 'candles:' || s.side,
             (select max(c.bucket) from market.candles c
              where c.instrument_id = i.id and c.timeframe = '1m' and c.price_side = s.side and c.bucket < w.f
                and c.volume is distinct from 0),
             (select min(c.bucket) from market.candles c
              where c.instrument_id = i.id and c.timeframe = '1m' and c.price_side = s.side and c.bucket >= w.f
                and c.bucket < w.t and c.volume is distinct from 0)
      from w, unnest(w.ids) i(id), (values ('bid'), ('ask'), ('mid'), ('trade')) s(side)
    ) x
    where x.prev_m is not null or x.first_m is not null
  )
  select e.instrument_id, e.series,
         coalesce(i.sil, '{}'::tstzmultirange)
         + case when e.first_m is null then tstzmultirange(tstzrange(least(e.prev_m + interval '1 minute', w.t), w.t))
                when e.prev_m + interval '1 minute' < e.first_m
                  then tstzmultirange(tstzrange(e.prev_m + interval '1 minute', e.first_m))
                else '{}'::tstzmultirange end
  from edges e
  cross join w
  left join inside i using (instrument_id, series)
$$;
comment on function quality.silences(timestamptz, timestamptz, integer[]) is
  'Per instrument and series (trades, quotes, candles:<side>), the whole minutes without data up to p_to, from the series'' '
  'last data before p_from (or its first row). An instrument is silent where all its series are (range_intersect_agg).';

create or replace function quality.minute_activity(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns table (instrument_id integer, bucket timestamptz, messages bigint, series text[])
language sql
stable
as $$
  -- Minutes with data: trades (from 1-minute bars), quotes, and venue 1-minute candles that are
  -- not fillers (a candle counts its tick count where the venue gives one, else one message).
  select a.instrument_id, a.bucket, sum(a.messages)::bigint, array_agg(distinct a.series order by a.series)
  from (
    select b.instrument_id, b.bucket, b.trades::bigint as messages, 'trades' as series
    from market.bars_1m_data b
    where b.bucket >= p_from and b.bucket < p_to and (p_instruments is null or b.instrument_id = any (p_instruments))
    union all
    select q.instrument_id, date_trunc('minute', q.quoted_at), count(*), 'quotes'
    from market.quotes_between(p_from, p_to) q
    where p_instruments is null or q.instrument_id = any (p_instruments)
    group by 1, 2
    union all
    select c.instrument_id, c.bucket,
           coalesce(c.trade_count, case when c.volume_kind = 'tick_count' then c.volume::bigint end, 1), 'candles:' || c.price_side
    from market.candles c
    where c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
      and (p_instruments is null or c.instrument_id = any (p_instruments))
  ) a
  group by a.instrument_id, a.bucket
$$;
comment on function quality.minute_activity(timestamptz, timestamptz, integer[]) is
  'Minutes of [p_from, p_to) with data per instrument: messages (trades, quotes, candle ticks) and the series that had them.';

create or replace function quality.hour_of_week(p_at timestamptz, p_time_zone text)
returns smallint
language sql
immutable parallel safe
as $$
  -- 0 = Sunday 00:00-01:00 local time.
  select (extract(dow from p_at at time zone p_time_zone) * 24 + extract(hour from p_at at time zone p_time_zone))::smallint
$$;

create or replace function quality.refresh_activity_profiles(p_from timestamptz, p_to timestamptz,
                                                             p_instruments integer[] default null)
returns integer
language sql
as $$
  -- The usual activity by hour of the week, learnt from [p_from, p_to) (the job uses the last
  -- four weeks): expected minutes from the calendar (less those inside open gap findings), minutes
  -- with data and messages in them.
  with inst as (
    select i.instrument_id, quality.instrument_calendar(i.instrument_id) as calendar
    from market.instruments i
    where p_instruments is null or i.instrument_id = any (p_instruments)
  ), cal as (
    select c.calendar, c.time_zone, quality.expected_hours(c.calendar, p_from, p_to) as expected
    from quality.calendars c where c.calendar in (select calendar from inst)
  ), open_minutes as (
    select cal.calendar, quality.hour_of_week(m, cal.time_zone) as how, count(*)::integer as minutes
    from cal, unnest(cal.expected) r, generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
    group by 1, 2
  ), lost as (
    -- Open minutes inside known gaps (venue outage, our loss) are not learnt as usual silence.
    select inst.instrument_id, quality.hour_of_week(m, cal.time_zone) as how, count(*)::integer as minutes
    from inst
    join cal using (calendar)
    cross join lateral (
      select coalesce(range_agg(tstzrange(f.window_from, f.window_to)), '{}'::tstzmultirange) as hours
      from quality.findings f
      where f.instrument_id = inst.instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
        and f.resolved_at is null and f.window_from < p_to and f.window_to > p_from
    ) g
    cross join lateral unnest(g.hours * cal.expected) r
    cross join lateral generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
    group by 1, 2
  ), active as (
    select a.instrument_id, quality.hour_of_week(a.bucket, cal.time_zone) as how, count(*)::integer as minutes,
           sum(a.messages)::bigint as messages
    from quality.minute_activity(p_from, p_to, p_instruments) a
    join inst using (instrument_id)
    join cal using (calendar)
    where cal.expected @> a.bucket
    group by 1, 2
  ), rows as (
    select inst.instrument_id, o.how, o.minutes - coalesce(l.minutes, 0) as open_minutes,
           least(coalesce(a.minutes, 0), o.minutes - coalesce(l.minutes, 0)) as active_minutes, coalesce(a.messages, 0) as messages
    from inst
    join open_minutes o using (calendar)
    left join active a on a.instrument_id = inst.instrument_id and a.how = o.how
    left join lost l on l.instrument_id = inst.instrument_id and l.how = o.how
    where exists (select 1 from active x where x.instrument_id = inst.instrument_id)
  ), up as (
    insert into quality.activity_profiles as p (instrument_id, hour_of_week, open_minutes, active_minutes, messages,
                                                sampled_from, sampled_to, updated_at)
    select r.instrument_id, r.how, r.open_minutes, r.active_minutes, r.messages, p_from, p_to, now()
    from rows r
    on conflict (instrument_id, hour_of_week) do update
      set open_minutes = excluded.open_minutes, active_minutes = excluded.active_minutes, messages = excluded.messages,
          sampled_from = excluded.sampled_from, sampled_to = excluded.sampled_to, updated_at = excluded.updated_at
    returning 1
  )
  select count(*)::integer from up
$$;
comment on function quality.refresh_activity_profiles(timestamptz, timestamptz, integer[]) is
  'Learns each instrument''s usual activity per hour of the week from [p_from, p_to) (instruments with data there only).';

create or replace function quality.active_share(p_instrument_id integer, p_at timestamptz)
returns double precision
language sql
stable
as $$
  -- The share of open minutes with data at this hour of the week; the instrument's overall share
  -- where the hour was sampled less than 30 minutes; null without a profile.
  select coalesce(
    (select p.active_minutes::float8 / p.open_minutes from quality.activity_profiles p
     where p.instrument_id = p_instrument_id and p.open_minutes >= 30
       and p.hour_of_week = quality.hour_of_week(p_at, (select c.time_zone from quality.calendars c
                                                        where c.calendar = quality.instrument_calendar(p_instrument_id)))),
    (select sum(p.active_minutes)::float8 / nullif(sum(p.open_minutes), 0) from quality.activity_profiles p
     where p.instrument_id = p_instrument_id))
$$;
comment on function quality.active_share(integer, timestamptz) is
  'Usual share of open minutes with data for the instrument at that hour of the week (quality.activity_profiles).';

create or replace function quality.messages_per_minute(p_instrument_id integer, p_at timestamptz)
returns double precision
language sql
stable
as $$
  select coalesce(
    (select p.messages::float8 / p.open_minutes from quality.activity_profiles p
     where p.instrument_id = p_instrument_id and p.open_minutes >= 30
       and p.hour_of_week = quality.hour_of_week(p_at, (select c.time_zone from quality.calendars c
                                                        where c.calendar = quality.instrument_calendar(p_instrument_id)))),
    (select sum(p.messages)::float8 / nullif(sum(p.open_minutes), 0) from quality.activity_profiles p
     where p.instrument_id = p_instrument_id))
$$;
comment on function quality.messages_per_minute(integer, timestamptz) is
  'Usual messages per open minute for the instrument at that hour of the week (quality.activity_profiles).';
