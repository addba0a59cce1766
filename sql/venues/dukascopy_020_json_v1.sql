-- Dukascopy's JSON API (jetta.dukascopy.com/v1, which replaced the .bi5 file server in 2026),
-- fetched by ingesters/dukascopy-json.ts: one frame per answer, venue 'dukascopy-json', the body
-- verbatim, request 'GET /v1/<path> 200' with the month 1-based:
--   v1/ticks/EUR-USD/2026/7/13/12                 an hour of ticks      (stream ticks)
--   v1/candles/minute/BTC-USD/BID/2023/2/19       a day of 1m candles   (candles_m1)
--   v1/candles/hour/BTC-USD/BID/2023/2            a month of 1h candles (candles_h1)
--   v1/candles/day/BTC-USD/BID/2022               a year of 1d candles  (candles_d1)
-- Bodies are base values plus delta-encoded columns:
--   ticks   {timestamp (ms, the hour), multiplier (1 / point), ask, bid (prices of the first tick),
--            times[] (ms after the previous tick; the first after timestamp), asks[], bids[]
--            (points after the previous tick; the first 0), askVolumes[], bidVolumes[] (units)}
--   candles {timestamp, multiplier, shift (ms per time step), open, high, low, close (the first
--            candle), times[] (steps after the previous candle; the first 0), opens[], highs[],
--            lows[], closes[] (points after the previous candle), volumes[] (millions of units)}
-- A period without data has null base prices and empty arrays: an empty file, as in .bi5.
-- The same instruments as the .bi5 files (market.instruments venue 'dukascopy', EUR-USD is
-- EURUSD), the same units (sizes in units, prices exact at 1 / multiplier), and the natural keys
-- of .bi5 files landed as rows: a tick's seq is its millisecond plus its rank among the file's
-- ticks of that millisecond. An hour is stored once: an hour held as a block of .bi5 ticks
-- (market.quote_blocks) takes no rows from here, and a .bi5 file of an hour held as rows adds its
-- ticks as rows with these keys. Candles upsert like the .bi5 ones.

create or replace function staging.dukascopy_json_files(p_batch uuid, p_from timestamptz, p_to timestamptz, p_streams text[])
returns table (frame_id bigint, batch_id uuid, stream text, received_at timestamptz, source text, payload text,
               d jsonb, path text, instrument_id integer, start_at timestamptz, period interval, point numeric,
               scale integer, n integer, problem text)
