-- Spikes in 1-minute series (bars from trades, mid bars from quotes, venue candles per price
-- side), judged robustly:
--
--   move     the bar's extreme against its open: high - open or low - open, whichever is further,
--            in price units (one numeric subtraction per bar: a year of bars for a hundred
--            instruments is read once). Within an hour the price level barely changes, so the z
--            below is the same as with relative moves; reported moves are relative (log returns);
--   baseline the median of the moves and their median absolute deviation (MAD) over the series'
--            previous hour that had at least quality.spike_warmup_bars bars (30): a spike does not
--            move a median the way it inflates a standard deviation. The deviation is taken about
--            zero, the expected one-minute move, so that one sort gives both statistics. The scale
--            is the larger MAD of that hour and the current one (a busy hour after a quiet one is
--            not all spikes), times 1.4826 (the MAD of a normal distribution is 0.6745 sigma), and
--            never below quality.spike_min_scale (0.00005, half a basis point) of the price;
--   warm-up  a bar without such an hour before it, in the last three days, is not judged;
--   z        (move - median) / scale; a bar is a spike from quality.spike_z (12); severity
--            warning, error from 25, critical from 60 (the episode's largest |z|).
--
-- A spiking close shows in its bar and, through the next open, in the next one: consecutive spike
-- bars make one finding, described by its first bar. Cross-source confirmation: every other
-- series of the symbol (another venue, or the same venue's other series) with bars at that time
-- is asked whether it moved at least half as far (relatively) in the same direction. If every
-- such source did, it is a real move and nothing is reported; if one did not, the finding is
-- labelled suspect; with no other source, unconfirmed. value = the price furthest from the
-- reference, baseline = the reference (the previous bar's close).

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

-- Its columns changed once (price and reference moved to quality.bar_prices): drop the old form first.
drop function if exists quality.series_moves(timestamptz, timestamptz, integer[]);
create function quality.series_moves(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns table (instrument_id integer, series text, bucket timestamptz, move double precision)
language sql
stable
as $$
  -- Per bar: high - open or low - open, whichever is further, in price units. No window and no
  -- sort: one pass over each series in the window.
  select b.instrument_id, 'trades'::text, b.bucket,
         (case when b.high - b.open >= b.open - b.low then b.high - b.open else b.low - b.open end)::float8
  from market.bars_1m_data b
  where b.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and b.bucket >= p_from and b.bucket < p_to
  union all
  select q.instrument_id, 'quotes:mid', q.bucket,
         (case when q.high - q.open >= q.open - q.low then q.high - q.open else q.low - q.open end)::float8
  from market.quote_bars_1m_data q
  where q.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and q.bucket >= p_from and q.bucket < p_to
  union all
  select c.instrument_id, 'candles:' || c.price_side, c.bucket,
         (case when c.high - c.open >= c.open - c.low then c.high - c.open else c.low - c.open end)::float8
  from market.candles c
  where c.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
$$;
comment on function quality.series_moves(timestamptz, timestamptz, integer[]) is
  'Per 1-minute bar of every series: high - open or low - open, whichever is further (price units).';

create or replace function quality.instrument_moves(p_instrument_id integer, p_from timestamptz, p_to timestamptz)
returns table (series text, bucket timestamptz, move double precision)
language sql
stable
as $$
  -- quality.series_moves for one instrument, each series read through its (instrument, time)
  -- index in time order (inlined into the caller: the instrument is a plain equality there). The
  -- two differences are taken once each.
  select 'trades'::text, b.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.bars_1m_data b
  cross join lateral (select b.high - b.open as up, b.open - b.low as down) d
  where b.instrument_id = p_instrument_id and b.bucket >= p_from and b.bucket < p_to
  union all
  select 'quotes:mid', q.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.quote_bars_1m_data q
  cross join lateral (select q.high - q.open as up, q.open - q.low as down) d
  where q.instrument_id = p_instrument_id and q.bucket >= p_from and q.bucket < p_to
  union all
  select 'candles:' || c.price_side, c.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.candles c
  cross join lateral (select c.high - c.open as up, c.open - c.low as down) d
  where c.instrument_id = p_instrument_id and c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to
    and c.volume is distinct from 0
$$;
comment on function quality.instrument_moves(integer, timestamptz, timestamptz) is
  'quality.series_moves of one instrument (series, bucket, move), read in index order.';

create or replace function quality.relative_moves(p_from timestamptz, p_to timestamptz, p_instruments integer[])
returns table (instrument_id integer, series text, bucket timestamptz, move double precision)
language sql
stable
as $$
  -- The same move as a log return against the open, for the few bars a spike is compared on.
  select s.instrument_id, s.series, s.bucket,
         case when s.high - s.open >= s.open - s.low then ln(s.high::float8 / s.open::float8)
              else ln(s.low::float8 / s.open::float8) end
  from quality.series_1m(p_from, p_to, p_instruments) s
  where s.open > 0 and s.low > 0
$$;
comment on function quality.relative_moves(timestamptz, timestamptz, integer[]) is
  'Per 1-minute bar: the log return of its high or low (the further) against its open.';

create or replace function quality.bar_prices(p_instrument_id integer, p_series text, p_bucket timestamptz,
                                              out extreme numeric, out reference numeric)
language sql
stable
as $$
  -- The reference of a bar is the previous bar's close (its own open for the first); its extreme is
  -- the one of its open, high, low and close furthest from the reference. Exact prices.
  with s as (
    select x.bucket, x.open, x.high, x.low, x.close
    from quality.series_1m(p_bucket - interval '1 day', p_bucket + interval '1 minute', array[p_instrument_id]) x
    where x.series = p_series
    order by x.bucket desc
    limit 2
  ), b as (
    select s.*, coalesce((select p.close from s p where p.bucket < p_bucket), s.open) as ref
    from s where s.bucket = p_bucket
  )
  select (select v from unnest(array[b.open, b.high, b.low, b.close]) v order by abs(v - b.ref) desc limit 1), b.ref
  from b
$$;
comment on function quality.bar_prices(integer, text, timestamptz) is
  'Of one 1-minute bar of a series: the price furthest from the reference (the previous close), and that reference.';

create or replace function quality.find_spikes(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
-- The hourly statistics are joined on three keys; the planner cannot estimate the CTEs and, left
-- alone, picks merge joins on two keys that compare every hour with every hour. Hash joins and an
-- in-memory sort keep a year of bars for 100 instruments to one pass over the bars.
set enable_mergejoin = off
set work_mem = '256MB'
as $$
  with params as (
    select quality.setting_numeric('quality.spike_z', 12)::float8 as z_min,
           quality.setting_numeric('quality.spike_warmup_bars', 30)::integer as warmup,
           quality.setting_numeric('quality.spike_min_scale', 0.00005)::float8 as min_scale
  ), stats as materialized (
    -- Per series and hour, in one pass over the moves (three days before p_from too: enough for
    -- the previous qualifying hour across a weekend): the median, the MAD and the extreme moves.
    -- One instrument at a time: its bars come in index order and are grouped in memory (a year
    -- of a hundred instruments at once is a sort of 40 million rows spilled to disk).
    select i.id as instrument_id, m.series, m.hour, m.n, m.med, m.mad, m.up, m.down
    from unnest(coalesce(p_instruments, array(select i.instrument_id from market.instruments i order by 1))) i(id)
    cross join lateral (
      select x.series, date_bin(interval '1 hour', x.bucket, timestamptz '2000-01-03 00:00:00+00') as hour, count(*) as n,
             percentile_cont(0.5) within group (order by x.move) as med,
             percentile_cont(0.5) within group (order by abs(x.move)) as mad,
             max(x.move) as up, min(x.move) as down
      from quality.instrument_moves(i.id, p_from - interval '3 days', p_to) x
      group by 1, 2
    ) m
  ), cur as materialized (
    -- Each hour and the series' previous hour that had enough bars.
    select s.*, max(case when s.n >= p.warmup then s.hour end)
                  over (partition by s.instrument_id, s.series order by s.hour
                        rows between unbounded preceding and 1 preceding) as base_hour
    from stats s, params p
  ), baseline as materialized (
    select cur.instrument_id, cur.series, cur.hour, cur.up, cur.down, b.med as base_med, b.n as base_n,
           1.4826 * greatest(b.mad, cur.mad) as mad_scale
    from cur
    join stats b on b.instrument_id = cur.instrument_id and b.series = cur.series and b.hour = cur.base_hour
  ), candidates as (
    -- Only the hours whose extreme move crosses the threshold are read again, bar by bar.
    select h.instrument_id, h.series, x.bucket, x.move, h.base_med, h.base_n, h.mad_scale
    from baseline h
    cross join params p
    cross join lateral quality.instrument_moves(h.instrument_id, greatest(h.hour, p_from), least(h.hour + interval '1 hour', p_to)) x
    where h.hour + interval '1 hour' > p_from and h.hour < p_to
      and greatest(h.up - h.base_med, h.base_med - h.down) >= p.z_min * h.mad_scale
      and x.series = h.series
      and abs(x.move - h.base_med) >= p.z_min * h.mad_scale
  ), judged as (
    -- The floor of the scale is relative to the price: read back for the candidates only.
    select c.instrument_id, c.series, c.bucket, c.move, c.base_med, c.base_n,
           greatest(c.mad_scale, p.min_scale * bp.reference::float8) as scale,
           (c.move - c.base_med) / greatest(c.mad_scale, p.min_scale * bp.reference::float8) as z,
           bp.reference
    from candidates c
    cross join params p
    cross join lateral quality.bar_prices(c.instrument_id, c.series, c.bucket) bp
    where abs(c.move - c.base_med) >= p.z_min * greatest(c.mad_scale, p.min_scale * bp.reference::float8)
  ), episodes as (
    select j.*, sum(case when j.bucket - j.prev_bucket <= interval '2 minutes' then 0 else 1 end)
                  over (partition by j.instrument_id, j.series order by j.bucket) as episode
    from (select j.*, lag(j.bucket) over (partition by j.instrument_id, j.series order by j.bucket) as prev_bucket
          from judged j) j
  ), spikes as (
    -- One finding per episode, described by its first bar (where the price left its reference),
    -- with the largest |z| of the episode.
    select distinct on (e.instrument_id, e.series, e.episode)
           e.instrument_id, e.series, e.episode, e.bucket, e.base_med, e.scale, e.base_n, e.z,
           max(abs(e.z)) over g as z_max,
           min(e.bucket) over g as window_from, max(e.bucket) over g + interval '1 minute' as window_to,
           count(*) over g as bars
    from episodes e
    window g as (partition by e.instrument_id, e.series, e.episode)
    order by e.instrument_id, e.series, e.episode, e.bucket
  ), checked as (
    select s.*, i.venue, i.symbol, bp.extreme, bp.reference,
           (select r.move from quality.relative_moves(s.window_from, s.window_from + interval '1 minute', array[s.instrument_id]) r
            where r.series = s.series) as move,
           (select coalesce(jsonb_agg(jsonb_build_object('instrument_id', o.instrument_id, 'series', o.series,
                                                         'move', round(o.move::numeric, 6))), '[]')
            from (
              select x.instrument_id, x.series,
                     case when s.z > 0 then max(x.move) else min(x.move) end as move
              from market.instruments oi
              cross join lateral quality.relative_moves(s.window_from - interval '1 minute', s.window_to + interval '1 minute',
                                                        array[oi.instrument_id]) x
              where oi.symbol = i.symbol
                and not (x.instrument_id = s.instrument_id and x.series = s.series)
              group by x.instrument_id, x.series
            ) o) as others
    from spikes s
    join market.instruments i using (instrument_id)
    cross join lateral quality.bar_prices(s.instrument_id, s.series, s.window_from) bp
  ), labelled as (
    select c.*,
           case when jsonb_array_length(c.others) = 0 then 'unconfirmed'
                when exists (select 1 from jsonb_array_elements(c.others) o
                             where (o->>'move')::float8 * sign(c.z) < 0.5 * abs(c.move)) then 'suspect'
                else 'confirmed' end as label
    from checked c
  )
  select 'spike', l.label,
         case when l.z_max >= 60 then 'critical' when l.z_max >= 25 then 'error' else 'warning' end,
         l.instrument_id, l.venue || ':' || l.series, l.window_from, l.window_to, l.extreme, l.reference,
         jsonb_build_object('z', round(l.z::numeric, 2), 'z_max', round(l.z_max::numeric, 2),
                            'move', round(l.move::numeric, 6), 'median', round(l.base_med::numeric, 8),
                            'scale', round(l.scale::numeric, 8), 'baseline_bars', l.base_n, 'bars', l.bars,
                            'other_sources', l.others)
  from labelled l
  where l.label <> 'confirmed'
$$;
comment on function quality.find_spikes(timestamptz, timestamptz, integer[]) is
  'Detector "spikes": robust z of each 1-minute bar''s extreme against the median and MAD of the previous hour, with '
  'warm-up and cross-source confirmation; labels suspect (another source disagrees) or unconfirmed (no other source).';
