-- Calendar-aware gaps: the minutes in which an instrument had no data at all (every series
-- silent), compared with its calendar and its usual activity, each hole labelled:
--   market_closed  the calendar says closed (weekend, holiday, early close, night session);
--   venue_outage   the venue reported it (a maintenance window, a ledger gap marked venue_outage,
--                  empty history files of the venue covering the hole) or every other source of
--                  the symbol was silent too;
--   our_loss       we were disconnected (a ledger gap), another source had data, or nothing
--                  explains it (detail.evidence says which).
-- Open-market silence is a gap only when it is longer than the instrument's usual activity makes
-- likely: with p the usual share of open minutes that have data at that hour of the week, k
-- silent minutes happen by chance with probability (1 - p)^k, and a hole is reported when that
-- is below quality.gap_alpha (1e-6 by default), and at least quality.gap_min_minutes long. So an
-- illiquid cross on a Sunday evening may be quiet for an hour; a busy pair not for two minutes.
-- Thin hours (the forex rollover) are never judged.

create or replace function quality.minutes_of(p_hours tstzmultirange)
returns numeric
language sql
immutable parallel safe
as $$
  select trim_scale(coalesce(sum(extract(epoch from upper(r) - lower(r)) / 60), 0))
  from unnest(p_hours) r
  where not isempty(r) and not upper_inf(r) and not lower_inf(r)
$$;
comment on function quality.minutes_of(tstzmultirange) is 'Length of a multirange in minutes.';

create or replace function quality.has_activity(p_instrument_id integer, p_from timestamptz, p_to timestamptz)
returns boolean
language sql
stable
as $$
  select exists (select 1 from market.bars_1m_data b
                 where b.instrument_id = p_instrument_id and b.bucket >= date_trunc('minute', p_from) and b.bucket < p_to)
      or exists (select 1 from market.quotes_between(p_from, p_to) q where q.instrument_id = p_instrument_id)
      or exists (select 1 from market.candles c
                 where c.instrument_id = p_instrument_id and c.timeframe = '1m' and c.bucket >= date_trunc('minute', p_from)
                   and c.bucket < p_to and c.volume is distinct from 0)
$$;
comment on function quality.has_activity(integer, timestamptz, timestamptz) is
  'Whether the instrument has any trade bar, quote or non-filler 1-minute candle in [p_from, p_to).';

create or replace function quality.gap_threshold_minutes(p_active_share double precision)
returns integer
language sql
stable
as $$
  select greatest(quality.setting_numeric('quality.gap_min_minutes', 2)::integer,
                  ceil(ln(quality.setting_numeric('quality.gap_alpha', 0.000001)::float8)
                       / ln(1 - least(greatest(coalesce(p_active_share, 0.5), 0.001), 0.999)) - 1e-9)::integer)
$$;
comment on function quality.gap_threshold_minutes(double precision) is
  'Silent open minutes needed before a gap is reported, for an instrument that usually has data in p_active_share of open minutes.';

