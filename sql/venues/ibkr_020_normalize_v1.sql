-- Interactive Brokers (venue 'ib'): frames written by ingesters/ibkr.ts from the TWS API wire,
-- every value the text TWS sent. Live (source 'socket'), one JSON object per message:
--   AllLast       tick-by-tick trade (99, tickType 1 Last / 2 AllLast): time (epoch s), price, size,
--                 mask (1 past limit, 2 unreported), exchange, specialConditions -> market.trades
--   BidAsk        tick-by-tick quote (99, tickType 3): time, bidPrice, askPrice, bidSize, askSize,
--                 mask                                                      -> market.quotes
--   RealTimeBars  5-second bar (50): time (bar start, epoch s), open, high, low, close, volume, wap,
--                 count; what TRADES (trade side) or MIDPOINT (cash)        -> market.candles 5s
-- History (stream historicalData, from ingesters/ibkr-history.ts): one page per reqHistoricalData
-- answer (17): timeframe, what, bars [{date, open, high, low, close, volume, wap, count}], date in
-- epoch seconds (formatDate 2) or yyyymmdd for daily bars                   -> market.candles.
-- Every frame names its contract: conId (the instrument's venue symbol), symbol (canonical: AAPL,
-- EUR/USD), secType (STK equity, CASH forex, IND index, CFD, CRYPTO).
-- TWS times are whole seconds and carry no trade id or quote sequence: a trade is keyed by its
-- second and its rank among the trades of that second (in arrival order), a quote likewise
-- (seq = microseconds of the second + rank); a frame already normalized is skipped, so a batch
-- normalized twice keeps one row per message.
-- Volumes: shares for stocks since server version 175 (HMDS_MARKET_DATA_IN_SHARES); an older
-- server counted lots, so its volumes are not stored. MIDPOINT bars have no volume (TWS sends -1).

create or replace function market.ib_asset_class(p_sec_type text)
returns text
language sql
immutable parallel safe
as $$
  select case p_sec_type when 'STK' then 'equity' when 'CASH' then 'forex' when 'IND' then 'index' when 'CFD' then 'cfd'
                         when 'CRYPTO' then 'crypto' end
$$;
comment on function market.ib_asset_class(text) is 'IBKR secType to asset class: STK equity, CASH forex, IND index, CFD cfd, CRYPTO crypto.';

create or replace function staging.ib_epoch_seconds(p_text text)
returns timestamptz
language sql
stable parallel safe
as $$
  select case when p_text ~ '^[0-9]{9,11}$' then timestamptz '1970-01-01 00:00:00+00' + p_text::bigint * interval '1 second' end
$$;
comment on function staging.ib_epoch_seconds(text) is 'A TWS time in whole epoch seconds, else null.';

create or replace function staging.ib_bar_length(p_timeframe text)
returns interval
language sql
immutable parallel safe
as $$
  -- The bar sizes IBKR history serves: seconds, minutes, hours, days (1s ... 1d).
  select left(p_timeframe, -1)::integer * case right(p_timeframe, 1) when 's' then interval '1 second'
           when 'm' then interval '1 minute' when 'h' then interval '1 hour' when 'd' then interval '1 day' end
$$;

