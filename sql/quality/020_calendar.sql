-- Calendars: when a market is open, when it is open but thin (no data expected), and when it is
-- closed. Weekly sessions and closures are local wall-clock times converted to UTC with the
-- calendar's time zone, so daylight saving shifts them as it shifts the market. Everything is a
-- tstzmultirange clipped to the asked window, so callers intersect and subtract hours exactly.

create or replace function quality.open_hours(p_calendar text, p_from timestamptz, p_to timestamptz)
returns tstzmultirange
language sql
stable
as $$
  with cal as (
    select c.* from quality.calendars c where c.calendar = p_calendar
  ), days as (
    -- Local dates around the window (a week before: a session may open days before p_from).
    select (p_from at time zone c.time_zone)::date - 7 as d0, (p_to at time zone c.time_zone)::date + 1 as d1 from cal c
  ), weeks as (
    -- Integer steps over dates: no timestamp (and so no session time zone) is involved.
    select d.d0 - extract(dow from d.d0)::integer + 7 * k as sunday
    from days d, generate_series(0, (d.d1 - d.d0) / 7 + 1) k
  ), sessions as (
    select tstzrange(((w.sunday + s.opens_dow) + s.opens_at) at time zone c.time_zone,
                     ((w.sunday + s.closes_dow
                       + case when (s.closes_dow, s.closes_at) <= (s.opens_dow, s.opens_at) then 7 else 0 end)
                      + s.closes_at) at time zone c.time_zone) as r
    from cal c
    join quality.calendar_sessions s on s.calendar = c.calendar
    cross join weeks w
  ), closures as (
    select tstzrange(x.closed_from at time zone c.time_zone, x.closed_to at time zone c.time_zone) as r
    from cal c
    join quality.calendar_closures x on x.calendar = c.calendar
    where x.closed_from <= (p_to at time zone c.time_zone) + interval '1 day'
      and x.closed_to >= (p_from at time zone c.time_zone) - interval '1 day'
  )
  select case
           when p_to <= p_from then '{}'::tstzmultirange
           when c.always_open then tstzmultirange(tstzrange(p_from, p_to))
           else (coalesce((select range_agg(s.r) from sessions s), '{}')
                 - coalesce((select range_agg(x.r) from closures x), '{}'))
                * tstzmultirange(tstzrange(p_from, p_to))
         end
  from cal c
$$;
comment on function quality.open_hours(text, timestamptz, timestamptz) is
  'The hours of [p_from, p_to) in which calendar p_calendar is open (weekly sessions minus holidays and early closes); null for an unknown calendar.';

create or replace function quality.thin_hours(p_calendar text, p_from timestamptz, p_to timestamptz)
returns tstzmultirange
language sql
stable
as $$
  -- Daily thin windows (the forex rollover) that fall in open hours.
  select coalesce((
    select range_agg(tstzrange((d.day + t.starts_at) at time zone c.time_zone, (d.day + t.ends_at) at time zone c.time_zone))
    from quality.calendars c
    join quality.calendar_thin_hours t on t.calendar = c.calendar
    cross join lateral (select (p_from at time zone c.time_zone)::date - 1 + k as day
                        from generate_series(0, (p_to at time zone c.time_zone)::date - (p_from at time zone c.time_zone)::date + 2) k) d
    where c.calendar = p_calendar), '{}'::tstzmultirange)
    * coalesce(quality.open_hours(p_calendar, p_from, p_to), '{}'::tstzmultirange)
$$;
comment on function quality.thin_hours(text, timestamptz, timestamptz) is
  'Open hours of [p_from, p_to) in the calendar''s thin windows (the forex rollover): open, but silence there is normal.';

create or replace function quality.expected_hours(p_calendar text, p_from timestamptz, p_to timestamptz)
returns tstzmultirange
language sql
stable
as $$
  select quality.open_hours(p_calendar, p_from, p_to) - quality.thin_hours(p_calendar, p_from, p_to)
$$;
comment on function quality.expected_hours(text, timestamptz, timestamptz) is
  'Hours of [p_from, p_to) in which data is expected: open and not thin.';

create or replace function quality.calendar_periods(p_calendar text, p_from timestamptz, p_to timestamptz)
returns table (period_from timestamptz, period_to timestamptz, state text, note text)
language sql
stable
as $$
  -- For people: the window cut into open, thin and closed periods (closed ones with the closure's note).
  with h as (
    select quality.open_hours(p_calendar, p_from, p_to) as open, quality.thin_hours(p_calendar, p_from, p_to) as thin
  ), parts as (
    select lower(r) as f, upper(r) as t, 'open' as state from h, unnest(h.open - h.thin) r
    union all
    select lower(r), upper(r), 'thin' from h, unnest(h.thin) r
    union all
    select lower(r), upper(r), 'closed' from h, unnest(tstzmultirange(tstzrange(p_from, p_to)) - h.open) r
  )
  select p.f, p.t, p.state,
         case when p.state = 'closed' then (
           select string_agg(x.note, '; ' order by x.closed_from)
           from quality.calendar_closures x join quality.calendars c using (calendar)
           where x.calendar = p_calendar
             and tstzrange(x.closed_from at time zone c.time_zone, x.closed_to at time zone c.time_zone) && tstzrange(p.f, p.t))
         end
  from parts p
  order by p.f
$$;
comment on function quality.calendar_periods(text, timestamptz, timestamptz) is
  'The window cut into open, thin and closed periods of a calendar, closed ones with the holiday or early close that explains them.';

create or replace function quality.instrument_calendar(p_instrument_id integer)
returns text
language sql
stable
as $$
  select coalesce((select ic.calendar from quality.instrument_calendars ic where ic.instrument_id = p_instrument_id),
                  (select ac.calendar from market.instruments i
                   join quality.asset_class_calendars ac on ac.asset_class = i.asset_class
                   where i.instrument_id = p_instrument_id),
                  'crypto')
$$;
comment on function quality.instrument_calendar(integer) is
  'The calendar of an instrument: its override in quality.instrument_calendars, else its asset class''s.';
