-- Binance REST history pages (backfill and gap recovery), landed by ingesters/binance-rest.ts
-- with source 'rest' and request = 'GET <path>?<query> <HTTP status>':
--   stream klines            GET /api/v3/klines            [[openTime, "o", "h", "l", "c", "v", closeTime,
--                                                            "quoteVolume", trades, "takerBase", "takerQuote", "0"], ...]
--   stream aggTrades         GET /api/v3/aggTrades         [{"a","p","q","f","l","T","m","M"}, ...]
--   stream historicalTrades  GET /api/v3/historicalTrades  [{"id","price","qty","quoteQty","time","isBuyerMaker","isBestMatch"}, ...]
-- The symbol (and the kline interval) are taken from the request, which is the only place the
-- venue names them. A page the venue answered with an error (HTTP status other than 200, or a
-- {"code","msg"} body) is quarantined whole with the venue's reason; a bad item is quarantined
-- alone (item = its position in the page). Evidence: ingesters/README.md.

create or replace function staging.binance_rest_pages(p_batch uuid, p_from timestamptz, p_to timestamptz, p_stream text)
returns table (frame_id bigint, batch_id uuid, stream text, received_at timestamptz, source text, payload text,
               request text, symbol text, status text, d jsonb, problem text)
language sql
stable
as $$
  -- Page-level reading shared by the REST normalizers: the symbol and status from the request,
  -- the body parsed once, and the reason a whole page cannot be used.
  with f as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload, f.request,
           upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
           substring(f.request from ' ([0-9]{3})$') as status,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = p_stream
      and f.received_at >= p_from and f.received_at < p_to
  )
  select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload, f.request, f.symbol, f.status, f.d,
         case
           when f.d is not null and jsonb_typeof(f.d) = 'object' and f.d ? 'code'
             then 'venue error ' || coalesce(f.d->>'code', '?') || coalesce(' (HTTP ' || f.status || ')', '') || ': '
                  || left(coalesce(f.d->>'msg', ''), 200)
           when f.status is distinct from '200'
             then 'HTTP ' || coalesce(f.status, '(no status)') || ': ' || left(f.payload, 200)
           when f.d is null then 'payload is not valid JSON (a cut response?): ' || left(f.payload, 80)
           when jsonb_typeof(f.d) <> 'array' then 'expected a JSON array, received ' || jsonb_typeof(f.d)
           when f.symbol is null then 'request names no symbol: ' || coalesce(f.request, '(none)')
         end
  from f
$$;
comment on function staging.binance_rest_pages(uuid, timestamptz, timestamptz, text) is
  'Binance REST pages of a batch and stream: symbol and HTTP status from the request, parsed body, page-level problem.';

drop function if exists staging.binance_rest_instruments(text[]);

create or replace function staging.binance_interval(p_interval text)
returns table (timeframe text, width interval)
language sql
immutable parallel safe
as $$
  -- Fixed-width kline intervals; 1w and 1M (calendar weeks and months) are not taken here.
  select p_interval, v.width
  from (values ('1s', interval '1 second'), ('1m', interval '1 minute'), ('3m', interval '3 minutes'),
               ('5m', interval '5 minutes'), ('15m', interval '15 minutes'), ('30m', interval '30 minutes'),
               ('1h', interval '1 hour'), ('2h', interval '2 hours'), ('4h', interval '4 hours'),
               ('6h', interval '6 hours'), ('8h', interval '8 hours'), ('12h', interval '12 hours'),
               ('1d', interval '1 day'), ('3d', interval '3 days')) v(name, width)
  where v.name = p_interval
$$;
comment on function staging.binance_interval(text) is 'Binance kline interval (1m, 1h, ...) -> timeframe and bucket width; null for calendar intervals.';

drop function if exists staging.binance_klines_apply(uuid, timestamptz, timestamptz, boolean);

