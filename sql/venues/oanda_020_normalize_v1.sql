-- OANDA v20: pricing-stream lines (stream 'pricing', source 'stream') and REST candle pages
-- (stream 'candles', source 'rest', request "GET /v3/instruments/<I>/candles?... <status>").
-- Field meanings: OANDA v20 docs (PricingStream, ClientPrice, Candlestick); evidence in
-- ingesters/README.md. HEARTBEAT lines are liveness only: the ingester does not land them.
--
-- A price: best bid = the highest "bids" price, best ask = the lowest "asks" price (decimal
-- strings), sizes = their "liquidity" (units of the base currency). tradeable is the "tradeable"
-- boolean, or, in the 2016 form that has only "status", status = 'tradeable'. Non-tradeable
-- prices (around the weekly close) are kept, flagged, and make no bar. OANDA prices carry no
-- update id: seq = microseconds since the epoch of quoted_at, so a price landed twice (a replay,
-- an overlapping connection) is kept once.

create or replace function staging.normalize_oanda_prices_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with src as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.stream = 'pricing'
      and f.received_at >= p_from and f.received_at < p_to
  ), parsed as materialized (
    select s.*, s.d->>'instrument' as sym,
           case when jsonb_typeof(s.d->'time') = 'string' then staging.oanda_time(s.d->>'time') end as quoted_at,
           case when jsonb_typeof(s.d->'tradeable') = 'boolean' then (s.d->>'tradeable')::boolean
                when s.d->>'status' in ('tradeable', 'non-tradeable', 'invalid') then s.d->>'status' = 'tradeable' end as tradeable,
           b.n as bid_levels, b.bad as bid_bad, b.best as bid, b.size as bid_size,
           a.n as ask_levels, a.bad as ask_bad, a.best as ask, a.size as ask_size
    from src s
    cross join lateral (
      select count(*) as n, count(*) filter (where x.p is null or x.l is null) as bad, max(x.p) as best,
             (array_agg(x.l order by x.p desc nulls last))[1] as size
      from (select case when jsonb_typeof(e->'price') = 'string' then staging.positive_decimal(e->>'price') end as p,
                   case when jsonb_typeof(e->'liquidity') = 'number' then staging.nonnegative_decimal(e->>'liquidity') end as l
            from jsonb_array_elements(case when jsonb_typeof(s.d->'bids') = 'array' then s.d->'bids' else '[]' end) e) x
    ) b
    cross join lateral (
      select count(*) as n, count(*) filter (where x.p is null or x.l is null) as bad, min(x.p) as best,
             (array_agg(x.l order by x.p asc nulls last))[1] as size
      from (select case when jsonb_typeof(e->'price') = 'string' then staging.positive_decimal(e->>'price') end as p,
                   case when jsonb_typeof(e->'liquidity') = 'number' then staging.nonnegative_decimal(e->>'liquidity') end as l
            from jsonb_array_elements(case when jsonb_typeof(s.d->'asks') = 'array' then s.d->'asks' else '[]' end) e) x
    ) a
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'oanda', n.sym, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.sym from parsed p where p.sym ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$') n
    cross join lateral market.oanda_symbol(n.sym) c
    where not exists (select 1 from market.instruments i where i.venue = 'oanda' and i.venue_symbol = n.sym)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'oanda'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), checked as materialized (
    select p.*, i.instrument_id, i.asset_class,
      case
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when p.d->>'type' is distinct from 'PRICE' then 'expected type PRICE, received type=' || coalesce(p.d->>'type', '(none)')
        when i.instrument_id is null then 'missing or malformed instrument: ' || coalesce((p.d->'instrument')::text, '(none)')
        when p.quoted_at is null then 'time is not an RFC 3339 UTC time: ' || coalesce((p.d->'time')::text, '(none)')
        when jsonb_typeof(p.d->'bids') is distinct from 'array' or jsonb_typeof(p.d->'asks') is distinct from 'array'
          then 'bids or asks is not an array'
        when p.bid_bad > 0 or p.ask_bad > 0 then 'a price level is not {price: positive decimal string, liquidity: number}'
        when p.bid_levels = 0 and p.ask_levels = 0 then 'no bid and no ask'
        when p.tradeable is null then 'neither a tradeable flag nor a known status: ' || coalesce((p.d->'status')::text, '(none)')
        else staging.time_problem(p.quoted_at, p.received_at)
      end as problem
    from parsed p
    left join instruments i on i.venue_symbol = p.sym
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, tradeable, time_source,
                               received_at, source, frame_id)
    select c.instrument_id, c.quoted_at, staging.epoch_us_of(c.quoted_at), c.bid, c.bid_size, c.ask, c.ask_size,
           c.tradeable, 'venue', c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null
    on conflict do nothing
    returning instrument_id, quoted_at, tradeable, bid, ask
  ), inv as (
    -- Tradeable two-sided quotes of quote-priced instruments make bars (sql/market/quote_bars*.sql).
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from ins n
    join instruments i on i.instrument_id = n.instrument_id
    where n.tradeable and n.bid is not null and n.ask is not null and i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_oanda_prices_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'quotes', (select count(*) from ins),
    'quotes_non_tradeable', (select count(*) from ins where not tradeable),
    'bar_quotes', (select count(*) from ins n join instruments i on i.instrument_id = n.instrument_id
                   where n.tradeable and n.bid is not null and n.ask is not null and i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$$;

create or replace function staging.normalize_oanda_candles_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- GET /v3/instruments/<I>/candles: {"instrument","granularity","candles":[{"time","volume",
  -- "complete","mid"|"bid"|"ask":{"o","h","l","c"}}]}. One market.candles row per candle and
  -- price side present; volume is OANDA's tick count. The instrument is the one the request
  -- named, and the payload must agree. A candle served while its bucket was open (complete false)
  -- is kept as incomplete and replaced by a later landing (the complete one).
  with pages as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload, f.request,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           substring(f.request from '^GET /v3/instruments/([A-Za-z0-9_]+)/candles') as req_instrument,
           substring(f.request from ' ([0-9]{3})$') as status
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.stream = 'candles'
      and f.received_at >= p_from and f.received_at < p_to
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'oanda', n.s, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.req_instrument as s from pages p where p.req_instrument ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$') n
    cross join lateral market.oanda_symbol(n.s) c
    where not exists (select 1 from market.instruments i where i.venue = 'oanda' and i.venue_symbol = n.s)
    -- Two backfill chunks may meet a new instrument at once: "do update" waits for the other's
    -- insert and returns its row, where "do nothing" would return nothing and refuse the page.
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning instrument_id, venue_symbol
  ), instruments as (
    select instrument_id, venue_symbol from market.instruments where venue = 'oanda'
    union all
    select instrument_id, venue_symbol from registered
  ), checked_pages as materialized (
    select p.*, i.instrument_id, staging.oanda_granularity(p.d->>'granularity') as timeframe,
      case
        when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ' response: ' || left(p.payload, 200)
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when i.instrument_id is null then 'request does not name an instrument: ' || coalesce(p.request, '(none)')
        when p.d->>'instrument' is distinct from p.req_instrument
          then 'instrument ' || coalesce((p.d->'instrument')::text, '(none)') || ' is not the requested ' || p.req_instrument
        when staging.oanda_granularity(p.d->>'granularity') is null
          then 'unknown granularity: ' || coalesce((p.d->'granularity')::text, '(none)')
        when jsonb_typeof(p.d->'candles') is distinct from 'array' then 'candles is not an array'
      end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.req_instrument
  ), items as materialized (
    select p.frame_id, p.batch_id, p.stream, p.received_at, p.source, p.instrument_id, p.timeframe,
           (e.n - 1)::integer as item, e.c,
           case when jsonb_typeof(e.c->'time') = 'string' then staging.oanda_time(e.c->>'time') end as bucket
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d->'candles') with ordinality e(c, n)
    where p.problem is null
  ), sides as materialized (
    -- One row per candle and price side it carries.
    select i.*, s.side, i.c->(s.key) as ohlc,
           case when jsonb_typeof(i.c->(s.key)->'o') = 'string' then staging.positive_decimal(i.c->(s.key)->>'o') end as o,
           case when jsonb_typeof(i.c->(s.key)->'h') = 'string' then staging.positive_decimal(i.c->(s.key)->>'h') end as h,
           case when jsonb_typeof(i.c->(s.key)->'l') = 'string' then staging.positive_decimal(i.c->(s.key)->>'l') end as l,
           case when jsonb_typeof(i.c->(s.key)->'c') = 'string' then staging.positive_decimal(i.c->(s.key)->>'c') end as cl
    from items i
    cross join (values ('mid', 'mid'), ('bid', 'bid'), ('ask', 'ask')) s(key, side)
    where i.c ? s.key
  ), checked as materialized (
    select s.*,
      case
        when jsonb_typeof(s.c) <> 'object' then 'expected a candle object, received ' || left(s.c::text, 80)
        when s.bucket is null then 'time is not an RFC 3339 or UNIX time: ' || coalesce((s.c->'time')::text, '(none)')
        when jsonb_typeof(s.c->'complete') is distinct from 'boolean' then 'complete is not a boolean'
        when case when staging.is_int(s.c->'volume') then (s.c->>'volume')::bigint < 0 else true end
          then 'volume is not a non-negative integer'
        when s.o is null or s.h is null or s.l is null or s.cl is null
          then s.side || ' o, h, l, c are not positive decimal strings: ' || left(s.ohlc::text, 80)
        when s.l > least(s.o, s.cl) or s.h < greatest(s.o, s.cl) then s.side || ' low or high does not bound open and close'
        when s.bucket > s.received_at then 'candle time ' || (s.c->>'time') || ' is after the page was received'
        else staging.time_problem(s.bucket, s.received_at)
      end as problem
    from sides s
  ), candle_less as (
    -- A candle with no price side at all is malformed (the request asked for some).
    select i.frame_id, i.item, 'candle has none of mid, bid, ask: ' || left(i.c::text, 80) as problem, i.c::text as payload
    from items i
    where not (jsonb_typeof(i.c) = 'object' and (i.c ? 'mid' or i.c ? 'bid' or i.c ? 'ask'))
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.side, g.bucket) g.*,
           exists (select 1 from market.candles c
                   where c.instrument_id = g.instrument_id and c.timeframe = g.timeframe
                     and c.price_side = g.side and c.bucket = g.bucket) as existed
    from checked g
    where g.problem is null
    order by g.instrument_id, g.timeframe, g.side, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as c (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, g.side, g.o, g.h, g.l, g.cl, (g.c->>'volume')::numeric, 'tick_count',
           (g.c->>'complete')::boolean, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not c.complete and (excluded.complete or excluded.received_at >= c.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, payload from candle_less
    union all
    select distinct on (frame_id, item) frame_id, item, problem, c::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'oanda', p.stream, p.received_at, b.payload, b.problem, 'normalize_oanda_candles_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'candle_pages', (select count(*) from checked_pages where problem is null),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'rows_received', (select count(*) from checked),
    -- A key that was not stored is inserted; every other row the upsert wrote replaced an
    -- incomplete candle (counted without joining the upsert's rows back: that join is quadratic).
    'candles', (select count(*) from good where not existed),
    'candles_updated', (select count(*) from ups) - (select count(*) from good where not existed),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_oanda_other_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown oanda stream ' || f.stream, 'normalize_oanda_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('pricing', 'candles')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$$;

create or replace function staging.normalize_oanda_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
begin
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_prices_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_candles_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_other_v1(p_batch, p_from, p_to));
  return v_counts;
end
$$;
comment on function staging.normalize_oanda_v1(uuid, timestamptz, timestamptz) is
  'OANDA v20: pricing-stream lines to market.quotes (tradeable flag, mid-price bars), REST candle pages to market.candles.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('oanda', 'v1', '-infinity', 'staging.normalize_oanda_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
