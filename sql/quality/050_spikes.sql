-- Spikes in 1-minute series (bars from trades, mid bars from quotes, venue candles per price
-- side), judged robustly:
--
--   move     the bar's extreme (high or low, whichever is further) against the median of the
--            three closes before it, as a log return: a single bad bar cannot move its own
--            reference, so a spike is flagged once and the bar after it is not;
--   baseline the median and the median absolute deviation (MAD) of those moves over the series'
--            previous hour that had at least quality.spike_warmup_bars bars (30): a spike does
--            not inflate a median the way it inflates a standard deviation. The scale is the
--            larger MAD of that hour and the current one (a busy hour after a quiet one is not
--            all spikes), times 1.4826 (the MAD of a normal distribution is 0.6745 sigma), and
--            never below quality.spike_min_scale (0.00005, half a basis point);
--   warm-up  a bar without such an hour before it, in the last three days, is not judged;
--   z        (move - median) / scale; a bar is a spike from quality.spike_z (12); severity
--            warning, error from 25, critical from 60.
--
-- Consecutive spike bars make one finding. Cross-source confirmation: every other series of the
-- symbol (another venue, or the same venue's other series) with bars at that time is asked
-- whether it moved at least half as far in the same direction. If every such source did, it is
-- a real move and nothing is reported; if one did not, the finding is labelled suspect; with no
-- other source, unconfirmed. value = the spiking price, baseline = the reference price.

create or replace function quality.series_1m(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns table (instrument_id integer, series text, bucket timestamptz, open numeric, high numeric, low numeric, close numeric,
               volume numeric)
language sql
stable
as $$
  select b.instrument_id, 'trades'::text, b.bucket, b.open, b.high, b.low, b.close, b.volume
  from market.bars_1m_data b
  where b.bucket >= p_from and b.bucket < p_to and (p_instruments is null or b.instrument_id = any (p_instruments))
  union all
  select q.instrument_id, 'quotes:mid', q.bucket, q.open, q.high, q.low, q.close, null::numeric
  from market.quote_bars_1m_data q
  where q.bucket >= p_from and q.bucket < p_to and (p_instruments is null or q.instrument_id = any (p_instruments))
  union all
  select c.instrument_id, 'candles:' || c.price_side, c.bucket, c.open, c.high, c.low, c.close, c.volume
  from market.candles c
  where c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
    and (p_instruments is null or c.instrument_id = any (p_instruments))
$$;
comment on function quality.series_1m(timestamptz, timestamptz, integer[]) is
  'Every 1-minute price series of the instruments: bars from trades (series trades), mid bars from quotes (quotes:mid), '
  'venue candles (candles:<side>, fillers left out).';

create or replace function quality.series_moves(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns table (instrument_id integer, series text, bucket timestamptz, move double precision, price numeric, reference numeric)
language sql
stable
as $$
  -- Per bar: the log move of its extreme against the median of the three previous closes.
  with s as (
    select s.*,
           lag(s.close, 1) over w as c1, lag(s.close, 2) over w as c2, lag(s.close, 3) over w as c3
    from quality.series_1m(p_from - interval '5 minutes', p_to, p_instruments) s
    window w as (partition by s.instrument_id, s.series order by s.bucket)
  ), r as (
    select s.instrument_id, s.series, s.bucket, s.high, s.low,
           greatest(least(s.c1, s.c2), least(greatest(s.c1, s.c2), s.c3)) as ref
    from s
    where s.c3 is not null and s.bucket >= p_from
  )
  select r.instrument_id, r.series, r.bucket,
         case when r.up >= -r.down then r.up else r.down end,
         case when r.up >= -r.down then r.high else r.low end,
         r.ref
  from (select r.*, ln(r.high::float8 / r.ref::float8) as up, ln(r.low::float8 / r.ref::float8) as down from r) r
$$;
comment on function quality.series_moves(timestamptz, timestamptz, integer[]) is
  'Per 1-minute bar of every series: the log move of its high or low (the further) against the median of the three previous closes.';

create or replace function quality.find_spikes(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  with params as (
    select quality.setting_numeric('quality.spike_z', 12)::float8 as z_min,
           quality.setting_numeric('quality.spike_warmup_bars', 30)::integer as warmup,
           quality.setting_numeric('quality.spike_min_scale', 0.00005)::float8 as min_scale
  ), m as (
    -- Three days before p_from: enough for the previous qualifying hour across a weekend.
    select x.*, date_bin(interval '1 hour', x.bucket, timestamptz '2000-01-03 00:00:00+00') as hour
    from quality.series_moves(p_from - interval '3 days', p_to, p_instruments) x
  ), med as (
    select m.instrument_id, m.series, m.hour, count(*) as n,
           percentile_cont(0.5) within group (order by m.move) as med
    from m group by 1, 2, 3
  ), stats as (
    select d.instrument_id, d.series, d.hour, d.n, d.med,
           percentile_cont(0.5) within group (order by abs(m.move - d.med)) as mad
    from m join med d using (instrument_id, series, hour)
    group by 1, 2, 3, 4, 5
  ), baseline as (
    -- For each hour: the previous hour of the series with enough bars.
    select s.*, max(case when s.n >= p.warmup then s.hour end)
                  over (partition by s.instrument_id, s.series order by s.hour
                        rows between unbounded preceding and 1 preceding) as base_hour
    from stats s, params p
  ), judged as (
    select m.instrument_id, m.series, m.bucket, m.move, m.price, m.reference, b.med as base_med,
           greatest(1.4826 * greatest(b.mad, cur.mad), p.min_scale) as scale, b.n as base_n,
           (m.move - b.med) / greatest(1.4826 * greatest(b.mad, cur.mad), p.min_scale) as z
    from m
    join baseline cur on cur.instrument_id = m.instrument_id and cur.series = m.series and cur.hour = m.hour
    join stats b on b.instrument_id = m.instrument_id and b.series = m.series and b.hour = cur.base_hour
    cross join params p
    where m.bucket >= p_from and m.bucket < p_to
      and abs(m.move - b.med) >= p.z_min * greatest(1.4826 * greatest(b.mad, cur.mad), p.min_scale)
  ), episodes as (
    select j.*, sum(case when j.bucket - j.prev_bucket <= interval '2 minutes' then 0 else 1 end)
                  over (partition by j.instrument_id, j.series order by j.bucket) as episode
    from (select j.*, lag(j.bucket) over (partition by j.instrument_id, j.series order by j.bucket) as prev_bucket
          from judged j) j
  ), spikes as (
    select distinct on (e.instrument_id, e.series, e.episode)
           e.instrument_id, e.series, e.episode, e.bucket, e.move, e.price, e.reference, e.base_med, e.scale, e.base_n, e.z,
           min(e.bucket) over g as window_from, max(e.bucket) over g + interval '1 minute' as window_to,
           count(*) over g as bars
    from episodes e
    window g as (partition by e.instrument_id, e.series, e.episode)
    order by e.instrument_id, e.series, e.episode, abs(e.z) desc
  ), checked as (
    select s.*, i.venue, i.symbol,
           (select coalesce(jsonb_agg(jsonb_build_object('instrument_id', o.instrument_id, 'series', o.series,
                                                         'move', round(o.move::numeric, 6))), '[]')
            from (
              select x.instrument_id, x.series,
                     case when s.move > 0 then max(x.move) else min(x.move) end as move
              from market.instruments oi
              cross join lateral quality.series_moves(s.window_from - interval '1 minute', s.window_to + interval '1 minute',
                                                      array[oi.instrument_id]) x
              where oi.symbol = i.symbol
                and not (x.instrument_id = s.instrument_id and x.series = s.series)
              group by x.instrument_id, x.series
            ) o) as others
    from spikes s
    join market.instruments i using (instrument_id)
  ), labelled as (
    select c.*,
           case when jsonb_array_length(c.others) = 0 then 'unconfirmed'
                when exists (select 1 from jsonb_array_elements(c.others) o
                             where (o->>'move')::float8 * sign(c.move) < 0.5 * abs(c.move)) then 'suspect'
                else 'confirmed' end as label
    from checked c
  )
  select 'spike', l.label,
         case when abs(l.z) >= 60 then 'critical' when abs(l.z) >= 25 then 'error' else 'warning' end,
         l.instrument_id, l.venue || ':' || l.series, l.window_from, l.window_to, l.price, l.reference,
         jsonb_build_object('z', round(l.z::numeric, 2), 'move', round(l.move::numeric, 6),
                            'median', round(l.base_med::numeric, 8), 'scale', round(l.scale::numeric, 8),
                            'baseline_bars', l.base_n, 'bars', l.bars, 'at', l.bucket, 'other_sources', l.others)
  from labelled l
  where l.label <> 'confirmed'
$$;
comment on function quality.find_spikes(timestamptz, timestamptz, integer[]) is
  'Detector "spikes": robust z of each 1-minute bar''s extreme against the median and MAD of the previous hour, with '
  'warm-up and cross-source confirmation; labels suspect (another source disagrees) or unconfirmed (no other source).';
