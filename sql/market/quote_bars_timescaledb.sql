-- requires: timescaledb
-- The TimescaleDB engine for quote (mid-price) bars: market.quote_bars_<tf>_data are
-- hierarchical continuous aggregates (migration 20261121010600_quote_bars.sql). As for trade
-- bars (sql/market/bars_timescaledb.sql), invalidated minutes become windows queued in
-- market.bar_refresh_windows, and the bars_refresh job refreshes each with its own CALL.

create or replace function market.queue_quote_bar_refreshes(p_from timestamptz[], p_to timestamptz[])
returns integer
language sql
as $$
  with queued as (
    insert into market.bar_refresh_windows (level, cagg, window_start, window_end)
    select tf.level, ('market.quote_bars_' || tf.timeframe || '_data')::regclass, r.range_from, r.range_to
    from market.bar_timeframes() tf
    cross join lateral market.bar_ranges(array_fill(0, array[cardinality(p_from)]), p_from, p_to,
                                         tf.width, tf.width * 60) r
    on conflict (cagg, window_start, window_end) do nothing
    returning 1
  )
  select count(*)::integer from queued
$$;
comment on function market.queue_quote_bar_refreshes(timestamptz[], timestamptz[]) is
  'TimescaleDB engine: queues the quote-bar continuous-aggregate windows (every timeframe) that cover the given time ranges.';

create or replace function market.refresh_quote_bars(p_limit integer)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz[];
  v_to timestamptz[];
begin
  if p_limit is null or p_limit < 1 then
    raise exception using errcode = '22023',
      message = format('market.refresh_quote_bars: expected a positive p_limit, received %s', coalesce(p_limit::text, 'null'));
  end if;
  with claimed as (
    delete from market.quote_bar_invalidations i
    using (select c.instrument_id, c.bucket from market.quote_bar_invalidations c
           order by c.bucket, c.instrument_id limit p_limit for update skip locked) c
    where i.instrument_id = c.instrument_id and i.bucket = c.bucket
    returning i.bucket
  )
  select array_agg(bucket), array_agg(bucket + interval '1 minute') into v_from, v_to from claimed;
  if v_from is null then
    return 0;
  end if;
  perform market.queue_quote_bar_refreshes(v_from, v_to);
  return cardinality(v_from);
end
$$;
comment on function market.refresh_quote_bars(integer) is
  'Takes up to p_limit invalidated minutes of quote bars (oldest first) and queues the continuous-aggregate windows covering '
  'them (refreshed by the bars_refresh job); returns how many minutes it took.';

create or replace function market.refresh_quote_bars_window(p_instrument integer, p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz;
  v_to timestamptz;
begin
  if p_from is null or p_to is null then
    raise exception using errcode = '22004', message = 'market.refresh_quote_bars_window: expected p_from and p_to, received null';
  end if;
  if p_to <= p_from then
    return 0;
  end if;
  v_from := market.bar_bucket(interval '1 minute', p_from);
  v_to := market.bar_bucket(interval '1 minute', p_to - interval '1 microsecond') + interval '1 minute';
  -- A continuous-aggregate refresh covers every instrument, so p_instrument narrows nothing here.
  delete from market.quote_bar_invalidations where bucket >= v_from and bucket < v_to;
  perform market.queue_quote_bar_refreshes(array[v_from], array[v_to]);
  return (extract(epoch from v_to - v_from) / 60)::integer;
end
$$;
comment on function market.refresh_quote_bars_window(integer, timestamptz, timestamptz) is
  'Queues the refresh of the 1m..1d quote bars touching [p_from, p_to) (all instruments on this engine); returns the number '
  'of minutes covered. The bars_refresh job applies the queue.';
