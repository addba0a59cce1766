-- requires: timescaledb
-- The TimescaleDB bars engine: market.bars_<tf>_data are hierarchical continuous aggregates
-- (migration 20261121001000_bars.sql). refresh_continuous_aggregate() cannot run inside a
-- transaction or a function, so refreshing takes two steps:
--   1. market.refresh_bars() / market.refresh_bars_window() (functions, one transaction) turn
--      invalidated minutes into windows of whole buckets per timeframe, queued in
--      market.bar_refresh_windows;
--   2. the bars_refresh job reads market.pending_bar_refreshes() (lowest timeframe first), issues
--      `call refresh_continuous_aggregate(cagg, start, end)` for each window on its own, then
--      market.finish_bar_refresh(window_id).
-- Windows stay queued until refreshed, so a crash between the steps loses nothing; refreshing a
-- window twice is harmless. No refresh policies: the job refreshes exactly what was invalidated
-- (TimescaleDB's background workers are not relied on).

create or replace function market.queue_bar_refreshes(p_from timestamptz[], p_to timestamptz[])
returns integer
language sql
as $$
  -- A refresh covers every instrument, so ranges are merged across instruments; windows of one
  -- timeframe less than 60 of its buckets apart become one refresh, since TimescaleDB only
  -- recomputes the parts of a window its own invalidation log marks as changed.
  with queued as (
    insert into market.bar_refresh_windows (level, cagg, window_start, window_end)
    select tf.level, ('market.bars_' || tf.timeframe || '_data')::regclass, r.range_from, r.range_to
    from market.bar_timeframes() tf
    cross join lateral market.bar_ranges(array_fill(0, array[cardinality(p_from)]), p_from, p_to,
                                         tf.width, tf.width * 60) r
    on conflict (cagg, window_start, window_end) do nothing
    returning 1
  )
  select count(*)::integer from queued
$$;
comment on function market.queue_bar_refreshes(timestamptz[], timestamptz[]) is
  'TimescaleDB engine: queues the continuous-aggregate windows (every timeframe) that cover the given time ranges.';

create or replace function market.refresh_bars(p_limit integer)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz[];
  v_to timestamptz[];
begin
  if p_limit is null or p_limit < 1 then
    raise exception using errcode = '22023',
      message = format('market.refresh_bars: expected a positive p_limit, received %s', coalesce(p_limit::text, 'null'));
  end if;
  with claimed as (
    delete from market.bar_invalidations i
    using (select c.instrument_id, c.bucket from market.bar_invalidations c
           order by c.bucket, c.instrument_id limit p_limit for update skip locked) c
    where i.instrument_id = c.instrument_id and i.bucket = c.bucket
    returning i.bucket
  )
  select array_agg(bucket), array_agg(bucket + interval '1 minute') into v_from, v_to from claimed;
  if v_from is null then
    return 0;
  end if;
  perform market.queue_bar_refreshes(v_from, v_to);
  return cardinality(v_from);
end
$$;
comment on function market.refresh_bars(integer) is
  'Takes up to p_limit invalidated minutes (oldest first) and queues the continuous-aggregate windows covering them '
  '(refreshed by the bars_refresh job); returns how many minutes it took.';

create or replace function market.refresh_bars_window(p_instrument integer, p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz;
  v_to timestamptz;
begin
  if p_from is null or p_to is null then
    raise exception using errcode = '22004', message = 'market.refresh_bars_window: expected p_from and p_to, received null';
  end if;
  if p_to <= p_from then
    return 0;
  end if;
  v_from := market.bar_bucket(interval '1 minute', p_from);
  v_to := market.bar_bucket(interval '1 minute', p_to - interval '1 microsecond') + interval '1 minute';
  -- A continuous-aggregate refresh covers every instrument, so p_instrument narrows nothing
  -- here, and every invalidation inside the window is answered by it.
  delete from market.bar_invalidations where bucket >= v_from and bucket < v_to;
  perform market.queue_bar_refreshes(array[v_from], array[v_to]);
  return (extract(epoch from v_to - v_from) / 60)::integer;
end
$$;
comment on function market.refresh_bars_window(integer, timestamptz, timestamptz) is
  'Queues the refresh of the 1m..1d bars touching [p_from, p_to), e.g. after a backfill (all instruments on this engine); '
  'returns the number of minutes covered. The bars_refresh job applies the queue.';

create or replace function market.pending_bar_refreshes()
returns table (window_id bigint, cagg regclass, window_start timestamptz, window_end timestamptz)
language sql
stable
as $$
  select w.window_id, w.cagg, w.window_start, w.window_end
  from market.bar_refresh_windows w
  order by w.level, w.window_start, w.window_id
$$;
comment on function market.pending_bar_refreshes() is
  'Continuous-aggregate windows waiting for refresh_continuous_aggregate(), lowest timeframe first.';

create or replace function market.finish_bar_refresh(p_window_id bigint)
returns void
language sql
as $$
  delete from market.bar_refresh_windows where window_id = p_window_id
$$;
comment on function market.finish_bar_refresh(bigint) is
  'Removes a window from the refresh queue once refresh_continuous_aggregate() has run for it.';

-- The continuous aggregates keep the venue's scale and notional: the public views present them
-- as the rollup engine stores its bars.
select market.define_bar_views('trim_scale(b.open) as open, trim_scale(b.high) as high, trim_scale(b.low) as low, '
                               'trim_scale(b.close) as close, trim_scale(b.volume) as volume, '
                               'market.vwap(b.notional, b.volume) as vwap');
