-- Anomalies in ticks: crossed and locked quotes, sizes out of range (above the operator's limit in
-- quality.instrument_limits, or quality.size_factor times the window's median), event times in the future or
-- far in the past, receive-minus-event latency outside its usual band, and what the normalizers
-- refused (staging.quarantine: NaN, zero or negative prices, broken candles, impossible times).
-- Rows of one kind close together (within a minute) make one finding.

create or replace function quality.runs_of(p_rows quality.bad_row[])
returns setof quality.finding_row
language sql
stable
as $$
  -- Rows of one instrument, kind, label and series less than a minute apart make one finding:
  -- window = [first row, last row + 1 microsecond), value and baseline of the row furthest from
  -- its baseline.
  with r as (
    select x.*, sum(case when x.at - x.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by x.instrument_id, x.kind, x.label, x.series order by x.at) as run
    from (select u.*, lag(u.at) over (partition by u.instrument_id, u.kind, u.label, u.series order by u.at) as prev
          from unnest(p_rows) u) x
  )
  select distinct on (r.instrument_id, r.kind, r.label, r.series, r.run)
         r.kind, r.label, (array['info', 'warning', 'error', 'critical'])[max(quality.severity_rank(r.severity)) over g + 1],
         r.instrument_id, i.venue || ':' || r.series,
         min(r.at) over g, max(r.at) over g + interval '1 microsecond', r.value, r.baseline,
         jsonb_build_object('rows', count(*) over g, 'at', r.at)
  from r
  join market.instruments i using (instrument_id)
  window g as (partition by r.instrument_id, r.kind, r.label, r.series, r.run)
  order by r.instrument_id, r.kind, r.label, r.series, r.run, abs(r.value - coalesce(r.baseline, 0)) desc nulls last, r.at
$$;
comment on function quality.runs_of(quality.bad_row[]) is
  'Merges offending rows less than a minute apart (same instrument, kind, label, series) into findings.';

create or replace function quality.find_quote_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  with q as (
    select q.instrument_id, q.quoted_at, q.bid, q.ask, q.bid_size, q.ask_size, q.tradeable
    from market.quotes_between(p_from, p_to) q
    where p_instruments is null or q.instrument_id = any (p_instruments)
  ), usual as (
    select q.instrument_id,
           percentile_cont(0.5) within group (order by greatest(q.bid_size, q.ask_size)::float8)
             filter (where q.bid_size > 0 or q.ask_size > 0) as median_size
    from q group by 1
  ), bad as (
    select q.instrument_id, q.quoted_at as at, k.kind, k.value, k.baseline, q.tradeable
    from q
    join usual u using (instrument_id)
    left join quality.instrument_limits l using (instrument_id)
    cross join lateral (
      select 'crossed_quote' as kind, q.bid as value, q.ask as baseline where q.bid > q.ask
      union all
      select 'locked_quote', q.bid, q.ask where q.bid = q.ask
      union all
      select 'size_out_of_range', greatest(q.bid_size, q.ask_size),
             coalesce(l.max_quote_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
      where greatest(q.bid_size, q.ask_size) > coalesce(l.max_quote_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
    ) k
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, b.kind,
                                case when b.kind = 'size_out_of_range' then 'quote'
                                     when b.tradeable then 'tradeable' else 'indicative' end,
                                case when b.kind = 'crossed_quote' and b.tradeable then 'error' else 'warning' end,
                                'quotes', b.at, b.value, b.baseline)::quality.bad_row), '{}') from bad b))
$$;
comment on function quality.find_quote_anomalies(timestamptz, timestamptz, integer[]) is
  'Detector "quote_anomalies": crossed (bid above ask) and locked (bid = ask) quotes, quote sizes out of range.';

create or replace function quality.find_trade_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  with t as (
    select t.instrument_id, t.traded_at, t.size
    from market.trades t
    where t.traded_at >= p_from and t.traded_at < p_to and (p_instruments is null or t.instrument_id = any (p_instruments))
  ), usual as (
    select t.instrument_id, percentile_cont(0.5) within group (order by t.size::float8) as median_size from t group by 1
  ), bad as (
    select t.instrument_id, t.traded_at as at, t.size as value,
           coalesce(l.max_trade_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000)) as baseline
    from t
    join usual u using (instrument_id)
    left join quality.instrument_limits l using (instrument_id)
    where t.size > coalesce(l.max_trade_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, 'size_out_of_range', 'trade', 'warning', 'trades', b.at, b.value,
                                b.baseline)::quality.bad_row), '{}')
     from bad b))
$$;
comment on function quality.find_trade_anomalies(timestamptz, timestamptz, integer[]) is
  'Detector "trade_anomalies": trade sizes above the operator limit or quality.size_factor (10000) times the window''s median size.';

