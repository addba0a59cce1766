-- Binance spot and USD-M combined streams (trade, aggTrade, bookTicker, depthUpdate) and
-- REST depth snapshots. Field meanings: docs of the venue; evidence in ingesters/README.md.
-- m = true means the buyer was the maker, so the aggressor (side) was the seller.

-- Live frames take one of two ways through the same checks (normalize_binance_v1 chooses): the
-- fast way parses each payload and value once, trusting it to be JSON and numbers, so text that
-- is not raises; the careful way, taken only for a batch where that happened, tests everything
-- first and quarantines what fails with its reason. Both quarantine the same frames.
drop function if exists staging.binance_frames(uuid, timestamptz, timestamptz, text);
drop function if exists staging.normalize_binance_trades_v1(uuid, timestamptz, timestamptz);
drop function if exists staging.normalize_binance_agg_trades_v1(uuid, timestamptz, timestamptz);
drop function if exists staging.normalize_binance_quotes_v1(uuid, timestamptz, timestamptz);

create or replace function staging.binance_frames(p_batch uuid, p_from timestamptz, p_to timestamptz, p_stream text,
                                                  p_careful boolean default true)
returns table (frame_id bigint, batch_id uuid, venue text, stream text, received_at timestamptz,
               source text, payload text, d jsonb)
language sql
stable
as $$
  -- Each payload is parsed once (materialized), however often d is used.
  with j as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when not p_careful or pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = p_stream
      and f.received_at >= p_from and f.received_at < p_to
  )
  select frame_id, batch_id, venue, stream, received_at, source, payload, coalesce(j -> 'data', j) from j
$$;

create or replace function staging.normalize_binance_trades_v1(p_batch uuid, p_from timestamptz, p_to timestamptz,
                                                               p_careful boolean default true)
returns jsonb
language sql
as $$
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'t', p_careful) as trade_id,
           case when jsonb_typeof(f.d->'p') = 'string' then staging.read_numeric(f.d->>'p', p_careful) end as price,
           case when jsonb_typeof(f.d->'q') = 'string' then staging.read_numeric(f.d->>'q', p_careful) end as size,
           case when jsonb_typeof(f.d->'m') = 'boolean' then (f.d->>'m')::boolean end as buyer_maker
    from staging.binance_frames(p_batch, p_from, p_to, 'trade', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.frame_id, s.batch_id, s.venue, s.stream, s.received_at, s.source, s.payload, s.event_at, s.trade_id,
           s.price, s.size, s.buyer_maker, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'trade' then 'expected event e=trade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.trade_id is null then 'trade id t is not an integer that fits 64 bits: ' || coalesce((s.d->'t')::text, '(none)')
        when coalesce(not (s.price > 0 and s.price < 'Infinity'), true)
          then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when coalesce(not (s.size > 0 and s.size < 'Infinity'), true)
          then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when s.event_at is null then 'trade time T is not an integer of milliseconds: ' || coalesce((s.d->'T')::text, '(none)')
        when s.buyer_maker is null then 'maker flag m is not a boolean: ' || coalesce((s.d->'m')::text, '(none)')
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select c.instrument_id, c.event_at, c.trade_id::text, c.trade_id, c.price, c.size,
           case when c.buyer_maker then 'sell' else 'buy' end,
           c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null
    on conflict do nothing
    returning instrument_id, traded_at
  ), inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_trades_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object(
    'trades', (select count(*) from ins),
    'trades_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$$;

create or replace function staging.normalize_binance_agg_trades_v1(p_batch uuid, p_from timestamptz, p_to timestamptz,
                                                                   p_careful boolean default true)
returns jsonb
language sql
as $$
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'a', p_careful) as agg_id,
           staging.read_bigint(f.d->'f', p_careful) as first_id,
           staging.read_bigint(f.d->'l', p_careful) as last_id,
           case when staging.is_decimal(f.d->>'p') then (f.d->>'p')::numeric end as price,
           case when staging.is_decimal(f.d->>'q') then (f.d->>'q')::numeric end as size
    from staging.binance_frames(p_batch, p_from, p_to, 'aggTrade', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.*, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'aggTrade' then 'expected event e=aggTrade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.agg_id is null or s.first_id is null or s.last_id is null then 'ids a, f, l are not integers that fit 64 bits'
        when coalesce(s.price = 0, true) then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when coalesce(s.size = 0, true) then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when s.event_at is null then 'trade time T is not an integer of milliseconds'
        when jsonb_typeof(s.d->'m') is distinct from 'boolean' then 'maker flag m is not a boolean'
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source, frame_id)
    select c.instrument_id, c.event_at, c.agg_id, c.first_id, c.last_id, c.price, c.size,
           case when (c.d->>'m')::boolean then 'sell' else 'buy' end, c.received_at, c.source, c.frame_id
    from checked c where c.problem is null
    on conflict do nothing
    returning 1
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_agg_trades_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'agg_trades', (select count(*) from ins),
    'agg_trades_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$$;

