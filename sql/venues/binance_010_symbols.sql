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

create or replace function market.register_binance_symbols(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns void
language sql
as $$
  insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
  select 'binance', x.s, c.symbol, c.base, c.quote, 'crypto'
  from (
    -- Plain string functions, not a regular expression: this runs over every frame of a batch.
    select distinct coalesce(nullif(split_part(split_part(f.payload, '"s":"', 2), '"', 1), ''),
                             substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as s
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to
  ) x
  cross join lateral market.binance_symbol(x.s) c
  where x.s ~ '^[A-Za-z0-9]{2,30}$'
    and not exists (select 1 from market.instruments i where i.venue = 'binance' and i.venue_symbol = x.s)
  on conflict (venue, venue_symbol) do nothing
$$;
