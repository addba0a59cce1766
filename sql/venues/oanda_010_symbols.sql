-- OANDA instruments and times. Instruments are <BASE>_<QUOTE> (EUR_USD, XAU_USD, SPX500_USD);
-- the canonical symbol puts a slash between them. Two ISO 4217 codes (metals included, as
-- Dukascopy does) are a currency pair (forex); anything else is a CFD.

create or replace function market.oanda_symbol(p_venue_symbol text, out symbol text, out base text, out quote text,
                                               out asset_class text)
language sql
immutable parallel safe
as $$
  select b || '/' || q, b, q,
         case when b = any (c.codes) and q = any (c.codes) then 'forex' else 'cfd' end
  from (select split_part(p_venue_symbol, '_', 1) as b, split_part(p_venue_symbol, '_', 2) as q) x,
       (select array['AUD', 'CAD', 'CHF', 'CNH', 'CZK', 'DKK', 'EUR', 'GBP', 'HKD', 'HUF', 'JPY', 'MXN', 'NOK', 'NZD',
                     'PLN', 'SEK', 'SGD', 'THB', 'TRY', 'USD', 'ZAR', 'XAU', 'XAG', 'XPT', 'XPD'] as codes) c
  where p_venue_symbol ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$'
$$;
comment on function market.oanda_symbol(text) is
  'EUR_USD -> EUR/USD forex, SPX500_USD -> SPX500/USD cfd; null for anything that is not <A>_<B>.';

create or replace function staging.oanda_time(p_text text)
returns timestamptz
language sql
stable parallel safe
as $$
  -- OANDA times have nanoseconds: RFC 3339 "2017-09-21T01:54:35.452443932Z", or with
  -- Accept-Datetime-Format: UNIX "1509126185.000000000". timestamptz keeps microseconds, so the
  -- digits after the sixth are cut, never rounded (rounding could move a price into the next
  -- second, or the next bar).
  -- Plain string tests rather than a regular expression: this runs once per price line.
  select case
    when length(p_text) between 20 and 30 and right(p_text, 1) = 'Z'
         and substr(p_text, 5, 1) = '-' and substr(p_text, 8, 1) = '-' and substr(p_text, 11, 1) = 'T'
         and substr(p_text, 14, 1) = ':' and substr(p_text, 17, 1) = ':'
         and translate(left(p_text, 19), '0123456789', '') = '--T::'
         and (length(p_text) = 20 or (length(p_text) > 21 and substr(p_text, 20, 1) = '.'
                                      and translate(substr(p_text, 21, length(p_text) - 21), '0123456789', '') = ''))
         and pg_input_is_valid(left(p_text, least(length(p_text) - 1, 26)) || '+00', 'timestamptz')
      then (left(p_text, least(length(p_text) - 1, 26)) || '+00')::timestamptz
    when p_text ~ '^[0-9]{1,11}(\.[0-9]{1,9})?$'
      then timestamptz '1970-01-01 00:00:00+00' + split_part(p_text, '.', 1)::bigint * interval '1 second'
           + rpad(left(split_part(p_text, '.', 2), 6), 6, '0')::bigint * interval '1 microsecond'
  end
$$;
comment on function staging.oanda_time(text) is
  'An OANDA time (RFC 3339 or UNIX seconds, up to nanoseconds) as timestamptz, truncated to microseconds; null if malformed.';

create or replace function staging.oanda_granularity(p_text text)
returns text
language sql
immutable parallel safe
as $$
  -- OANDA candlestick granularities as tickflow timeframes (S5 -> 5s, M1 -> 1m, H4 -> 4h, D, W, M).
  select case
    when p_text ~ '^S(5|10|15|30)$' then substr(p_text, 2) || 's'
    when p_text ~ '^M(1|2|4|5|10|15|30)$' then substr(p_text, 2) || 'm'
    when p_text ~ '^H(1|2|3|4|6|8|12)$' then substr(p_text, 2) || 'h'
    when p_text = 'D' then '1d'
    when p_text = 'W' then '1w'
    when p_text = 'M' then '1mo'
  end
$$;
comment on function staging.oanda_granularity(text) is 'OANDA granularity (S5 .. M) as a candle timeframe (5s .. 1mo); null if unknown.';

create or replace function staging.timeframe_interval(p_timeframe text)
returns interval
language sql
immutable parallel safe
as $$
  -- The length of a candle timeframe: <n>s, <n>m, <n>h, <n>d, <n>w or <n>mo.
  select case substring(p_timeframe from '[a-z]+$')
    when 's' then interval '1 second' when 'm' then interval '1 minute' when 'h' then interval '1 hour'
    when 'd' then interval '1 day' when 'w' then interval '7 days' when 'mo' then interval '1 month'
  end * substring(p_timeframe from '^[0-9]+')::integer
$$;
comment on function staging.timeframe_interval(text) is 'The length of a candle timeframe (1m -> 1 minute, 3mo -> 3 months).';