create or replace function staging.ib_register_instruments(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns void
language sql
as $$
  insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
  select distinct on (j->>'conId') 'ib', j->>'conId', j->>'symbol', market.ib_asset_class(j->>'secType'),
         case when j->>'secType' = 'CASH' then split_part(j->>'symbol', '/', 1) end,
         case when j->>'secType' = 'CASH' then split_part(j->>'symbol', '/', 2) end
  from staging.frames f
  cross join lateral (select case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j) p
  where f.batch_id = p_batch and f.venue = 'ib' and f.received_at >= p_from and f.received_at < p_to
    and jsonb_typeof(j) = 'object' and j->>'conId' ~ '^[0-9]{1,12}$' and j->>'symbol' ~ '^[A-Z0-9.]+(/[A-Z0-9.]+)?$'
    and market.ib_asset_class(j->>'secType') is not null
    and not exists (select 1 from market.instruments i where i.venue = 'ib' and i.venue_symbol = j->>'conId')
  order by j->>'conId', f.frame_id
  on conflict (venue, venue_symbol) do nothing
$$;

create or replace function staging.normalize_ib_live_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with frames as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.stream in ('AllLast', 'BidAsk', 'RealTimeBars')
      and f.received_at >= p_from and f.received_at < p_to
  ), parsed as materialized (
    select f.*, i.instrument_id, i.asset_class, staging.ib_epoch_seconds(f.j->>'time') as at,
           staging.positive_decimal(f.j->>'price') as price, staging.positive_decimal(f.j->>'size') as size,
           staging.positive_decimal(f.j->>'bidPrice') as bid, staging.positive_decimal(f.j->>'askPrice') as ask,
           staging.nonnegative_decimal(f.j->>'bidSize') as bid_size, staging.nonnegative_decimal(f.j->>'askSize') as ask_size,
           staging.positive_decimal(f.j->>'open') as o, staging.positive_decimal(f.j->>'high') as h,
           staging.positive_decimal(f.j->>'low') as l, staging.positive_decimal(f.j->>'close') as c,
           case when f.j->>'what' = 'TRADES' and sv.v >= 175 then staging.nonnegative_decimal(f.j->>'volume') end as volume,
           sv.v as server_version
    from frames f
    cross join lateral (select case when pg_input_is_valid(f.j->>'serverVersion', 'integer') then (f.j->>'serverVersion')::integer end as v) sv
    left join market.instruments i on i.venue = 'ib' and i.venue_symbol = f.j->>'conId'
  ), checked as materialized (
    select p.*,
      case
        when p.j is null then 'payload is not valid JSON'
        when jsonb_typeof(p.j) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.j)
        when p.instrument_id is null then 'unknown or malformed contract: conId ' || coalesce(p.j->>'conId', '(none)')
                                          || ', symbol ' || coalesce(p.j->>'symbol', '(none)') || ', secType ' || coalesce(p.j->>'secType', '(none)')
        when p.at is null then 'time is not whole epoch seconds: ' || coalesce(p.j->>'time', '(none)')
        when p.stream = 'AllLast' and coalesce(p.j->>'tickType', '') not in ('1', '2')
          then 'tickType ' || coalesce(p.j->>'tickType', '(none)') || ' is not a trade (1 Last, 2 AllLast)'
        when p.stream = 'AllLast' and (p.price is null or p.size is null)
          then 'price or size is not a positive number: ' || left(p.payload, 200)
        when p.stream = 'BidAsk' and coalesce(p.j->>'tickType', '') <> '3' then 'tickType ' || coalesce(p.j->>'tickType', '(none)') || ' is not BidAsk (3)'
        when p.stream = 'BidAsk' and (p.bid is null or p.ask is null or p.bid_size is null or p.ask_size is null)
          then 'bid, ask or a size is not a number: ' || left(p.payload, 200)
        when p.stream = 'RealTimeBars' and (p.o is null or p.h is null or p.l is null or p.c is null)
          then 'open, high, low, close are not positive numbers: ' || left(p.payload, 200)
        when p.stream = 'RealTimeBars' and (p.l > least(p.o, p.c) or p.h < greatest(p.o, p.c))
          then 'low or high does not bound open and close'
        when p.stream = 'RealTimeBars' and coalesce(p.j->>'what', '') not in ('TRADES', 'MIDPOINT', 'BID', 'ASK')
          then 'what ' || coalesce(p.j->>'what', '(none)') || ' is not TRADES, MIDPOINT, BID or ASK'
        when p.stream = 'RealTimeBars' and p.j->>'what' = 'TRADES' and p.server_version >= 175 and p.volume is null
          then 'volume is not a number: ' || coalesce(p.j->>'volume', '(none)')
        else staging.time_problem(p.at, p.received_at)
      end as problem
    from parsed p
  ), new_trades as materialized (
    select c.* from checked c
    where c.problem is null and c.stream = 'AllLast'
      and not exists (select 1 from market.trades t where t.instrument_id = c.instrument_id and t.traded_at = c.at and t.frame_id = c.frame_id)
  ), trades_ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select n.instrument_id, n.at,
           (n.j->>'time') || '-' || ((select count(*) from market.trades t where t.instrument_id = n.instrument_id and t.traded_at = n.at)
                                     + row_number() over (partition by n.instrument_id, n.at order by n.frame_id) - 1),
           null, n.price, n.size, null, n.received_at, n.source, n.frame_id
    from new_trades n
    on conflict do nothing
    returning instrument_id, traded_at
  ), trade_inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from trades_ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), new_quotes as materialized (
    select c.* from checked c
    where c.problem is null and c.stream = 'BidAsk'
      and not exists (select 1 from market.quotes q where q.instrument_id = c.instrument_id and q.quoted_at = c.at and q.frame_id = c.frame_id)
  ), keyed as (
    select n.*, (select count(*) from market.quotes q where q.instrument_id = n.instrument_id and q.quoted_at = n.at)
                + row_number() over (partition by n.instrument_id, n.at order by n.frame_id) - 1 as k
    from new_quotes n
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select k.instrument_id, k.at, staging.epoch_us_of(k.at) + k.k, k.bid, k.bid_size, k.ask, k.ask_size, 'venue',
           k.received_at, k.source, k.frame_id
    from keyed k
    where k.k < 1000000
    on conflict do nothing
    returning instrument_id, quoted_at
  ), quote_inv as (
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from quotes_ins n join market.instruments i on i.instrument_id = n.instrument_id
    where i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), bars as materialized (
    select distinct on (c.instrument_id, c.j->>'what', c.at) c.*,
           case c.j->>'what' when 'TRADES' then 'trade' when 'MIDPOINT' then 'mid' when 'BID' then 'bid' else 'ask' end as side
    from checked c
    where c.problem is null and c.stream = 'RealTimeBars'
    order by c.instrument_id, c.j->>'what', c.at, c.received_at desc, c.frame_id desc
  ), bars_ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select b.instrument_id, '5s', b.at, b.side, b.o, b.h, b.l, b.c, b.volume, case when b.volume is not null then 'base' end,
           case when b.j->>'what' = 'TRADES' and b.j->>'count' ~ '^[0-9]{1,18}$' then (b.j->>'count')::bigint end,
           b.at + interval '5 seconds' <= b.received_at, b.source, b.received_at, b.frame_id
    from bars b
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, problem from checked where problem is not null
    union all
    select frame_id, 'more than a million quotes in second ' || at from keyed where k >= 1000000
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, -1, f.batch_id, 'ib', f.stream, f.received_at, f.payload, b.problem, 'normalize_ib_live_v1'
    from bad b join frames f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'trades', (select count(*) from trades_ins),
    'trades_duplicate', (select count(*) from checked where problem is null and stream = 'AllLast') - (select count(*) from trades_ins),
    'quotes', (select count(*) from quotes_ins),
    'bar_quotes', (select count(*) from quotes_ins n join market.instruments i on i.instrument_id = n.instrument_id
                   where i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null and stream = 'BidAsk') - (select count(*) from quotes_ins),
    'candles', (select count(*) from bars_ups),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.normalize_ib_live_v1(uuid, timestamptz, timestamptz) is
  'IBKR live frames: tick-by-tick trades (AllLast) and quotes (BidAsk), 5-second real-time bars.';