create or replace function staging.binance_klines_careful(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- Every value is tested before it is used (a bad kline is quarantined with its reason, the
  -- rest of its page is kept) and candles are upserted. A kline is complete when it closed
  -- before the page was received; an incomplete one is replaced by a later complete one, never
  -- the reverse.
  with pages as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.payload, p.request, p.symbol, p.status,
           substring(p.request from '[?&]interval=([0-9]+[smhdwM])') as interval,
           case when pg_input_is_valid(p.payload, 'jsonb') then p.payload::jsonb end as d
    from (select f.frame_id, f.batch_id, f.received_at, f.source, f.payload, f.request,
                 upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
                 substring(f.request from ' ([0-9]{3})$') as status
          from staging.frames f
          where f.batch_id = p_batch and f.venue = 'binance' and f.stream = 'klines'
            and f.received_at >= p_from and f.received_at < p_to) p
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where symbol is not null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id, tf.timeframe, tf.width, (extract(epoch from tf.width) * 1000)::bigint as width_ms,
           case
             when p.d is not null and jsonb_typeof(p.d) = 'object' and (p.d->>'code') is not null
               then 'venue error ' || (p.d->>'code') || coalesce(' (HTTP ' || p.status || ')', '') || ': '
                    || left(coalesce(p.d->>'msg', ''), 200)
             when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ': ' || left(p.payload, 200)
             when p.d is null then 'payload is not valid JSON (a cut response?): ' || left(p.payload, 80)
             when jsonb_typeof(p.d) <> 'array' then 'expected a JSON array, received ' || jsonb_typeof(p.d)
             when p.symbol is null then 'request names no symbol: ' || coalesce(p.request, '(none)')
             when tf.timeframe is null then 'unsupported or missing kline interval: ' || coalesce(p.interval, '(none)')
             when i.instrument_id is null then 'unknown symbol ' || p.symbol
           end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.symbol
    left join lateral staging.binance_interval(p.interval) tf on true
  ), valued as materialized (
    -- The klines and their values, each tested before it is cast.
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.timeframe, p.width_ms, (e.n - 1)::integer as item, e.r,
           k.shape_ok, t.ints_ok, t.strings_ok,
           case when k.shape_ok and staging.is_int_text(e.r->>0) then (e.r->>0)::bigint end as open_ms,
           case when k.shape_ok and staging.is_int_text(e.r->>6) then (e.r->>6)::bigint end as close_ms,
           case when k.shape_ok and staging.is_int_text(e.r->>8) then (e.r->>8)::bigint end as trades,
           case when k.shape_ok then staging.numeric_or_null(e.r->>1) end as o,
           case when k.shape_ok then staging.numeric_or_null(e.r->>2) end as h,
           case when k.shape_ok then staging.numeric_or_null(e.r->>3) end as l,
           case when k.shape_ok then staging.numeric_or_null(e.r->>4) end as c,
           case when k.shape_ok then staging.numeric_or_null(e.r->>5) end as v
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    cross join lateral (select jsonb_typeof(e.r) = 'array' and jsonb_array_length(e.r) >= 9 as shape_ok) k
    cross join lateral (
      select k.shape_ok and jsonb_typeof(e.r->0) = 'number' and jsonb_typeof(e.r->6) = 'number' and jsonb_typeof(e.r->8) = 'number'
             as ints_ok,
             k.shape_ok and jsonb_typeof(e.r->1) = 'string' and jsonb_typeof(e.r->2) = 'string' and jsonb_typeof(e.r->3) = 'string'
             and jsonb_typeof(e.r->4) = 'string' and jsonb_typeof(e.r->5) = 'string' as strings_ok
    ) t
    where p.problem is null
  ), judged as materialized (
    -- The first problem of each kline; its text is kept only when it is refused.
    select v.frame_id, v.received_at, v.source, v.instrument_id, v.timeframe, v.item, v.open_ms, v.close_ms, v.trades,
           v.o, v.h, v.l, v.c, v.v, staging.epoch_ms(v.open_ms) as bucket, x.problem,
           case when x.problem is not null then v.r::text end as bad_text
    from valued v
    cross join lateral (select case
        when not v.shape_ok
          then 'expected a kline array [openTime, o, h, l, c, v, closeTime, quoteVolume, trades, ...], received ' || left(v.r::text, 80)
        when not v.ints_ok or v.open_ms is null or v.close_ms is null or v.trades is null
          then 'open time, close time or trade count is not an integer: ' || left(v.r::text, 120)
        when not v.strings_ok then 'open, high, low, close and volume must be decimal strings: ' || left(v.r::text, 120)
        when v.open_ms % v.width_ms <> 0 then 'open time ' || v.open_ms || ' is not on a ' || v.timeframe || ' boundary'
        when v.close_ms <> v.open_ms + v.width_ms - 1 then 'close time ' || v.close_ms || ' does not end the ' || v.timeframe || ' bucket'
        when coalesce(not (v.o > 0 and v.h > 0 and v.l > 0 and v.c > 0 and v.h < 'Infinity' and v.o <> 'NaN'
                                         and v.c <> 'NaN'), true)
          then 'open, high, low or close is not a positive finite decimal: ' || left(v.r::text, 120)
        when (v.l > least(v.o, v.c) or v.h < greatest(v.o, v.c))
          then 'low or high does not bound open and close: ' || left(v.r::text, 120)
        when coalesce(not (v.v >= 0 and v.v < 'Infinity'), true)
          then 'volume is not a non-negative decimal: ' || coalesce((v.r->5)::text, '(none)')
        when v.trades < 0 then 'trade count is negative: ' || (v.r->8)::text
        else staging.time_problem(staging.epoch_ms(v.open_ms), v.received_at)
      end as problem) x
  ), good as materialized (
    -- One row per candle key (the same kline on two pages of a batch: the later one), and
    -- whether it replaces an incomplete stored candle (an update, not an insert).
    select distinct on (g.instrument_id, g.timeframe, g.bucket) g.*,
           exists (select 1 from market.candles c
                   where c.instrument_id = g.instrument_id and c.timeframe = g.timeframe
                     and c.price_side = 'trade' and c.bucket = g.bucket and not c.complete) as replaces
    from judged g
    where g.problem is null
    order by g.instrument_id, g.timeframe, g.bucket, g.received_at desc, g.frame_id desc
  ), ups as (
    insert into market.candles as c (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, 'trade', g.o, g.h, g.l, g.c, g.v, 'base', g.trades,
           staging.epoch_ms(g.close_ms) < g.received_at, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at,
          frame_id = excluded.frame_id
      where not c.complete
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, bad_text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'klines', p.received_at, b.payload, b.problem, 'normalize_binance_klines_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'klines', (select count(*) from judged),
    'candles', (select count(*) from ups) - (select count(*) from good where replaces),
    'candles_updated', (select count(*) from good where replaces),
    'candles_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.binance_klines_careful(uuid, timestamptz, timestamptz) is
  'The careful way of normalize_binance_klines_v1: every kline tested, refusals quarantined with a reason; never raises.';

create or replace function staging.binance_kline_refused(p_frame_id bigint, p_kline jsonb)
returns timestamptz
language plpgsql
as $$
begin
  -- Raised by the fast way for a kline or page it cannot take as it is; the careful way then
  -- does the batch again and names the problem.
  raise exception 'kline of frame % is not taken by the fast way: %', p_frame_id, coalesce(left(p_kline::text, 120), '(the page)')
    using errcode = 'data_exception';
end
$$;
comment on function staging.binance_kline_refused(bigint, jsonb) is
  'Raises data_exception: the klines fast way met something only the careful way may judge.';

create or replace function staging.binance_klines_fast(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- The careful way's checks, in one pass that raises instead of explaining: casts without a
  -- test first (bad text raises), a plain insert (a candle already stored raises), the JSON type
  -- of every value read and the kline's place in time tested per kline (a failure raises), and
  -- what market.candles enforces itself (positive, finite, ordered prices; non-negative volume
  -- and trade count; no NaN or Infinity) left to its check constraints, which raise. Nothing is
  -- materialized per kline, and each value is read once.
  with pages as materialized (
    select f.frame_id, f.received_at, f.source,
           upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
           substring(f.request from '[?&]interval=([0-9]+[smhdwM])') as interval,
           substring(f.request from ' ([0-9]{3})$') as status,
           f.payload::jsonb as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = 'klines'
      and f.received_at >= p_from and f.received_at < p_to
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where symbol is not null))
  ), checked_pages as materialized (
    select p.frame_id, p.received_at, p.source, p.d, i.instrument_id, tf.timeframe,
           (extract(epoch from tf.width) * 1000)::bigint as width_ms,
           -- staging.time_problem's bounds in epoch milliseconds: 2009-01-01, a day after receipt
           1230768000000 as earliest_ms,
           (extract(epoch from greatest(p.received_at, now()) + interval '1 day') * 1000)::bigint as latest_ms
    from pages p
    left join instruments i on i.venue_symbol = p.symbol
    left join lateral staging.binance_interval(p.interval) tf on true
    where case when p.status = '200' and jsonb_typeof(p.d) = 'array' and tf.timeframe is not null and i.instrument_id is not null
               then true else staging.binance_kline_refused(p.frame_id, null) is null end
  ), ins as (
    insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                volume_kind, trade_count, complete, source, received_at, frame_id)
    select p.instrument_id, p.timeframe,
           case when k.typed and k.open_ms % p.width_ms = 0 and k.close_ms = k.open_ms + p.width_ms - 1
                     and k.open_ms >= p.earliest_ms and k.open_ms <= p.latest_ms
                then staging.epoch_ms(k.open_ms) else staging.binance_kline_refused(p.frame_id, k.r) end,
           'trade', (k.r->>1)::numeric, (k.r->>2)::numeric, (k.r->>3)::numeric, (k.r->>4)::numeric, (k.r->>5)::numeric,
           'base', k.trades, staging.epoch_ms(k.close_ms) < p.received_at, p.source, p.received_at, p.frame_id
    from checked_pages p
    cross join lateral (
      -- "offset 0" keeps the integers computed once each (the planner would otherwise repeat
      -- the casts wherever they are used).
      select e.r, (e.r->>0)::bigint as open_ms, (e.r->>6)::bigint as close_ms, (e.r->>8)::bigint as trades,
             -- a kline is an array of at least nine: times and trade count numbers, prices and volume strings
             jsonb_typeof(e.r->0) = 'number' and jsonb_typeof(e.r->6) = 'number' and jsonb_typeof(e.r->8) = 'number'
             and jsonb_typeof(e.r->1) = 'string' and jsonb_typeof(e.r->2) = 'string' and jsonb_typeof(e.r->3) = 'string'
             and jsonb_typeof(e.r->4) = 'string' and jsonb_typeof(e.r->5) = 'string' as typed
      from jsonb_array_elements(p.d) e(r)
      offset 0) k
    returning 1
  )
  select jsonb_build_object('rest_pages', (select count(*) from pages), 'pages_quarantined', 0,
                            'klines', (select count(*) from ins), 'candles', (select count(*) from ins),
                            'candles_updated', 0, 'candles_duplicate', 0, 'quarantined', 0)
