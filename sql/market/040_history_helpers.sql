-- Id-sequenced history (a venue's trade ids, aggregate trade ids) is fetched by id: these say
-- which ids of a range are not stored yet, so a recovery or a backfill asks only for those.

create or replace function market.missing_id_pages(p_stream text, p_instrument integer, p_from bigint, p_to bigint,
                                                   p_page integer)
returns table (from_id bigint, to_id bigint)
language sql
stable
as $$
  -- p_stream: 'trade' (market.trades.seq) or 'aggTrade' (market.agg_trades.agg_id). Pages of at
  -- most p_page ids (first, last) covering every id of [p_from, p_to] that is missing.
  with have as (
    select t.seq as id from market.trades t
    where p_stream = 'trade' and t.instrument_id = p_instrument and t.seq between p_from and p_to
    union
    select a.agg_id from market.agg_trades a
    where p_stream = 'aggTrade' and a.instrument_id = p_instrument and a.agg_id between p_from and p_to
  ), bounds as (
    select p_from - 1 as id union all select id from have union all select p_to + 1
  ), holes as (
    select b.id + 1 as hole_from, lead(b.id) over (order by b.id) - 1 as hole_to from bounds b
  )
  select s, least(s + p_page - 1, h.hole_to)
  from holes h
  cross join lateral generate_series(h.hole_from, h.hole_to, p_page::bigint) s
  where h.hole_to >= h.hole_from and p_to >= p_from
  order by 1
$$;
comment on function market.missing_id_pages(text, integer, bigint, bigint, integer) is
  'Pages (first id, last id) of at most p_page ids covering every id of [p_from, p_to] not stored for the instrument '
  '(p_stream trade: market.trades.seq; aggTrade: market.agg_trades.agg_id).';

create or replace function market.missing_id_count(p_stream text, p_instrument integer, p_from bigint, p_to bigint)
returns bigint
language sql
stable
as $$
  select greatest(p_to - p_from + 1, 0) - (
    select count(*) from (
      select t.seq from market.trades t
      where p_stream = 'trade' and t.instrument_id = p_instrument and t.seq between p_from and p_to
      union
      select a.agg_id from market.agg_trades a
      where p_stream = 'aggTrade' and a.instrument_id = p_instrument and a.agg_id between p_from and p_to) x)
$$;
comment on function market.missing_id_count(text, integer, bigint, bigint) is 'How many ids of [p_from, p_to] are not stored for the instrument.';

create or replace function market.timeframe_width(p_timeframe text)
returns interval
language sql
immutable parallel safe
as $$
  -- Fixed-width timeframes only (<n>s, <n>m, <n>h, <n>d, <n>w); calendar months give null.
  select (m[1])::integer * case m[2] when 's' then interval '1 second' when 'm' then interval '1 minute'
                                     when 'h' then interval '1 hour' when 'd' then interval '1 day'
                                     when 'w' then interval '7 days' end
  from regexp_match(p_timeframe, '^([1-9][0-9]{0,5})(s|m|h|d|w)$') m
$$;
comment on function market.timeframe_width(text) is 'Bucket width of a fixed-width timeframe (1m -> 1 minute); null for calendar ones (1mo).';
