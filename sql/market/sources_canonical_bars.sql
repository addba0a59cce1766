-- Canonical bars: one bar per symbol and bucket, taken whole from one source. Every source
-- (venue) lands its own rows and bars with their lineage; market.instrument_sources ranks the
-- sources of a symbol. For each bucket the canonical bar is the bar of the best-ranked source
-- that covered the bucket completely; when none did (the primary was stale or disconnected and
-- the secondary was too, or the market was quiet), the bar of the source with the highest
-- coverage, ties to the better rank. A bar is never assembled from two sources.
--
-- A source's venue candles of the view's timeframe (REST history such as OANDA candles or Polygon
-- aggregates, and venue minute bars) are bars of that source too: a complete candle covers its
-- bucket, so backfilled history appears here with no rebuild. Their coverage is null (no slot
-- count), so a source's own complete quote bar is preferred to its candle; price_basis is the
-- candle's side (mid, else trade, value, bid, ask: Polygon's forex aggregates are bid prices) and
-- ticks its tick count (volume_kind tick_count) or trade count.
--
-- Coverage of a quote-priced bar (forex, CFDs) = 10-second slots with at least one tradeable
-- quote / 10-second slots in the bucket (6 per minute, 8640 per day): a source that went silent
-- for more than 10 s inside a bucket did not cover it. Trade-priced bars carry no slot count:
-- their coverage is null, they count as complete, and they are ranked by priority alone.

create or replace view market.instrument_source_ranks as
select i.instrument_id, i.venue, i.symbol, i.asset_class, s.priority,
       i.asset_class in ('forex', 'cfd') as quote_priced
from market.instruments i
join market.instrument_sources s
  on s.asset_class = i.asset_class and s.venue = i.venue
 and s.symbol = case when exists (select 1 from market.instrument_sources o
                                  where o.asset_class = i.asset_class and o.symbol = i.symbol)
                     then i.symbol else '*' end;
comment on view market.instrument_source_ranks is
  'Each instrument (one venue''s listing of a symbol) with its source priority for the symbol (1 is preferred); '
  'rows naming the symbol in market.instrument_sources replace the asset class''s ''*'' rows.';

create or replace view market.canonical_bars_1m as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '1 minute'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '1 minute') as complete, 0 as from_candle
  from market.quote_bars_1m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_1m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '1m'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_1m is
  'One 1 minute bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace view market.canonical_bars_5m as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '5 minutes'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '5 minutes') as complete, 0 as from_candle
  from market.quote_bars_5m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_5m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '5m'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_5m is
  'One 5 minutes bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace view market.canonical_bars_15m as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '15 minutes'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '15 minutes') as complete, 0 as from_candle
  from market.quote_bars_15m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_15m_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '15m'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_15m is
  'One 15 minutes bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace view market.canonical_bars_1h as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '1 hour'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '1 hour') as complete, 0 as from_candle
  from market.quote_bars_1h_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_1h_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '1h'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_1h is
  'One 1 hour bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace view market.canonical_bars_4h as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '4 hours'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '4 hours') as complete, 0 as from_candle
  from market.quote_bars_4h_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_4h_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '4h'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_4h is
  'One 4 hours bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace view market.canonical_bars_1d as
select distinct on (c.symbol, c.bucket)
       c.symbol, c.bucket, c.venue as source, c.instrument_id, c.priority, c.price_basis,
       trim_scale(c.open) as open, trim_scale(c.high) as high, trim_scale(c.low) as low, trim_scale(c.close) as close,
       trim_scale(c.volume) as volume, c.ticks, c.coverage, c.complete
from (
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'mid' as price_basis,
         b.open, b.high, b.low, b.close, b.ticks::numeric as volume, b.ticks::bigint as ticks,
         round(b.slots::numeric / market.coverage_slots(interval '1 day'), 4) as coverage,
         b.slots >= market.coverage_slots(interval '1 day') as complete, 0 as from_candle
  from market.quote_bars_1d_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and r.quote_priced
  union all
  select r.symbol, r.venue, r.priority, b.instrument_id, b.bucket, 'trade',
         b.open, b.high, b.low, b.close, b.volume, b.trades::bigint, null::numeric, true, 0
  from market.bars_1d_data b
  join market.instrument_source_ranks r on r.instrument_id = b.instrument_id and not r.quote_priced
  union all
  select k.*, 1 from (
    select distinct on (r.symbol, k.instrument_id, k.bucket)
           r.symbol, r.venue, r.priority, k.instrument_id, k.bucket, k.price_side,
           k.open, k.high, k.low, k.close, k.volume,
           case when k.volume_kind = 'tick_count' then k.volume::bigint else k.trade_count end, null::numeric, k.complete
    from market.candles k
    join market.instrument_source_ranks r on r.instrument_id = k.instrument_id
    where k.timeframe = '1d'
    order by r.symbol, k.instrument_id, k.bucket, array_position(array['mid', 'trade', 'value', 'bid', 'ask'], k.price_side)
  ) k
) c
order by c.symbol, c.bucket, c.complete desc, case when c.complete then c.priority end, c.coverage desc nulls last, c.priority,
         c.from_candle;
comment on view market.canonical_bars_1d is
  'One 1 day bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, '
  'else the one with the highest coverage; source, priority and coverage are on the row.';

create or replace function market.canonical_bars(p_symbol text, p_timeframe text, p_from timestamptz, p_to timestamptz)
returns table (symbol text, bucket timestamptz, source text, instrument_id integer, priority integer, price_basis text,
               open numeric, high numeric, low numeric, close numeric, volume numeric, ticks bigint, coverage numeric,
               complete boolean)
language plpgsql
stable
as $$
begin
  if p_symbol is null or p_from is null or p_to is null then
    raise exception using
      errcode = '22004',
      message = 'market.canonical_bars: expected a symbol, p_from and p_to, received null',
      hint = 'Example: select * from market.canonical_bars(''EUR/USD'', ''1m'', now() - interval ''1 hour'', now());';
  end if;
  -- One static query per timeframe (no SQL built from text).
  case p_timeframe
    when '1m' then
      return query select b.* from market.canonical_bars_1m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '5m' then
      return query select b.* from market.canonical_bars_5m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '15m' then
      return query select b.* from market.canonical_bars_15m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '1h' then
      return query select b.* from market.canonical_bars_1h b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '4h' then
      return query select b.* from market.canonical_bars_4h b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '1d' then
      return query select b.* from market.canonical_bars_1d b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    else
      raise exception using
        errcode = '22023',
        message = format('market.canonical_bars: unknown timeframe %s', coalesce(quote_literal(p_timeframe), 'null')),
        detail = 'Expected one of 1m, 5m, 15m, 1h, 4h, 1d.';
  end case;
end
$$;
comment on function market.canonical_bars(text, text, timestamptz, timestamptz) is
  'Canonical bars of a symbol (e.g. EUR/USD) for timeframe 1m, 5m, 15m, 1h, 4h or 1d with bucket in [p_from, p_to): '
  'per bucket the bar of one source (the best-ranked complete one, else the best-covered), with source and coverage.';
