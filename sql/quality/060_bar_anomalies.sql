-- Anomalies in 1-minute bars and venue candles: the OHLC invariants (low <= open, close <= high),
-- prices that are zero, negative, NaN or infinite, and volumes out of range for the instrument.
-- Venue candles cannot break these (constraints on market.candles stop them, and the normalizer
-- quarantines them: see quarantine_anomalies); bars are derived and have no such constraint, so a
-- broken rebuild or a bad import shows here. Consecutive bad bars of one kind make one finding.

create or replace function quality.find_bar_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
set enable_mergejoin = off
as $$
  with usual as materialized (
    -- The usual 1-minute volume of each series: for bars from trades, the median over the
    -- window's hours of the mean minute volume of the hour (the 1-hour bars: a year of them is a
    -- few thousand rows); for other series, the median of the bars on the hour (1 in 60). A
    -- median is robust to the outlier it judges. A volume above quality.volume_factor (1000)
    -- times it, or above the operator's limit, is out of range.
    select x.instrument_id, x.series,
           coalesce(min(l.max_bar_volume), percentile_cont(0.5) within group (order by x.volume)::numeric
                                             * quality.setting_numeric('quality.volume_factor', 1000)) as max_volume,
           min(l.max_bar_volume) as operator_limit
    from (
      select h.instrument_id, 'trades'::text as series, (h.volume / 60)::float8 as volume
      from market.bars_1h_data h
      where h.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
        and h.bucket >= date_trunc('hour', p_from) and h.bucket < p_to and h.volume > 0 and h.volume < 'Infinity'
      union all
      select s.instrument_id, s.series, s.volume::float8
      from quality.series_1m(p_from, p_to, p_instruments) s
      where s.series <> 'trades' and extract(minute from s.bucket) = 0 and s.volume > 0 and s.volume < 'Infinity'
    ) x
    left join quality.instrument_limits l using (instrument_id)
    group by 1, 2
  ), suspect as (
    -- One pass with one cheap test per bar; only the bars that fail it are looked at closely.
    -- NaN sorts above every number and Infinity, so "high < Infinity" also refuses a NaN high,
    -- and a NaN anywhere else breaks an inequality with high or low.
    select s.*, u.max_volume, u.operator_limit
    from quality.series_1m(p_from, p_to, p_instruments) s
    left join usual u using (instrument_id, series)
    where not (s.low > 0 and s.low <= s.open and s.low <= s.close and s.high >= s.open and s.high >= s.close
               and s.high < 'Infinity')
       or s.volume < 0 or s.volume >= 'Infinity' or s.volume > u.max_volume
  ), bad as (
    select s.instrument_id, s.series, s.bucket, k.kind, k.value, k.baseline, k.detail
    from suspect s
    cross join lateral (
      select 'non_finite' as kind, null::numeric as value, null::numeric as baseline,
             jsonb_build_object('open', s.open::text, 'high', s.high::text, 'low', s.low::text, 'close', s.close::text,
                                'volume', s.volume::text) as detail
      where 'NaN' in (s.open, s.high, s.low, s.close, s.volume) or 'Infinity' in (s.open, s.high, s.low, s.close, s.volume)
         or '-Infinity' in (s.open, s.high, s.low, s.close, s.volume)
      union all
      select 'nonpositive_price', least(s.open, s.high, s.low, s.close), null,
             jsonb_build_object('open', s.open, 'high', s.high, 'low', s.low, 'close', s.close)
      where least(s.open, s.high, s.low, s.close) <= 0
      union all
      select 'ohlc_invalid', case when s.high < greatest(s.open, s.close, s.low) then s.high else s.low end,
             case when s.high < greatest(s.open, s.close, s.low) then greatest(s.open, s.close, s.low)
                  else least(s.open, s.close, s.high) end,
             jsonb_build_object('open', s.open, 'high', s.high, 'low', s.low, 'close', s.close,
                                'rule', case when s.high < greatest(s.open, s.close, s.low) then 'high below open, close or low'
                                             else 'low above open, close or high' end)
      where s.high < greatest(s.open, s.close, s.low) or s.low > least(s.open, s.close, s.high)
      union all
      select 'size_out_of_range', s.volume, s.max_volume,
             jsonb_build_object('limit', s.operator_limit)
      where s.volume < 0 or s.volume > s.max_volume
    ) k
    where k.kind = 'non_finite'
       or 'NaN' not in (s.open, s.high, s.low, s.close, coalesce(s.volume, 0))
  ), runs as (
    select b.*, sum(case when b.bucket - b.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by b.instrument_id, b.series, b.kind order by b.bucket) as run
    from (select b.*, lag(b.bucket) over (partition by b.instrument_id, b.series, b.kind order by b.bucket) as prev from bad b) b
  )
  select distinct on (r.instrument_id, r.series, r.kind, r.run)
         r.kind, case when r.series = 'trades' then 'bar' else 'candle' end,
         case when r.kind = 'size_out_of_range' then 'warning' else 'error' end,
         r.instrument_id, i.venue || ':' || r.series,
         min(r.bucket) over g, max(r.bucket) over g + interval '1 minute', r.value, r.baseline,
         r.detail || jsonb_build_object('bars', count(*) over g, 'at', r.bucket)
  from runs r
  join market.instruments i using (instrument_id)
  window g as (partition by r.instrument_id, r.series, r.kind, r.run)
  order by r.instrument_id, r.series, r.kind, r.run, r.bucket
$$;
comment on function quality.find_bar_anomalies(timestamptz, timestamptz, integer[]) is
  'Detector "bar_anomalies": OHLC invariants, non-positive and non-finite prices, volumes out of range in 1-minute bars and candles.';
