-- OHLCV bars, the same on both engines: helpers, the public views market.bars_<timeframe>, and
-- market.bars(), the one entry point for analysts. The private stores market.bars_<tf>_data are
-- continuous aggregates (TimescaleDB) or rollup tables (sql/market/bars_rollup.sql); both keep
-- notional = sum(price * size) so vwap below is computed identically. trim_scale() makes equal
-- numbers print equally whatever scale the venue sent (max() of 1.5 and 1.50 is either one).

create or replace function market.bar_timeframes()
returns table (level integer, timeframe text, width interval)
language sql
immutable parallel safe
as $$
  values (1, '1m', interval '1 minute'), (2, '5m', interval '5 minutes'), (3, '15m', interval '15 minutes'),
         (4, '1h', interval '1 hour'), (5, '4h', interval '4 hours'), (6, '1d', interval '1 day')
$$;
comment on function market.bar_timeframes() is
  'The bar timeframes, each built from the one before it (1m from trades).';

create or replace function market.bar_bucket(p_width interval, p_at timestamptz)
returns timestamptz
language sql
immutable parallel safe
as $$
  select date_bin(p_width, p_at, timestamptz '2000-01-03 00:00:00+00')
$$;
comment on function market.bar_bucket(interval, timestamptz) is
  'Start of the bar of width p_width holding p_at; aligned like TimescaleDB time_bucket() (origin Monday 2000-01-03 UTC).';

create or replace function market.bar_ranges(p_instruments integer[], p_from timestamptz[], p_to timestamptz[],
                                             p_width interval, p_merge_gap interval default interval '0')
returns table (instrument_id integer, range_from timestamptz, range_to timestamptz)
language sql
immutable parallel safe
as $$
  -- Each [from, to) widened to whole buckets of p_width, then overlapping ranges of an
  -- instrument merged (and ranges less than p_merge_gap apart), so no bucket is in two ranges.
  with aligned as (
    select r.instrument_id, market.bar_bucket(p_width, r.f) as f,
           market.bar_bucket(p_width, r.t - interval '1 microsecond') + p_width as t
    from unnest(p_instruments, p_from, p_to) as r(instrument_id, f, t)
    where r.t > r.f
  ), starts as (
    select a.*, coalesce(a.f > max(a.t) over (partition by a.instrument_id order by a.f, a.t
                                               rows between unbounded preceding and 1 preceding) + p_merge_gap,
                         true) as starts_range
    from aligned a
  ), grouped as (
    select s.*, count(*) filter (where s.starts_range) over (partition by s.instrument_id order by s.f, s.t) as grp
    from starts s
  )
  select g.instrument_id, min(g.f), max(g.t)
  from grouped g
  group by g.instrument_id, g.grp
  order by 1, 2
$$;
comment on function market.bar_ranges(integer[], timestamptz[], timestamptz[], interval, interval) is
  'Ranges [from, to) per instrument widened to whole bars of p_width and merged; the bars a rebuild must touch.';

create or replace function market.vwap(p_notional numeric, p_volume numeric)
returns numeric
language sql
immutable parallel safe
as $$
  -- Exact to 18 decimals, the rest cut off (not rounded): the same number ClickHouse's bars hold,
  -- whatever scale numeric division would pick for these operands.
  select trim_scale(div(p_notional * 1000000000000000000, nullif(p_volume, 0)) * 0.000000000000000001)
$$;
comment on function market.vwap(numeric, numeric) is 'Volume-weighted average price: notional / volume truncated to 18 decimals.';

-- The views market.bars_<tf>: one definition for every timeframe, made by the engine's file with
-- the columns its stores hold (sql/market/bars_rollup.sql: stored as shown; bars_timescaledb.sql:
-- raw sums presented at read time, to the same values). The join is a left join on the
-- instruments' key (every bar has its instrument), so Postgres leaves it out of queries that read
-- neither venue nor symbol: a year of one instrument's 1m bars is then an index range scan.
create or replace function market.define_bar_views(p_columns text)
returns void
language plpgsql
as $$
declare
  v_tf record;
  v_label text;
  v_previous text;
begin
  for v_tf in select * from market.bar_timeframes() order by level loop
    execute format('create or replace view market.%I as '
                   'select i.venue, i.symbol, b.instrument_id, b.bucket, %s, b.trades::bigint as trades '
                   'from market.%I b left join market.instruments i using (instrument_id)',
                   'bars_' || v_tf.timeframe, p_columns, 'bars_' || v_tf.timeframe || '_data');
    v_label := replace(replace(replace(v_tf.timeframe, 'm', '-minute'), 'h', '-hour'), 'd', '-day');
    execute format('comment on view market.%I is %L', 'bars_' || v_tf.timeframe,
                   format('%s OHLCV bars (%s): open/close = first/last trade by (traded_at, seq, trade_id), '
                          'volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.', v_label,
                          case v_tf.timeframe when '1m' then 'from trades'
                                              when '4h' then 'built from ' || v_previous || ' bars, aligned to 00:00 UTC'
                                              when '1d' then 'built from ' || v_previous || ' bars, UTC days'
                                              else 'built from ' || v_previous || ' bars' end));
    v_previous := v_label;
  end loop;
end
$$;
comment on function market.define_bar_views(text) is
  'Creates market.bars_1m .. market.bars_1d over the bars engine''s stores, with p_columns for open .. vwap (called by the engine''s sql/ file).';

create or replace function market.bars(p_symbol text, p_timeframe text, p_from timestamptz, p_to timestamptz,
                                       p_venue text default null)
returns table (venue text, symbol text, instrument_id integer, bucket timestamptz, open numeric, high numeric,
               low numeric, close numeric, volume numeric, vwap numeric, trades bigint)
language plpgsql
stable
as $$
begin
  if p_symbol is null or p_from is null or p_to is null then
    raise exception using
      errcode = '22004',
      message = 'market.bars: expected a symbol, p_from and p_to, received null',
      hint = 'Example: select * from market.bars(''BTC/USDT'', ''1h'', now() - interval ''1 day'', now());';
  end if;
  -- One static query per timeframe (no SQL built from text); the view's filter uses its index.
  case p_timeframe
    when '1m' then
      return query select b.* from market.bars_1m b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    when '5m' then
      return query select b.* from market.bars_5m b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    when '15m' then
      return query select b.* from market.bars_15m b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    when '1h' then
      return query select b.* from market.bars_1h b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    when '4h' then
      return query select b.* from market.bars_4h b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    when '1d' then
      return query select b.* from market.bars_1d b
        where b.symbol = p_symbol and (p_venue is null or b.venue = p_venue) and b.bucket >= p_from and b.bucket < p_to
        order by b.venue, b.bucket;
    else
      raise exception using
        errcode = '22023',
        message = format('market.bars: unknown timeframe %s', coalesce(quote_literal(p_timeframe), 'null')),
        detail = 'Expected one of 1m, 5m, 15m, 1h, 4h, 1d.',
        hint = 'Timeframes are case-sensitive: 1h, not 1H or 60m.';
  end case;
end
$$;
comment on function market.bars(text, text, timestamptz, timestamptz, text) is
  'OHLCV bars of a symbol (e.g. BTC/USDT) for timeframe 1m, 5m, 15m, 1h, 4h or 1d with bucket in [p_from, p_to), '
  'optionally of one venue; ordered by venue, bucket. An unknown timeframe raises SQLSTATE 22023.';