create or replace function staging.normalize_ib_history_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with pages as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.stream = 'historicalData'
      and f.received_at >= p_from and f.received_at < p_to
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
      case
        when p.j is null then 'payload is not valid JSON'
        when jsonb_typeof(p.j) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.j)
        when p.j ? 'error' then 'TWS refused the request: ' || left(p.j->>'error', 300)
        when i.instrument_id is null then 'unknown or malformed contract: conId ' || coalesce(p.j->>'conId', '(none)')
        when coalesce(p.j->>'timeframe', '') !~ '^[1-9][0-9]*(s|m|h|d)$' then 'timeframe is missing or malformed'
        when coalesce(p.j->>'what', '') not in ('TRADES', 'MIDPOINT', 'BID', 'ASK') then 'what ' || coalesce(p.j->>'what', '(none)') || ' is not read'
        when jsonb_typeof(p.j->'bars') is distinct from 'array' then 'bars is not an array'
      end as problem
    from pages p
    left join market.instruments i on i.venue = 'ib' and i.venue_symbol = p.j->>'conId'
  ), items as materialized (
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.j->>'timeframe' as timeframe, p.j->>'what' as what,
           sv.v as server_version, (e.n - 1)::integer as item, e.b,
           case when e.b->>'date' ~ '^[0-9]{9,11}$' then staging.ib_epoch_seconds(e.b->>'date')
                when e.b->>'date' ~ '^[0-9]{8}$' and pg_input_is_valid(e.b->>'date', 'date')
                  then ((e.b->>'date')::date)::timestamp at time zone 'UTC' end as bucket,
           staging.positive_decimal(e.b->>'open') as o, staging.positive_decimal(e.b->>'high') as h,
           staging.positive_decimal(e.b->>'low') as l, staging.positive_decimal(e.b->>'close') as c,
           case when p.j->>'what' = 'TRADES' and sv.v >= 175 then staging.nonnegative_decimal(e.b->>'volume') end as volume
    from checked_pages p
    cross join lateral (select case when pg_input_is_valid(p.j->>'serverVersion', 'integer') then (p.j->>'serverVersion')::integer end as v) sv
    cross join lateral jsonb_array_elements(p.j->'bars') with ordinality e(b, n)
    where p.problem is null
  ), checked as materialized (
    select i.*,
      case
        when jsonb_typeof(i.b) <> 'object' then 'expected a bar object, received ' || left(i.b::text, 80)
        when i.bucket is null then 'bar date is neither epoch seconds nor yyyymmdd: ' || coalesce(i.b->>'date', '(none)')
        when i.o is null or i.h is null or i.l is null or i.c is null then 'open, high, low, close are not positive numbers: ' || left(i.b::text, 160)
        when i.l > least(i.o, i.c) or i.h < greatest(i.o, i.c) then 'low or high does not bound open and close'
        when i.what = 'TRADES' and i.server_version >= 175 and i.volume is null then 'volume is not a number'
        when i.bucket > i.received_at then 'bar starts after the page was received'
        else staging.time_problem(i.bucket, i.received_at)
      end as problem
    from items i
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.what, g.bucket) g.*
    from checked g where g.problem is null
    order by g.instrument_id, g.timeframe, g.what, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket,
           case g.what when 'TRADES' then 'trade' when 'MIDPOINT' then 'mid' when 'BID' then 'bid' else 'ask' end,
           g.o, g.h, g.l, g.c, g.volume, case when g.volume is not null then 'base' end,
           case when g.what = 'TRADES' and g.b->>'count' ~ '^[0-9]{1,18}$' then (g.b->>'count')::bigint end,
           g.bucket + staging.ib_bar_length(g.timeframe) <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, b::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'ib', p.stream, p.received_at, b.payload, b.problem, 'normalize_ib_history_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'history_pages', (select count(*) from checked_pages where problem is null),
    'rows_received', (select count(*) from items),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'candles', (select count(*) from ups),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.normalize_ib_history_v1(uuid, timestamptz, timestamptz) is
  'IBKR historical bars (reqHistoricalData answers) to market.candles.';

create or replace function staging.normalize_ib_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
  v_unknown integer;
begin
  perform staging.ib_register_instruments(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.normalize_ib_live_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_ib_history_v1(p_batch, p_from, p_to));
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload, 'unknown ib stream ' || f.stream, 'normalize_ib_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('AllLast', 'BidAsk', 'RealTimeBars', 'historicalData')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select count(*) into v_unknown from q;
  return staging.merge_counts(v_counts, jsonb_build_object('quarantined', v_unknown));
end
$$;
comment on function staging.normalize_ib_v1(uuid, timestamptz, timestamptz) is
  'Interactive Brokers: tick-by-tick trades and quotes, real-time bars and historical bars (TWS wire text) into market.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('ib', 'v1', '-infinity', 'staging.normalize_ib_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
