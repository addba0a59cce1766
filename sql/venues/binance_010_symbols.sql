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
