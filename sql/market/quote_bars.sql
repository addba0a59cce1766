-- Bars of quote-priced instruments (forex, CFDs), the same on both engines: views
-- market.quote_bars_<timeframe> over the private stores market.quote_bars_<tf>_data (continuous
-- aggregates or rollup tables, migration 20261121010600_quote_bars.sql). Prices are the mid
-- (bid + ask) / 2 of tradeable two-sided quotes (non-tradeable prices around the weekly close are
-- kept in market.quotes, flagged, and make no bar); volume is the tick count; coverage is the
-- share of the bar's 10-second slots that had a quote.

create or replace function market.coverage_slots(p_width interval)
returns integer
language sql
immutable parallel safe
as $$
  select (extract(epoch from p_width) / 10)::integer
$$;
comment on function market.coverage_slots(interval) is
  'Number of 10-second coverage slots in a bar of width p_width (6 in a minute, 8640 in a day).';

create or replace view market.quote_bars_1m as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '1 minute'), 4) as coverage
from market.quote_bars_1m_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_1m is
  '1-minute mid-price bars of quote-priced instruments (built from quotes): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';

create or replace view market.quote_bars_5m as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '5 minutes'), 4) as coverage
from market.quote_bars_5m_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_5m is
  '5-minute mid-price bars of quote-priced instruments (built from 1-minute bars): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';

create or replace view market.quote_bars_15m as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '15 minutes'), 4) as coverage
from market.quote_bars_15m_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_15m is
  '15-minute mid-price bars of quote-priced instruments (built from 5-minute bars): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';

create or replace view market.quote_bars_1h as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '1 hour'), 4) as coverage
from market.quote_bars_1h_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_1h is
  '1-hour mid-price bars of quote-priced instruments (built from 15-minute bars): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';

create or replace view market.quote_bars_4h as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '4 hours'), 4) as coverage
from market.quote_bars_4h_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_4h is
  '4-hour mid-price bars of quote-priced instruments (built from 1-hour bars, aligned to 00:00 UTC): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';

create or replace view market.quote_bars_1d as
select i.venue, i.symbol, b.instrument_id, b.bucket, trim_scale(b.open) as open, trim_scale(b.high) as high,
       trim_scale(b.low) as low, trim_scale(b.close) as close, b.ticks::bigint as volume, b.ticks::bigint as ticks,
       b.slots::bigint as slots,
       round(b.slots::numeric / market.coverage_slots(interval '1 day'), 4) as coverage
from market.quote_bars_1d_data b
join market.instruments i using (instrument_id);
comment on view market.quote_bars_1d is
  '1-day mid-price bars of quote-priced instruments (UTC days, built from 4-hour bars): volume = ticks = number of tradeable quotes, '
  'coverage = share of 10-second slots with a quote.';