create or replace function staging.normalize_binance_quotes_v1(p_batch uuid, p_from timestamptz, p_to timestamptz,
                                                               p_careful boolean default true)
returns jsonb
language sql
as $$
  -- Spot bookTicker carries no event time, so quoted_at is the receive time and the update id u
  -- is the identity: a quote seen by two overlapping connections is kept once.
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'u', p_careful) as u,
           case when jsonb_typeof(f.d->'b') = 'string' then staging.read_numeric(f.d->>'b', p_careful) end as bid,
           case when jsonb_typeof(f.d->'a') = 'string' then staging.read_numeric(f.d->>'a', p_careful) end as ask,
           case when jsonb_typeof(f.d->'B') = 'string' then staging.read_numeric(f.d->>'B', p_careful) end as bid_size,
           case when jsonb_typeof(f.d->'A') = 'string' then staging.read_numeric(f.d->>'A', p_careful) end as ask_size
    from staging.binance_frames(p_batch, p_from, p_to, 'bookTicker', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.frame_id, s.batch_id, s.venue, s.stream, s.received_at, s.source, s.payload, s.u, s.bid, s.ask,
           s.bid_size, s.ask_size, i.instrument_id,
           coalesce(s.event_at, s.received_at) as quoted_at,
           case when s.event_at is null then 'received' else 'venue' end as time_source,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d ? 'e' and s.d->>'e' <> 'bookTicker' then 'expected a bookTicker, received e=' || (s.d->>'e')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.u is null then 'update id u is not an integer that fits 64 bits: ' || coalesce((s.d->'u')::text, '(none)')
        when coalesce(not (s.bid > 0 and s.bid < 'Infinity' and s.ask > 0 and s.ask < 'Infinity'), true)
          then 'bid b or ask a is not a positive decimal string'
        when coalesce(not (s.bid_size >= 0 and s.bid_size < 'Infinity' and s.ask_size >= 0 and s.ask_size < 'Infinity'), true)
          then 'bid size B or ask size A is not a decimal string'
        when s.d ? 'T' and s.event_at is null then 'transaction time T is not an integer of milliseconds'
        when s.event_at is not null then staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), stored as (
    -- Receive-time quotes an overlapping connection already stored (one probe of the key each).
    select s.instrument_id, s.seq
    from (select array_agg(instrument_id) as i, array_agg(u) as u, array_agg(quoted_at) as t
          from checked where problem is null and time_source = 'received') a
    cross join lateral staging.received_quotes_stored(a.i, a.u, a.t) s
    where a.i is not null
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select distinct on (n.instrument_id, n.u)
           n.instrument_id, n.quoted_at, n.u, n.bid, n.bid_size, n.ask, n.ask_size, n.time_source, n.received_at,
           n.source, n.frame_id
    from checked n
    where n.problem is null
      and not exists (select 1 from stored s where s.instrument_id = n.instrument_id and s.seq = n.u)
    order by n.instrument_id, n.u, n.frame_id
    on conflict do nothing
    returning 1
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_quotes_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'quotes', (select count(*) from ins),
    'quotes_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$$;

create or replace function staging.normalize_binance_other_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- Frames the venue file could not route (unknown event types): kept and quarantined.
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           case when not pg_input_is_valid(f.payload, 'jsonb') then 'payload is not valid JSON'
                else 'unknown event type: ' || left(f.payload, 80) end,
           'normalize_binance_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('trade', 'aggTrade', 'bookTicker', 'depth', 'depth_snapshot',
                           'klines', 'aggTrades', 'historicalTrades') -- REST pages: binance_040_rest_v1.sql
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$$;
