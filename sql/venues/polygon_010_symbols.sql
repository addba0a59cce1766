-- Polygon tickers. One instrument per Polygon ticker in its REST form (the venue symbol):
-- C:EURUSD (forex), X:BTCUSD (crypto), I:SPX (index), AAPL (stock). WebSocket events name the
-- same instruments differently, and the mapping is explicit:
--   forex   C / CA  "p" / "pair" EUR/USD   -> C:EURUSD
--   crypto  XT/XQ/XA "pair" BTC-USD        -> X:BTCUSD
--   indices V "T", AM "sym" I:SPX          -> I:SPX
--   stocks  T / Q / AM "sym" AAPL          -> AAPL
-- Canonical symbols: EUR/USD, BTC/USD, the index names below (SPX500 ...), AAPL.

create or replace function market.polygon_index_names()
returns table (symbol text, ticker text)
language sql
immutable parallel safe
as $$
  -- The same table as POLYGON_INDEX_TICKERS in ingesters/polygon.ts (a test keeps them equal).
  values ('US30', 'I:DJI'), ('NAS100', 'I:NDX'), ('SPX500', 'I:SPX')
$$;
comment on function market.polygon_index_names() is 'Canonical index names and their Polygon tickers (SPX500 = I:SPX).';

create or replace function market.polygon_ws_ticker(p_cluster text, p_ev text, p_name text)
returns text
language sql
immutable parallel safe
as $$
  -- The REST ticker of the instrument a WebSocket event names; null when the name has the wrong form.
  select case
    when p_cluster = 'forex' and p_name ~ '^[A-Z]{3}/[A-Z]{3}$' then 'C:' || replace(p_name, '/', '')
    when p_cluster = 'crypto' and p_name ~ '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$' then 'X:' || replace(p_name, '-', '')
    when p_cluster = 'indices' and p_name ~ '^I:[A-Z0-9.]{1,20}$' then p_name
    when p_cluster = 'stocks' and p_name ~ '^[A-Z][A-Z0-9.]{0,11}$' then p_name
  end
$$;
comment on function market.polygon_ws_ticker(text, text, text) is
  'forex EUR/USD -> C:EURUSD, crypto BTC-USD -> X:BTCUSD, indices I:SPX, stocks AAPL (WebSocket name to REST ticker).';

create or replace function market.polygon_symbol(p_ticker text, p_pair text default null, out symbol text, out base text,
                                                 out quote text, out asset_class text)
language sql
immutable parallel safe
as $$
  -- p_pair, when the WebSocket event gave it (BTC-USD), says where a crypto ticker splits.
  select case
           when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 3, 3) || '/' || substr(p_ticker, 6, 3)
           when p_ticker ~ '^X:' then coalesce(replace(p_pair, '-', '/'), x.b || '/' || x.q, substr(p_ticker, 3))
           when p_ticker ~ '^I:' then coalesce((select n.symbol from market.polygon_index_names() n where n.ticker = p_ticker),
                                               substr(p_ticker, 3))
           else p_ticker
         end,
         case when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 3, 3)
              when p_ticker ~ '^X:' then coalesce(split_part(p_pair, '-', 1), x.b) end,
         case when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 6, 3)
              when p_ticker ~ '^X:' then coalesce(nullif(split_part(p_pair, '-', 2), ''), x.q) end,
         case when p_ticker ~ '^C:' then 'forex' when p_ticker ~ '^X:' then 'crypto' when p_ticker ~ '^I:' then 'index'
              else 'equity' end
  from (select null::text as b, null::text as q) d
  left join lateral (
    -- A REST crypto ticker (X:BTCUSD) has no separator: the longest known quote currency wins.
    select left(substr(p_ticker, 3), length(substr(p_ticker, 3)) - length(qa)) as b, qa as q
    from unnest(array['USDT', 'USDC', 'USD', 'EUR', 'GBP', 'JPY', 'AUD', 'CAD', 'BTC', 'ETH']) qa
    where p_ticker ~ '^X:' and substr(p_ticker, 3) like '%' || qa and length(substr(p_ticker, 3)) > length(qa)
    order by length(qa) desc
    limit 1
  ) x on true
$$;
comment on function market.polygon_symbol(text, text) is
  'C:EURUSD -> EUR/USD forex, X:BTCUSD -> BTC/USD crypto, I:SPX -> SPX500 index, AAPL -> AAPL equity.';