$$;
comment on function staging.binance_klines_fast(uuid, timestamptz, timestamptz) is
  'The fast way of normalize_binance_klines_v1: new, well-formed klines in one pass; raises on anything else.';

create or replace function staging.normalize_binance_klines_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
begin
  -- A backfill lands a million klines, almost all well-formed and new: the fast way first.
  -- Anything it cannot take (bad text, a candle already stored, a page landed twice) undoes
  -- it, and the careful way does the batch again with a reason for every refusal.
  begin
    return staging.binance_klines_fast(p_batch, p_from, p_to);
  exception when data_exception or integrity_constraint_violation then
    return staging.binance_klines_careful(p_batch, p_from, p_to);
  end;
end
$$;
comment on function staging.normalize_binance_klines_v1(uuid, timestamptz, timestamptz) is
  'Binance GET /api/v3/klines pages -> market.candles (price_side trade, volume in the base asset, trade count).';

create or replace function staging.normalize_binance_rest_trades_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- historicalTrades (and the recent-trades endpoint, same shape): one row per trade id, the
  -- same row the live trade stream produces for that id (isBuyerMaker = the live m flag).
  with pages as materialized (
    select * from staging.binance_rest_pages(p_batch, p_from, p_to, 'historicalTrades')
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where problem is null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
           coalesce(p.problem, case when i.instrument_id is null then 'unknown symbol ' || p.symbol end) as page_problem
    from pages p left join instruments i on i.venue_symbol = p.symbol
  ), items as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.instrument_id, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'time') then staging.epoch_ms((e.r->>'time')::bigint) end as traded_at,
           case when jsonb_typeof(e.r->'price') = 'string' then staging.positive_decimal(e.r->>'price') end as price,
           case when jsonb_typeof(e.r->'qty') = 'string' then staging.positive_decimal(e.r->>'qty') end as size
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    where p.page_problem is null
  ), judged as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected a trade object, received ' || left(i.r::text, 80)
        when not staging.is_int(i.r->'id') then 'trade id is not an integer that fits 64 bits: ' || coalesce((i.r->'id')::text, '(none)')
        when i.price is null then 'price is not a positive decimal string: ' || coalesce((i.r->'price')::text, '(none)')
        when i.size is null then 'qty is not a positive decimal string: ' || coalesce((i.r->'qty')::text, '(none)')
        when i.traded_at is null then 'time is not an integer of milliseconds: ' || coalesce((i.r->'time')::text, '(none)')
        when jsonb_typeof(i.r->'isBuyerMaker') is distinct from 'boolean'
          then 'isBuyerMaker is not a boolean: ' || coalesce((i.r->'isBuyerMaker')::text, '(none)')
        else staging.time_problem(i.traded_at, i.received_at)
      end as problem
    from items i
  ), ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select j.instrument_id, j.traded_at, j.r->>'id', (j.r->>'id')::bigint, j.price, j.size,
           case when (j.r->>'isBuyerMaker')::boolean then 'sell' else 'buy' end, j.received_at, j.source, j.frame_id
    from judged j
    where j.problem is null
    on conflict do nothing
    returning instrument_id, traded_at
  ), inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), bad as (
    select frame_id, -1 as item, page_problem as problem, payload from checked_pages where page_problem is not null
    union all
    select frame_id, item, problem, r::text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'historicalTrades', p.received_at, b.payload, b.problem,
           'normalize_binance_rest_trades_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where page_problem is not null),
    'trades', (select count(*) from ins),
    'trades_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.normalize_binance_rest_trades_v1(uuid, timestamptz, timestamptz) is
  'Binance GET /api/v3/historicalTrades pages -> market.trades (seq = trade id), invalidating the bars they touch.';

create or replace function staging.normalize_binance_rest_agg_trades_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- aggTrades pages: the same fields as the live aggTrade event, without e/E/s.
  with pages as materialized (
    select * from staging.binance_rest_pages(p_batch, p_from, p_to, 'aggTrades')
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where problem is null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
           coalesce(p.problem, case when i.instrument_id is null then 'unknown symbol ' || p.symbol end) as page_problem
    from pages p left join instruments i on i.venue_symbol = p.symbol
  ), items as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.instrument_id, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'T') then staging.epoch_ms((e.r->>'T')::bigint) end as traded_at,
           case when jsonb_typeof(e.r->'p') = 'string' then staging.positive_decimal(e.r->>'p') end as price,
           case when jsonb_typeof(e.r->'q') = 'string' then staging.positive_decimal(e.r->>'q') end as size
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    where p.page_problem is null
  ), judged as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected an aggTrade object, received ' || left(i.r::text, 80)
        when not (staging.is_int(i.r->'a') and staging.is_int(i.r->'f') and staging.is_int(i.r->'l'))
          then 'ids a, f, l are not integers that fit 64 bits: ' || left(i.r::text, 120)
        when (i.r->>'f')::bigint > (i.r->>'l')::bigint then 'first trade id f is after last trade id l: ' || left(i.r::text, 120)
        when i.price is null then 'price p is not a positive decimal string: ' || coalesce((i.r->'p')::text, '(none)')
        when i.size is null then 'size q is not a positive decimal string: ' || coalesce((i.r->'q')::text, '(none)')
        when i.traded_at is null then 'trade time T is not an integer of milliseconds: ' || coalesce((i.r->'T')::text, '(none)')
        when jsonb_typeof(i.r->'m') is distinct from 'boolean' then 'maker flag m is not a boolean: ' || coalesce((i.r->'m')::text, '(none)')
        else staging.time_problem(i.traded_at, i.received_at)
      end as problem
    from items i
  ), ins as (
    insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source, frame_id)
    select j.instrument_id, j.traded_at, (j.r->>'a')::bigint, (j.r->>'f')::bigint, (j.r->>'l')::bigint, j.price, j.size,
           case when (j.r->>'m')::boolean then 'sell' else 'buy' end, j.received_at, j.source, j.frame_id
    from judged j
    where j.problem is null
    on conflict do nothing
    returning 1
  ), bad as (
    select frame_id, -1 as item, page_problem as problem, payload from checked_pages where page_problem is not null
    union all
    select frame_id, item, problem, r::text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'aggTrades', p.received_at, b.payload, b.problem,
           'normalize_binance_rest_agg_trades_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where page_problem is not null),
    'agg_trades', (select count(*) from ins),
    'agg_trades_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.normalize_binance_rest_agg_trades_v1(uuid, timestamptz, timestamptz) is
  'Binance GET /api/v3/aggTrades pages -> market.agg_trades (with the trade id range f..l each covers).';

create or replace function staging.normalize_binance_rest_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
  v_streams text[];
begin
  -- Most batches carry no REST page, and a batch of REST pages one stream: one cheap probe,
  -- then only the normalizers of the streams present.
  select array_agg(distinct f.stream) into v_streams
  from staging.frames f
  where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to
    and f.stream in ('klines', 'aggTrades', 'historicalTrades');
  if 'klines' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_klines_v1(p_batch, p_from, p_to));
  end if;
  if 'historicalTrades' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_rest_trades_v1(p_batch, p_from, p_to));
  end if;
  if 'aggTrades' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_rest_agg_trades_v1(p_batch, p_from, p_to));
  end if;
  return v_counts;
end
$$;
comment on function staging.normalize_binance_rest_v1(uuid, timestamptz, timestamptz) is
  'Binance REST history pages (klines, aggTrades, historicalTrades); registered beside the live normalizer as version rest_v1.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('binance', 'rest_v1', '-infinity', 'staging.normalize_binance_rest_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
