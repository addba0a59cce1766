-- Polygon.io (Massive): WebSocket frames (streams forex, indices, stocks, crypto: the cluster;
-- each frame a JSON array of events of any type) and REST aggregate pages (stream 'aggs', source
-- 'rest', request "GET /v2/aggs/ticker/<T>/range/<n>/<timespan>/<from>/<to>?... <status>").
-- Field meanings: the venue's WebSocket and REST specs; evidence in ingesters/README.md.
--
--   C  (forex quote)      p pair, b bid, a ask, t ms            -> market.quotes (no sizes)
--   CA (forex minute)     pair, o h l c, v ticks, s start ms    -> market.candles 1m, bid side (Polygon builds
--                                                                  forex aggregates from the bid), tick_count
--   V  (index value)      T ticker, val, t ms                   -> market.index_values
--   AM (index minute)     sym, o h l c, s, e                    -> market.candles 1m, value side, no volume
--   T  (stock trade)      sym, x exchange, i id, p, s, t, q seq -> market.trades (trade id x-i, or x-trfi-i)
--   Q  (stock quote)      sym, bp, ap, t, q seq                 -> market.quotes; bs/as are round lots whose
--                                                                  share count depends on the security: not mapped
--   AM (stock minute)     sym, o h l c, v shares, s, e          -> market.candles 1m, trade side, base volume
--   XT (crypto trade)     pair, p, s, t, x, i, c conditions     -> market.trades (c 1 = sell side, 2 = buy side)
--   XQ (crypto quote)     pair, bp bs ap as, t                  -> market.quotes
--   XA (crypto minute)    pair, o h l c, v, s, e                -> market.candles 1m, trade side
-- Prices are JSON numbers; their decimal text is kept exactly. Quotes without a venue sequence
-- (C, XQ) are identified by (instrument, millisecond, bid, ask, sizes): seq = microseconds of t
-- plus k, the rank among distinct quotes of that millisecond, so a re-landed quote is kept once.

