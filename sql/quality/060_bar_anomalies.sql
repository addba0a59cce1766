-- Anomalies in 1-minute bars and venue candles: the OHLC invariants (low <= open, close <= high),
-- prices that are zero, negative, NaN or infinite, and volumes out of range for the instrument.
-- Venue candles cannot break these (constraints on market.candles stop them, and the normalizer
-- quarantines them: see quarantine_anomalies); bars are derived and have no such constraint, so a
-- broken rebuild or a bad import shows here. Consecutive bad bars of one kind make one finding.

create or replace function quality.find_bar_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  with s as (
    select * from quality.series_1m(p_from, p_to, p_instruments)
  ), usual as (
    -- The median volume of the series' bars on the hour (a 1-in-60 sample: a median is robust to
    -- the outlier it judges, and the sample keeps a year of bars cheap): a volume above
    -- quality.volume_factor (1000) times it, or above the operator's limit, is out of range.
    select s.instrument_id, s.series,
           percentile_cont(0.5) within group (order by s.volume::float8)
             filter (where s.volume > 0 and s.volume < 'Infinity' and extract(minute from s.bucket) = 0) as median_volume
    from s group by 1, 2
  ), bad as (
    select s.instrument_id, s.series, s.bucket, k.kind, k.value, k.baseline, k.detail
    from s
    join usual u using (instrument_id, series)
    left join quality.instrument_limits l using (instrument_id)
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
      select 'size_out_of_range', s.volume, coalesce(l.max_bar_volume, u.median_volume::numeric * quality.setting_numeric('quality.volume_factor', 1000)),
             jsonb_build_object('median_volume', round(u.median_volume::numeric, 8), 'limit', l.max_bar_volume)
      where s.volume < 0
         or s.volume > coalesce(l.max_bar_volume, u.median_volume::numeric * quality.setting_numeric('quality.volume_factor', 1000))
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