language sql
stable
as $$
  -- Frame-level checks: the request names the period and instrument, the body agrees with it.
  with f as materialized (
    select f.*, case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           regexp_match(f.request, '^(?:GET /)?(v1/(ticks|candles/minute|candles/hour|candles/day)/([A-Z0-9]{2,20})-([A-Z0-9]{2,20})'
                                    '(?:/(BID|ASK))?/([0-9]{4})(?:/([0-9]{1,2}))?(?:/([0-9]{1,2}))?(?:/([0-9]{1,2}))?)(?: [0-9]{3})?$') as m
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.stream = any (p_streams)
      and f.received_at >= p_from and f.received_at < p_to
  ), r as materialized (
    select f.*,
           case f.m[2] when 'ticks' then 'ticks' when 'candles/minute' then 'candles_m1' when 'candles/hour' then 'candles_h1'
                       when 'candles/day' then 'candles_d1' end as want_stream,
           -- The parts the path must have: ticks to the hour, minute candles to the day, hour ones to the month.
           case f.m[2] when 'ticks' then 3 when 'candles/minute' then 2 when 'candles/hour' then 1 else 0 end as parts,
           (f.m[7] is not null)::int + (f.m[8] is not null)::int + (f.m[9] is not null)::int as got_parts,
           case f.m[2] when 'ticks' then interval '1 hour' when 'candles/minute' then interval '1 day'
                       when 'candles/hour' then interval '1 month' else interval '1 year' end as period,
           case when f.m is not null
                 and pg_input_is_valid(format('%s-%s-%s %s:00:00+00', f.m[6], coalesce(f.m[7], '1'), coalesce(f.m[8], '1'),
                                              coalesce(f.m[9], '0')), 'timestamptz')
                then format('%s-%s-%s %s:00:00+00', f.m[6], coalesce(f.m[7], '1'), coalesce(f.m[8], '1'),
                            coalesce(f.m[9], '0'))::timestamptz end as start_at,
           case when staging.is_int(f.d->'timestamp') then staging.epoch_ms((f.d->>'timestamp')::bigint) end as stamp,
           -- multiplier 1.0E-5 -> point 100000 (only exact inverse powers of ten are accepted)
           case when jsonb_typeof(f.d->'multiplier') = 'number' and (f.d->>'multiplier')::numeric > 0
                 and (f.d->>'multiplier')::numeric <= 1
                then round(1 / (f.d->>'multiplier')::numeric) end as point,
           jsonb_array_length(case when jsonb_typeof(f.d->'times') = 'array' then f.d->'times' else '[]' end) as n
    from f
  )
  select r.frame_id, r.batch_id, r.stream, r.received_at, r.source, r.payload, r.d, r.m[1], i.instrument_id, r.start_at,
         r.period, r.point, length(r.point::text) - 1, r.n,
         case
           when r.m is null then 'request ' || coalesce(r.request, '(none)') || ' is not a JSON API path (v1/ticks/EUR-USD/2026/7/13/12, '
                                 || 'v1/candles/minute|hour|day/EUR-USD/BID|ASK/...)'
           when r.want_stream is distinct from r.stream then 'request ' || r.request || ' does not fit stream ' || r.stream
           when (r.m[5] is null) <> (r.stream = 'ticks') then 'request ' || r.request || ': candles name a side (BID or ASK), ticks none'
           when r.got_parts <> r.parts or r.start_at is null
             then 'request ' || r.request || ': expected a year' || case r.parts when 3 then ', month, day and hour'
                                                                           when 2 then ', month and day' when 1 then ' and month' else '' end
                  || ' (month 1-based)'
           when r.d is null then 'payload is not valid JSON'
           when jsonb_typeof(r.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(r.d)
           when i.instrument_id is null then 'unknown instrument ' || r.m[3] || '-' || r.m[4]
           when r.stamp is distinct from r.start_at
             then 'timestamp ' || coalesce(r.d->>'timestamp', '(none)') || ' is not the start of the period of ' || r.request
           when r.point is null or r.point::text !~ '^10{0,9}$' or r.point * (r.d->>'multiplier')::numeric <> 1
             then 'multiplier is not 1 / a power of ten up to 1e9: ' || coalesce((r.d->'multiplier')::text, '(none)')
           when r.start_at > r.received_at then 'the period starts after the answer was received'
           when r.stream = 'ticks' and exists (select 1 from unnest(array['times', 'asks', 'bids', 'askVolumes', 'bidVolumes']) c
                                               where jsonb_typeof(r.d->c) is distinct from 'array' or jsonb_array_length(r.d->c) <> r.n)
             then 'times, asks, bids, askVolumes and bidVolumes are not arrays of one length'
           when r.stream <> 'ticks' and exists (select 1 from unnest(array['times', 'opens', 'highs', 'lows', 'closes', 'volumes']) c
                                                where jsonb_typeof(r.d->c) is distinct from 'array' or jsonb_array_length(r.d->c) <> r.n)
             then 'times, opens, highs, lows, closes and volumes are not arrays of one length'
           when r.stream <> 'ticks' and r.n > 0 and (not staging.is_int(r.d->'shift') or (r.d->>'shift')::bigint <= 0)
             then 'shift is not a positive integer: ' || coalesce((r.d->'shift')::text, '(none)')
           when r.n > 0 and exists (select 1 from unnest(case when r.stream = 'ticks' then array['ask', 'bid']
                                                              else array['open', 'high', 'low', 'close'] end) c
                                    where jsonb_typeof(r.d->c) is distinct from 'number' or (r.d->>c)::numeric <= 0
                                       or (r.d->>c)::numeric * r.point <> round((r.d->>c)::numeric * r.point))
             then 'a base price is not a positive number of points: ' || left(r.payload, 120)
         end
  from r
  left join market.instruments i on i.venue = 'dukascopy' and i.venue_symbol = r.m[3] || r.m[4]
$$;

create or replace function staging.normalize_dukascopy_json_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with files as materialized (
    select * from staging.dukascopy_json_files(p_batch, p_from, p_to, array['ticks', 'candles_m1', 'candles_h1', 'candles_d1'])
  ), tick_cols as materialized (
    -- The columns side by side (set-returning functions in one select list run in lockstep).
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source,
           round((f.d->>'ask')::numeric * f.point) as ask0, round((f.d->>'bid')::numeric * f.point) as bid0,
           jsonb_array_elements(f.d->'times') as t, jsonb_array_elements(f.d->'asks') as a,
           jsonb_array_elements(f.d->'bids') as b, jsonb_array_elements(f.d->'askVolumes') as av,
           jsonb_array_elements(f.d->'bidVolumes') as bv, generate_series(0, f.n - 1) as item
    from files f
    where f.problem is null and f.stream = 'ticks' and f.n > 0
  ), tick_items as materialized (
    select c.*,
           case
             when not (staging.is_int(c.t) and staging.is_int(c.a) and staging.is_int(c.b)) or (c.t #>> '{}')::bigint < 0
               then 'time step, ask or bid step is not an integer (time steps not negative): '
                    || jsonb_build_array(c.t, c.a, c.b)::text
             when jsonb_typeof(c.av) <> 'number' or (c.av #>> '{}')::numeric < 0 or jsonb_typeof(c.bv) <> 'number' or (c.bv #>> '{}')::numeric < 0
               then 'a volume is not a non-negative number: ' || jsonb_build_array(c.av, c.bv)::text
           end as problem
    from tick_cols c
  ), ticks as materialized (
    -- Running sums; once an element is bad the rest of its file cannot be placed (they are deltas).
    select x.*, bool_or(x.problem is not null) over w as broken,
           sum(case when x.problem is null then (x.t #>> '{}')::bigint end) over w as ms,
           x.ask0 + sum(case when x.problem is null then (x.a #>> '{}')::bigint end) over w as ask,
           x.bid0 + sum(case when x.problem is null then (x.b #>> '{}')::bigint end) over w as bid
    from tick_items x
    window w as (partition by x.frame_id order by x.item)
  ), tick_ranked as materialized (
    select t.*, row_number() over (partition by t.frame_id, t.ms order by t.item) - 1 as k,
           case when t.ms >= 3600000 then 'time ' || t.ms || ' ms is outside the hour'
                when t.ask <= 0 or t.bid <= 0 then 'ask ' || t.ask || ' or bid ' || t.bid || ' points is not positive' end as late_problem
    from ticks t
    where not t.broken
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select r.instrument_id, r.start_at + r.ms * interval '1 millisecond', staging.epoch_us_of(r.start_at) + r.ms * 1000 + r.k,
           round(r.bid / r.point, r.scale), trim_scale((r.bv #>> '{}')::numeric),
           round(r.ask / r.point, r.scale), trim_scale((r.av #>> '{}')::numeric),
           'venue', r.received_at, r.source, r.frame_id
    from tick_ranked r
    where r.late_problem is null and r.k < 1000
      -- an hour kept as a block (a .bi5 file of format v2) is not stored again as rows
      and not exists (select 1 from market.quote_blocks b
                      where b.instrument_id = r.instrument_id and b.hour_start = r.start_at)
    on conflict do nothing
    returning 1
  ), candle_cols as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source, f.stream, f.period,
           case f.stream when 'candles_m1' then '1m' when 'candles_h1' then '1h' else '1d' end as timeframe,
           case f.stream when 'candles_m1' then 60000 when 'candles_h1' then 3600000 else 86400000 end as step_ms,
           lower(substring(f.path from '/(BID|ASK)/')) as side, (f.d->>'shift')::bigint as shift,
           round((f.d->>'open')::numeric * f.point) as o0, round((f.d->>'high')::numeric * f.point) as h0,
           round((f.d->>'low')::numeric * f.point) as l0, round((f.d->>'close')::numeric * f.point) as c0,
           jsonb_array_elements(f.d->'times') as t, jsonb_array_elements(f.d->'opens') as o,
           jsonb_array_elements(f.d->'highs') as h, jsonb_array_elements(f.d->'lows') as l,
           jsonb_array_elements(f.d->'closes') as c, jsonb_array_elements(f.d->'volumes') as v,
           generate_series(0, f.n - 1) as item
    from files f
    where f.problem is null and f.stream <> 'ticks' and f.n > 0
  ), candle_items as materialized (
    select c.*,
           case
             when not (staging.is_int(c.t) and staging.is_int(c.o) and staging.is_int(c.h) and staging.is_int(c.l)
                       and staging.is_int(c.c)) or (c.t #>> '{}')::bigint < 0
               then 'time step or a price step is not an integer (time steps not negative): '
                    || jsonb_build_array(c.t, c.o, c.h, c.l, c.c)::text
             when jsonb_typeof(c.v) <> 'number' or (c.v #>> '{}')::numeric < 0
               then 'volume is not a non-negative number: ' || c.v::text
           end as problem
    from candle_cols c
  ), candles as materialized (
    select x.*, bool_or(x.problem is not null) over w as broken,
           x.start_at + sum(case when x.problem is null then (x.t #>> '{}')::bigint end) over w * x.shift * interval '1 millisecond' as bucket,
           x.o0 + sum(case when x.problem is null then (x.o #>> '{}')::bigint end) over w as open,
           x.h0 + sum(case when x.problem is null then (x.h #>> '{}')::bigint end) over w as high,
           x.l0 + sum(case when x.problem is null then (x.l #>> '{}')::bigint end) over w as low,
           x.c0 + sum(case when x.problem is null then (x.c #>> '{}')::bigint end) over w as close
    from candle_items x
    window w as (partition by x.frame_id order by x.item)
  ), candle_checked as materialized (
    select c.*,
           case
             when c.bucket >= c.start_at + c.period then 'candle at ' || c.bucket || ' is outside the period of its answer'
             when date_bin(c.step_ms * interval '1 millisecond', c.bucket, timestamptz '2000-01-03 00:00:00+00') <> c.bucket
               then 'candle at ' || c.bucket || ' is not on a ' || c.timeframe || ' boundary'
             when least(c.open, c.high, c.low, c.close) <= 0 then 'a price is not positive (points): ' || c.open || ' ' || c.high
                  || ' ' || c.low || ' ' || c.close
             when c.low > least(c.open, c.close) or c.high < greatest(c.open, c.close)
               then 'low or high does not bound open and close (points): ' || c.open || ' ' || c.high || ' ' || c.low || ' ' || c.close
           end as late_problem
    from candles c
    where not c.broken
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.side, g.bucket) g.*,
           exists (select 1 from market.candles k
                   where k.instrument_id = g.instrument_id and k.timeframe = g.timeframe
                     and k.price_side = g.side and k.bucket = g.bucket) as existed
    from candle_checked g
    where g.late_problem is null
    order by g.instrument_id, g.timeframe, g.side, g.bucket, g.received_at desc, g.frame_id desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, g.side,
           round(g.open / g.point, g.scale), round(g.high / g.point, g.scale), round(g.low / g.point, g.scale),
           round(g.close / g.point, g.scale), trim_scale((g.v #>> '{}')::numeric * 1000000), 'quoted_size',
           g.bucket + g.step_ms * interval '1 millisecond' <= g.received_at, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from files where problem is not null
    union all
    -- The first bad element of a file, and every element after it (deltas cannot be placed past it).
    select frame_id, item, coalesce(problem, 'follows a bad element of the same answer'), jsonb_build_array(t, a, b, av, bv)::text
    from ticks where broken
    union all
    select frame_id, item, late_problem, jsonb_build_array(t, a, b, av, bv)::text from tick_ranked where late_problem is not null
    union all
    select frame_id, item, 'more than 1000 ticks in millisecond ' || ms || ' of the hour', jsonb_build_array(t, a, b, av, bv)::text
    from tick_ranked where late_problem is null and k >= 1000
    union all
    select frame_id, item, coalesce(problem, 'follows a bad element of the same answer'), jsonb_build_array(t, o, h, l, c, v)::text
    from candles where broken
    union all
    select frame_id, item, late_problem, jsonb_build_array(t, o, h, l, c, v)::text from candle_checked where late_problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'dukascopy-json', f.stream, f.received_at, b.payload, b.problem,
           'normalize_dukascopy_json_v1'
    from bad b join files f using (frame_id)
    on conflict (frame_id, item) do nothing
  ), whole as (
    insert into market.venue_files as v (venue, path, instrument_id, stream, period_from, period_to, records, complete,
                                         frame_id, received_at)
    select distinct on (f.path) 'dukascopy-json', f.path, f.instrument_id, f.stream, f.start_at, f.start_at + f.period, f.n,
           f.start_at + f.period <= f.received_at, f.frame_id, f.received_at
    from files f
    where f.problem is null
    order by f.path, f.received_at desc, f.frame_id desc
    on conflict (venue, path) do update
      set records = excluded.records, complete = excluded.complete, frame_id = excluded.frame_id,
          received_at = excluded.received_at
      where excluded.received_at >= v.received_at
  )
  select jsonb_build_object(
    'files', (select count(*) from files where problem is null),
    'files_empty', (select count(*) from files where problem is null and n = 0),
    'rows_received', (select count(*) from tick_cols) + (select count(*) from candle_cols),
    'rows_new', (select count(*) from quotes_ins) + (select count(*) from good where not existed),
    'quotes', (select count(*) from quotes_ins),
    'quotes_duplicate', (select count(*) from tick_ranked where late_problem is null and k < 1000) - (select count(*) from quotes_ins),
    'candles', (select count(*) from good where not existed),
    'candles_updated', (select count(*) from ups) - (select count(*) from good where not existed),
    'candles_duplicate', (select count(*) from candle_checked where late_problem is null) - (select count(*) from ups),
    'pages_quarantined', (select count(*) from files where problem is not null),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_dukascopy_json_v1_batch(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb;
begin
  -- Instruments first (EUR-USD in the request is the files' EURUSD), then the answers, then the
  -- empty hours against the calendar (shared with the .bi5 files).
  insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
  select distinct 'dukascopy', x.s, c.symbol, c.base, c.quote, c.asset_class
  from (
    select replace(substring(f.request from '^(?:GET /)?v1/(?:ticks|candles/[a-z]+)/([A-Z0-9]{2,20}-[A-Z0-9]{2,20})/'), '-', '') as s
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.received_at >= p_from and f.received_at < p_to
  ) x
  cross join lateral market.dukascopy_symbol(x.s) c
  where x.s is not null
    and not exists (select 1 from market.instruments i where i.venue = 'dukascopy' and i.venue_symbol = x.s)
  on conflict (venue, venue_symbol) do nothing;
  perform market.lock_quote_hours(array_agg(f.instrument_id), array_agg(f.start_at))
  from staging.dukascopy_json_files(p_batch, p_from, p_to, array['ticks']) f;
  v_counts := staging.normalize_dukascopy_json_v1(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.dukascopy_check_empty_hours(p_batch, p_from, p_to));
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown dukascopy-json stream ' || f.stream, 'normalize_dukascopy_json_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('ticks', 'candles_m1', 'candles_h1', 'candles_d1')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select staging.merge_counts(v_counts, jsonb_build_object('quarantined', count(*))) into v_counts from q;
  return v_counts;
end
$$;
comment on function staging.normalize_dukascopy_json_v1_batch(uuid, timestamptz, timestamptz) is
  'Dukascopy JSON API answers (venue dukascopy-json): ticks to market.quotes, candles to market.candles, same keys as the .bi5 files.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('dukascopy-json', 'v1', '-infinity', 'staging.normalize_dukascopy_json_v1_batch(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