create or replace function staging.json_positive(p_value jsonb)
returns numeric
language sql
stable parallel safe
as $$
  select case when jsonb_typeof(p_value) = 'number' then staging.positive_decimal(p_value #>> '{}') end
$$;
comment on function staging.json_positive(jsonb) is 'The exact value of a JSON number above zero, else null.';

create or replace function staging.json_nonnegative(p_value jsonb)
returns numeric
language sql
stable parallel safe
as $$
  select case when jsonb_typeof(p_value) = 'number' then staging.nonnegative_decimal(p_value #>> '{}') end
$$;
comment on function staging.json_nonnegative(jsonb) is 'The exact value of a JSON number of zero or more, else null.';

create or replace function staging.normalize_polygon_events_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with frames as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'polygon' and f.stream in ('forex', 'indices', 'stocks', 'crypto')
      and f.received_at >= p_from and f.received_at < p_to
  ), items as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, (e.n - 1)::integer as item, e.v as d,
           e.v->>'ev' as ev,
           case e.v->>'ev' when 'C' then e.v->>'p' when 'V' then e.v->>'T'
                           when 'CA' then e.v->>'pair' when 'XT' then e.v->>'pair' when 'XQ' then e.v->>'pair'
                           when 'XA' then e.v->>'pair' else e.v->>'sym' end as name
    from frames f
    cross join lateral jsonb_array_elements(f.j) with ordinality e(v, n)
    where jsonb_typeof(f.j) = 'array'
  ), named as materialized (
    select i.*,
           case i.stream when 'forex' then i.ev in ('C', 'CA') when 'indices' then i.ev in ('V', 'AM')
                         when 'stocks' then i.ev in ('T', 'Q', 'AM') when 'crypto' then i.ev in ('XT', 'XQ', 'XA') end
             as known,
           market.polygon_ws_ticker(i.stream, i.ev, i.name) as ticker
    from items i
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'polygon', n.ticker, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct on (ticker) ticker, name from named where known and ticker is not null order by ticker) n
    cross join lateral market.polygon_symbol(n.ticker, case when n.ticker like 'X:%' then n.name end) c
    where not exists (select 1 from market.instruments i where i.venue = 'polygon' and i.venue_symbol = n.ticker)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'polygon'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), parsed as materialized (
    select n.*, i.instrument_id, i.asset_class,
           case when staging.is_int(n.d->(case when n.ev in ('CA', 'AM', 'XA') then 's' else 't' end))
                then staging.epoch_ms((n.d->>(case when n.ev in ('CA', 'AM', 'XA') then 's' else 't' end))::bigint) end as at,
           case n.ev when 'C' then staging.json_positive(n.d->'b') when 'Q' then staging.json_positive(n.d->'bp')
                     when 'XQ' then staging.json_positive(n.d->'bp') end as bid,
           case n.ev when 'C' then staging.json_positive(n.d->'a') when 'Q' then staging.json_positive(n.d->'ap')
                     when 'XQ' then staging.json_positive(n.d->'ap') end as ask,
           case when n.ev = 'XQ' then staging.json_nonnegative(n.d->'bs') end as bid_size,
           case when n.ev = 'XQ' then staging.json_nonnegative(n.d->'as') end as ask_size,
           case when n.ev = 'V' then staging.json_positive(n.d->'val')
                when n.ev in ('T', 'XT') then staging.json_positive(n.d->'p') end as price,
           case when n.ev in ('T', 'XT') then staging.json_positive(n.d->'s') end as size,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'o') end as o,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'h') end as h,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'l') end as l,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'c') end as c,
           case when n.ev in ('CA', 'AM', 'XA') and n.stream <> 'indices' then staging.json_nonnegative(n.d->'v') end as volume
    from named n
    left join instruments i on i.venue_symbol = n.ticker
  ), checked as materialized (
    select p.*,
      case
        when jsonb_typeof(p.d) <> 'object' then 'expected an event object, received ' || left(p.d::text, 80)
        when p.ev = 'status' then 'status event inside a data frame: ' || left(p.d::text, 120)
        when not coalesce(p.known, false) then 'event ev=' || coalesce(p.ev, '(none)') || ' is not read on the ' || p.stream || ' cluster'
        when p.instrument_id is null then 'missing or malformed ticker: ' || coalesce(p.name, '(none)')
        when p.at is null then 'time ' || case when p.ev in ('CA', 'AM', 'XA') then 's' else 't' end
                               || ' is not an integer of milliseconds'
        when p.ev in ('C', 'Q', 'XQ') and (p.bid is null or p.ask is null)
          then 'bid or ask is not a positive number: ' || left(p.d::text, 120)
        when p.ev = 'XQ' and (p.bid_size is null or p.ask_size is null) then 'bid size bs or ask size as is not a number'
        when p.ev in ('Q', 'T') and not staging.is_int(p.d->'q') then 'sequence q is not an integer that fits 64 bits'
        when p.ev = 'V' and p.price is null then 'value val is not a positive number: ' || coalesce((p.d->'val')::text, '(none)')
        when p.ev in ('T', 'XT') and (p.price is null or p.size is null)
          then 'price p or size s is not a positive number: ' || left(p.d::text, 120)
        when p.ev in ('T', 'XT') and (coalesce(p.d->>'i', '') !~ '^[0-9A-Za-z]{1,40}$' or not staging.is_int(p.d->'x'))
          then 'trade id i or exchange x is missing or malformed'
        when p.ev in ('CA', 'AM', 'XA') and (p.o is null or p.h is null or p.l is null or p.c is null)
          then 'o, h, l, c are not positive numbers: ' || left(p.d::text, 120)
        when p.ev in ('CA', 'AM', 'XA') and (p.l > least(p.o, p.c) or p.h < greatest(p.o, p.c))
          then 'low or high does not bound open and close'
        when p.ev in ('CA', 'AM', 'XA') and p.stream <> 'indices' and p.volume is null then 'volume v is not a number'
        when p.ev in ('CA', 'AM', 'XA') and (p.d->>'s')::bigint % 60000 <> 0
          then 'minute aggregate start s=' || (p.d->>'s') || ' is not on a minute'
        when p.ev in ('AM', 'XA') and p.d ? 'e'
             and case when staging.is_int(p.d->'e') then (p.d->>'e')::bigint - (p.d->>'s')::bigint <> 60000 else true end
          then 'minute aggregate end e=' || (p.d->>'e') || ' is not one minute after s'
        else staging.time_problem(p.at, p.received_at)
      end as problem
    from parsed p
  ), unkeyed as materialized (
    -- C and XQ quotes carry no sequence: one per (instrument, ms, bid, ask, sizes), not yet stored.
    select distinct on (c.instrument_id, c.at, c.bid, c.ask, c.bid_size, c.ask_size) c.*
    from checked c
    where c.problem is null and c.ev in ('C', 'XQ')
      and not exists (select 1 from market.quotes q
                      where q.instrument_id = c.instrument_id and q.quoted_at = c.at and q.bid = c.bid and q.ask = c.ask
                        and q.bid_size is not distinct from c.bid_size and q.ask_size is not distinct from c.ask_size)
    order by c.instrument_id, c.at, c.bid, c.ask, c.bid_size, c.ask_size, c.frame_id, c.item
  ), keyed as (
    select u.*, (select count(*) from market.quotes q where q.instrument_id = u.instrument_id and q.quoted_at = u.at)
                + row_number() over (partition by u.instrument_id, u.at order by u.frame_id, u.item) - 1 as k
    from unkeyed u
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select k.instrument_id, k.at, staging.epoch_us_of(k.at) + k.k, k.bid, k.bid_size, k.ask, k.ask_size, 'venue',
           k.received_at, k.source, k.frame_id
    from keyed k
    where k.k < 1000
    union all
    select c.instrument_id, c.at, (c.d->>'q')::bigint, c.bid, null, c.ask, null, 'venue', c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev = 'Q'
    on conflict do nothing
    returning instrument_id, quoted_at
  ), quote_inv as (
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from quotes_ins n
    join instruments i on i.instrument_id = n.instrument_id
    where i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), trades_ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select c.instrument_id, c.at,
           (c.d->>'x') || '-' || case when c.ev = 'T' and c.d ? 'trfi' then (c.d->>'trfi') || '-' else '' end || (c.d->>'i'),
           case when c.ev = 'T' then (c.d->>'q')::bigint end, c.price, c.size,
           case when c.ev = 'XT' and c.d->'c' @> '[1]' then 'sell' when c.ev = 'XT' and c.d->'c' @> '[2]' then 'buy' end,
           c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev in ('T', 'XT')
    on conflict do nothing
    returning instrument_id, traded_at
  ), trade_inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from trades_ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), values_ins as (
    insert into market.index_values (instrument_id, valued_at, value, received_at, source, frame_id)
    select c.instrument_id, c.at, c.price, c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev = 'V'
    on conflict do nothing
    returning 1
  ), candles as materialized (
    select distinct on (c.instrument_id, c.ev, c.at) c.*,
           case when c.ev = 'CA' then 'bid' when c.stream = 'indices' then 'value' else 'trade' end as side,
           case when c.ev = 'CA' then 'tick_count' when c.stream = 'indices' then null else 'base' end as volume_kind
    from checked c
    where c.problem is null and c.ev in ('CA', 'AM', 'XA')
    order by c.instrument_id, c.ev, c.at, c.received_at desc, c.frame_id desc, c.item desc
  ), candles_ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select c.instrument_id, '1m', c.at, c.side, c.o, c.h, c.l, c.c, c.volume, c.volume_kind,
           c.at + interval '1 minute' <= c.received_at, c.source, c.received_at, c.frame_id
    from candles c
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item,
           case when j is null then 'payload is not valid JSON'
                else 'expected a JSON array of events, received ' || jsonb_typeof(j) end as problem,
           payload
    from frames where j is null or jsonb_typeof(j) <> 'array'
    union all
    select frame_id, item, problem, d::text from checked where problem is not null
    union all
    select frame_id, item, 'more than 1000 distinct quotes in millisecond ' || at, d::text from keyed where k >= 1000
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'polygon', f.stream, f.received_at, b.payload, b.problem,
           'normalize_polygon_events_v1'
    from bad b join frames f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'events', (select count(*) from items),
    'quotes', (select count(*) from quotes_ins),
    'bar_quotes', (select count(*) from quotes_ins n join instruments i on i.instrument_id = n.instrument_id
                   where i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null and ev in ('C', 'XQ', 'Q'))
                        - (select count(*) from quotes_ins),
    'trades', (select count(*) from trades_ins),
    'trades_duplicate', (select count(*) from checked where problem is null and ev in ('T', 'XT')) - (select count(*) from trades_ins),
    'index_values', (select count(*) from values_ins),
    'index_values_duplicate', (select count(*) from checked where problem is null and ev = 'V') - (select count(*) from values_ins),
    'candles', (select count(*) from candles_ups),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_polygon_aggs_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- GET /v2/aggs/ticker/<T>/range/<n>/<timespan>/<from>/<to> (and its next_url pages):
  -- {"ticker","adjusted","results":[{"o","h","l","c","v","vw","n","t"}],"next_url"?}. Bars start at
  -- t (ms). Price side: bid for forex (the venue builds forex aggregates from the bid), value for
  -- indices, trade otherwise. Volume: tick count for forex, base units (shares, coins) for stocks
  -- and crypto, none for indices; n is a trade count except for forex. Stock aggregates adjusted for
  -- splits change after every split, so only unadjusted ones (adjusted false, stated in the page)
  -- are stored: prices as traded, like the live trades; an adjusted stock page is quarantined.
  with pages as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload, f.request,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           r.m[1] as req_ticker, r.m[2]::integer as multiplier, r.m[3] as timespan,
           substring(f.request from ' ([0-9]{3})$') as status
    from staging.frames f
    left join lateral (select regexp_match(f.request,
                         '^GET /v2/aggs/ticker/([A-Za-z0-9:.]+)/range/([1-9][0-9]{0,5})/(second|minute|hour|day|week|month|quarter|year)/') as m) r
      on true
    where f.batch_id = p_batch and f.venue = 'polygon' and f.stream = 'aggs'
      and f.received_at >= p_from and f.received_at < p_to
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'polygon', n.t, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.req_ticker as t from pages p
          where p.req_ticker ~ '^(C:[A-Z]{6}|X:[A-Z0-9]{4,20}|I:[A-Z0-9.]{1,20}|[A-Z][A-Z0-9.]{0,11})$') n
    cross join lateral market.polygon_symbol(n.t) c
    where not exists (select 1 from market.instruments i where i.venue = 'polygon' and i.venue_symbol = n.t)
    -- Two backfill chunks may meet a new ticker at once: "do update" waits for the other's
    -- insert and returns its row, where "do nothing" would return nothing and refuse the page.
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'polygon'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), checked_pages as materialized (
    select p.*, i.instrument_id, i.asset_class,
           case p.timespan when 'second' then p.multiplier || 's' when 'minute' then p.multiplier || 'm'
                           when 'hour' then p.multiplier || 'h' when 'day' then p.multiplier || 'd'
                           when 'week' then p.multiplier || 'w' when 'month' then p.multiplier || 'mo'
                           when 'quarter' then p.multiplier * 3 || 'mo' when 'year' then p.multiplier * 12 || 'mo' end
             as timeframe,
      case
        when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ' response: ' || left(p.payload, 200)
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when p.req_ticker is null then 'request is not an aggregates request: ' || coalesce(p.request, '(none)')
        when i.instrument_id is null then 'malformed ticker in the request: ' || p.req_ticker
        when p.d->>'ticker' is distinct from p.req_ticker
          then 'ticker ' || coalesce((p.d->'ticker')::text, '(none)') || ' is not the requested ' || p.req_ticker
        when i.asset_class = 'equity' and jsonb_typeof(p.d->'adjusted') is distinct from 'boolean'
          then 'a stock aggregates page must state adjusted'
        when i.asset_class = 'equity' and (p.d->>'adjusted')::boolean
          then 'adjusted stock aggregates are not stored (market.candles keeps prices as traded: request adjusted=false)'
        when p.d ? 'results' and jsonb_typeof(p.d->'results') <> 'array' then 'results is not an array'
      end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.req_ticker
  ), items as materialized (
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.asset_class, p.timeframe, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'t') then staging.epoch_ms((e.r->>'t')::bigint) end as bucket,
           staging.json_positive(e.r->'o') as o, staging.json_positive(e.r->'h') as h,
           staging.json_positive(e.r->'l') as l, staging.json_positive(e.r->'c') as c,
           case when p.asset_class <> 'index' then staging.json_nonnegative(e.r->'v') end as volume
    from checked_pages p
    cross join lateral jsonb_array_elements(coalesce(p.d->'results', '[]')) with ordinality e(r, n)
    where p.problem is null
  ), checked as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected a bar object, received ' || left(i.r::text, 80)
        when i.bucket is null then 'bar start t is not an integer of milliseconds'
        when i.o is null or i.h is null or i.l is null or i.c is null then 'o, h, l, c are not positive numbers: ' || left(i.r::text, 120)
        when i.l > least(i.o, i.c) or i.h < greatest(i.o, i.c) then 'low or high does not bound open and close'
        when i.asset_class <> 'index' and i.volume is null then 'volume v is not a number'
        when i.r ? 'n' and not staging.is_int(i.r->'n') then 'transactions n is not an integer'
        when i.bucket > i.received_at then 'bar start is after the page was received'
        else staging.time_problem(i.bucket, i.received_at)
      end as problem
    from items i
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.bucket) g.*
    from checked g where g.problem is null
    order by g.instrument_id, g.timeframe, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket,
           case g.asset_class when 'forex' then 'bid' when 'index' then 'value' else 'trade' end,
           g.o, g.h, g.l, g.c, g.volume,
           case g.asset_class when 'forex' then 'tick_count' when 'index' then null else 'base' end,
           case when g.asset_class in ('equity', 'crypto') and g.r ? 'n' then (g.r->>'n')::bigint end,
           (g.bucket at time zone 'UTC' + staging.timeframe_interval(g.timeframe)) at time zone 'UTC' <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at,
          frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, r::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'polygon', p.stream, p.received_at, b.payload, b.problem, 'normalize_polygon_aggs_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'agg_pages', (select count(*) from checked_pages where problem is null),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'rows_received', (select count(*) from checked),
    'candles', (select count(*) from ups),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_polygon_other_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown polygon stream ' || f.stream, 'normalize_polygon_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'polygon' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('forex', 'indices', 'stocks', 'crypto', 'aggs')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$$;

create or replace function staging.normalize_polygon_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
begin
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_events_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_aggs_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_other_v1(p_batch, p_from, p_to));
  return v_counts;
end
$$;
comment on function staging.normalize_polygon_v1(uuid, timestamptz, timestamptz) is
  'Polygon.io / Massive: WebSocket event arrays to quotes, trades, index values and minute candles; REST aggregates to candles.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('polygon', 'v1', '-infinity', 'staging.normalize_polygon_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
