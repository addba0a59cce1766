-- Binance symbols are concatenated (BTCUSDT); the canonical form splits off the quote asset.

create or replace function market.binance_symbol(p_venue_symbol text, out symbol text, out base text, out quote text)
language sql
immutable parallel safe
as $$
  select coalesce(b || '/' || q, p_venue_symbol), b, q
  from (select upper(p_venue_symbol) as s) x
  left join lateral (
    select left(x.s, length(x.s) - length(qa)) as b, qa as q
    from unnest(array['FDUSD', 'USDT', 'USDC', 'TUSD', 'BUSD', 'USDP', 'DAI', 'BTC', 'ETH', 'BNB', 'EUR', 'GBP',
                      'TRY', 'BRL', 'JPY', 'AUD', 'RUB', 'UAH', 'NGN', 'ZAR', 'PLN', 'RON', 'ARS', 'MXN', 'COP',
                      'XRP', 'TRX', 'DOGE', 'DOT', 'SOL']) qa
    where x.s like '%' || qa and length(x.s) > length(qa)
    order by length(qa) desc
    limit 1
  ) split on true
$$;
comment on function market.binance_symbol(text) is 'BTCUSDT -> BTC/USDT (longest known quote asset wins).';

create or replace function staging.binance_instruments(p_symbols text[])
returns table (instrument_id integer, venue_symbol text)
language sql
as $$
  -- Venue symbols seen for the first time become instruments (canonical form from the symbol),
  -- for live frames and REST pages alike. Two batches or backfill chunks may meet a new symbol at
  -- once: "do update" waits for the other's insert and returns its row, where "do nothing" would
  -- return nothing and the page would be refused.
  with existing as (
    select i.instrument_id, i.venue_symbol from market.instruments i
    where i.venue = 'binance' and i.venue_symbol = any (p_symbols)
  ), registered as (
    insert into market.instruments as i (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'binance', n.s, c.symbol, c.base, c.quote, 'crypto'
    from (select distinct unnest(p_symbols) as s) n
    cross join lateral market.binance_symbol(n.s) c
    where n.s ~ '^[A-Z0-9]{2,30}$' and not exists (select 1 from existing e where e.venue_symbol = n.s)
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning i.instrument_id, i.venue_symbol
  )
  select e.instrument_id, e.venue_symbol from existing e
  union all
  select r.instrument_id, r.venue_symbol from registered r
$$;
comment on function staging.binance_instruments(text[]) is 'Instrument ids of these Binance symbols, registering the ones seen for the first time.';