create or replace function quality.find_gaps(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  with holes as (
    select s.instrument_id, range_intersect_agg(s.silence) as holes
    from quality.silences(p_from, p_to, p_instruments) s
    group by s.instrument_id
  ), inst as (
    select h.instrument_id, h.holes, i.venue, i.symbol, quality.instrument_calendar(i.instrument_id) as calendar
    from holes h
    join market.instruments i using (instrument_id)
    where not isempty(h.holes)
  ), cal as (
    select x.*, quality.open_hours(x.calendar, lower(x.holes), upper(x.holes)) as open,
           quality.thin_hours(x.calendar, lower(x.holes), upper(x.holes)) as thin,
           quality.expected_hours(x.calendar, date_trunc('minute', p_from), date_trunc('minute', p_to)) as expected_window
    from inst x
  ), window_share as (
    -- Without a profile: the share of this window's expected minutes that had data.
    select c.instrument_id,
           1 - quality.minutes_of(c.holes * c.expected_window) / nullif(quality.minutes_of(c.expected_window), 0) as share
    from cal c
  ), parts as (
    select c.instrument_id, c.venue, c.symbol, c.calendar, r, 'closed' as part
    from cal c, unnest(c.holes - c.open) r
    union all
    select c.instrument_id, c.venue, c.symbol, c.calendar, r, 'open'
    from cal c, unnest(c.holes * (c.open - c.thin)) r
  ), judged as (
    select p.*, quality.minutes_of(tstzmultirange(p.r)) as minutes,
           coalesce(quality.active_share(p.instrument_id, lower(p.r)), ws.share) as share,
           quality.messages_per_minute(p.instrument_id, lower(p.r)) as rate
    from parts p
    left join window_share ws using (instrument_id)
  ), gaps as (
    select j.*, quality.gap_threshold_minutes(j.share) as threshold
    from judged j
    where j.part = 'closed' or j.minutes >= quality.gap_threshold_minutes(j.share)
  ), evidence as (
    select g.*,
           (select mw.window_id from quality.maintenance_windows mw
            where mw.venue = g.venue and (mw.instrument_id is null or mw.instrument_id = g.instrument_id)
              and tstzrange(mw.window_from, mw.window_to) && g.r
            order by mw.window_from limit 1) as maintenance_id,
           (select jsonb_build_object('gap_id', l.gap_id, 'state', l.state, 'detected_by', l.detected_by, 'stream', l.stream)
            from quality.gaps l
            where l.venue = g.venue and (l.instrument_id is null or l.instrument_id = g.instrument_id)
              and tstzrange(l.gap_from, coalesce(l.gap_to, 'infinity')) && g.r
            order by (l.state = 'venue_outage') desc, (l.state = 'market_closed') desc, l.gap_from limit 1) as ledger,
           (select jsonb_build_object('sources', count(*), 'active', count(*) filter (where quality.has_activity(o.instrument_id, lower(g.r), upper(g.r))))
            from market.instruments o
            where o.symbol = g.symbol and o.instrument_id <> g.instrument_id) as others,
           -- Minutes of the hole inside empty venue files (market.venue_files, records 0): the
           -- venue's own record that it has no data for the period. Silence inside a file that
           -- had records is not counted: rows of it may have been lost after it was read.
           (select quality.minutes_of(tstzmultirange(g.r) * range_agg(tstzrange(vf.period_from, vf.period_to)))
            from market.venue_files vf
            where vf.instrument_id = g.instrument_id and vf.records = 0 and vf.complete
              and vf.period_from < upper(g.r) and vf.period_to > lower(g.r)) as file_minutes
    from gaps g
    where g.part = 'open'
  ), labelled as (
    select e.*,
           case when e.maintenance_id is not null then 'venue_outage'
                when e.file_minutes >= e.minutes then 'venue_outage'
                when e.ledger->>'state' = 'venue_outage' then 'venue_outage'
                when e.ledger->>'state' = 'market_closed' then 'market_closed'
                when e.ledger is not null then 'our_loss'
                when (e.others->>'sources')::integer > 0 and (e.others->>'active')::integer = 0 then 'venue_outage'
                else 'our_loss' end as label,
           case when e.maintenance_id is not null then 'maintenance_window'
                when e.file_minutes >= e.minutes then 'venue_files'
                when e.ledger is not null then 'ledger_' || (e.ledger->>'state')
                when (e.others->>'sources')::integer > 0 and (e.others->>'active')::integer = 0 then 'all_sources_silent'
                when (e.others->>'active')::integer > 0 then 'other_source_active'
                else 'unexplained' end as evidence
    from evidence e
  )
  select 'gap', 'market_closed', 'info', g.instrument_id, g.venue, lower(g.r), upper(g.r), g.minutes::numeric, null::numeric,
         jsonb_build_object('calendar', g.calendar, 'evidence', 'calendar')
  from gaps g
  where g.part = 'closed'
  union all
  select 'gap', l.label,
         case when l.label = 'market_closed' then 'info'
              when l.label = 'venue_outage' then 'warning'
              when l.minutes < 15 then 'warning'
              when l.minutes < 120 then 'error'
              else 'critical' end,
         l.instrument_id, l.venue, lower(l.r), upper(l.r), l.minutes::numeric, l.threshold::numeric,
         jsonb_strip_nulls(jsonb_build_object(
           'calendar', l.calendar, 'evidence', l.evidence, 'threshold_minutes', l.threshold,
           'active_share', round(l.share::numeric, 4), 'messages_per_minute', round(l.rate::numeric, 3),
           'expected_messages', round((l.rate * l.minutes)::numeric), 'maintenance_window_id', l.maintenance_id,
           'ledger', l.ledger, 'other_sources', l.others))
  from labelled l
$$;
comment on function quality.find_gaps(timestamptz, timestamptz, integer[]) is
  'Detector "gaps": holes in an instrument''s data against its calendar and usual activity, labelled market_closed, '
  'venue_outage or our_loss; value = silent minutes, baseline = the threshold in minutes.';