create or replace function quality.find_timestamp_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  -- Event times that carry the venue's clock (trades; quotes whose time_source is venue):
  --   future_timestamp  event time later than our receive time by more than
  --                     quality.future_tolerance_ms (1000): a skewed venue clock or a wrong unit;
  --   stale_timestamp   a live row (ws, stream, socket) whose event is older than
  --                     quality.stale_after_seconds (300) when received;
  --   latency           receive minus event time above the usual band of its source (venue and
  --                     series, live rows of the window and the hour before): more than
  --                     quality.latency_z (10) times 1.4826 MAD above the median and at least
  --                     quality.latency_min_excess_ms (250) above it.
  with rows as (
    select t.instrument_id, 'trades' as series, t.traded_at as at, t.received_at, t.source
    from market.trades t
    where t.traded_at >= p_from - interval '1 hour' and t.traded_at < p_to
      and (p_instruments is null or t.instrument_id = any (p_instruments))
    union all
    -- Rows only: the quotes of market.quote_blocks come from files, whose receive times say
    -- nothing of latency, and files are refused whole if they start after they were received.
    select q.instrument_id, 'quotes', q.quoted_at, q.received_at, q.source
    from market.quotes q
    where q.time_source = 'venue' and q.quoted_at >= p_from - interval '1 hour' and q.quoted_at < p_to
      and (p_instruments is null or q.instrument_id = any (p_instruments))
  ), lat as (
    select r.*, i.venue, extract(epoch from r.received_at - r.at) * 1000 as ms,
           r.source in ('ws', 'stream', 'socket') as live
    from rows r join market.instruments i using (instrument_id)
  ), band as (
    select l.venue, l.series, percentile_cont(0.5) within group (order by l.ms) as med, count(*) as n
    from lat l where l.live group by 1, 2
  ), band_mad as (
    select b.venue, b.series, b.med, b.n, percentile_cont(0.5) within group (order by abs(l.ms - b.med)) as mad
    from lat l join band b using (venue, series)
    where l.live
    group by 1, 2, 3, 4
  ), bad as (
    select l.instrument_id, l.series, l.at, l.venue,
           case when l.ms < -quality.setting_numeric('quality.future_tolerance_ms', 1000) then 'future_timestamp'
                when l.live and l.ms > quality.setting_numeric('quality.stale_after_seconds', 300) * 1000 then 'stale_timestamp'
                else 'latency' end as kind,
           round(l.ms::numeric, 3) as value, round(b.med::numeric, 3) as baseline
    from lat l
    left join band_mad b using (venue, series)
    where l.at >= p_from
      and (l.ms < -quality.setting_numeric('quality.future_tolerance_ms', 1000)
           or (l.live and l.ms > quality.setting_numeric('quality.stale_after_seconds', 300) * 1000)
           or (l.live and b.n >= 30
               and l.ms - b.med > greatest(quality.setting_numeric('quality.latency_z', 10) * 1.4826 * b.mad,
                                           quality.setting_numeric('quality.latency_min_excess_ms', 250))))
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, b.kind, case when b.kind = 'latency' then 'ms' else 'event_time' end,
                                case when b.kind = 'latency' and b.value - b.baseline < 10000 then 'warning' else 'error' end,
                                b.series, b.at, b.value, b.baseline)::quality.bad_row), '{}')
     from bad b))
$$;
comment on function quality.find_timestamp_anomalies(timestamptz, timestamptz, integer[]) is
  'Detector "timestamps": event times in the future or far in the past, and latency (receive - event, ms) above its source''s usual band.';

create or replace function quality.find_quarantine_anomalies(p_from timestamptz, p_to timestamptz, p_instruments integer[] default null)
returns setof quality.finding_row
language sql
stable
as $$
  -- What the normalizers refused, by the reason they wrote (sql/venues): the data never reached
  -- market, and this makes it visible. Quarantined payloads name no instrument here (the venue
  -- and stream are the source); p_instruments does not narrow them.
  with q as (
    select q.quarantine_id, q.venue, q.stream, q.received_at, q.reason,
           case when q.reason like '%does not bound open and close%' then 'ohlc_invalid'
                when q.reason ~* '(nan|infinity)' or q.payload ~ '"(NaN|Infinity|-Infinity)"' and q.reason like '%not a positive%'
                  then 'non_finite'
                when q.reason like '%not positive%' or q.reason like '%not a positive%' or q.reason like '%is zero%'
                  then 'nonpositive_price'
                when q.reason like '%after it was received%' or q.reason like '%after the file was received%' then 'future_timestamp'
                when q.reason like '%is before 2009%' then 'stale_timestamp'
                else 'malformed' end as kind
    from staging.quarantine q
    where q.received_at >= p_from and q.received_at < p_to
  ), runs as (
    select q.*, sum(case when q.received_at - q.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by q.venue, q.stream, q.kind order by q.received_at, q.quarantine_id) as run
    from (select q.*, lag(q.received_at) over (partition by q.venue, q.stream, q.kind order by q.received_at, q.quarantine_id) as prev
          from q) q
  )
  select r.kind, 'quarantined', 'warning', null::integer, r.venue || ':' || r.stream,
         min(r.received_at), max(r.received_at) + interval '1 microsecond', count(*)::numeric, null::numeric,
         jsonb_build_object('quarantine_ids', (array_agg(r.quarantine_id order by r.quarantine_id))[1:20],
                            'reasons', (array_agg(distinct r.reason))[1:5])
  from runs r
  group by r.venue, r.stream, r.kind, r.run
$$;
comment on function quality.find_quarantine_anomalies(timestamptz, timestamptz, integer[]) is
  'Detector "quarantine": payloads the normalizers refused in the window, by kind (ohlc_invalid, non_finite, '
  'nonpositive_price, future_timestamp, stale_timestamp, malformed), per venue and stream.';
