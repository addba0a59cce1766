-- requires: rollup
-- The portable bars engine (plain Postgres): market.bars_<tf>_data are tables rebuilt exactly for
-- the minutes the normalizer invalidated (market.bar_invalidations), 1m from trades and every
-- higher timeframe from the one below, with the same semantics as the TimescaleDB continuous
-- aggregates (migration 20261121001000_bars.sql). Bars are stored as market.bars_<tf> shows them
-- (trimmed scale, vwap computed; migration 20261121030000_bars_presented.sql), so reading a year
-- of them is a plain scan. One rebuild at a time (an advisory lock), so a
-- 5m bar is never computed from 1m bars another rebuild is still changing.

create or replace function market.rebuild_bars(p_instruments integer[], p_from timestamptz[], p_to timestamptz[])
returns void
language plpgsql
as $$
declare
  v_tf record;
  v_target text;
  v_source text;
  v_instruments integer[] := p_instruments;
  v_from timestamptz[] := p_from;
  v_to timestamptz[] := p_to;
begin
  for v_tf in select * from market.bar_timeframes() order by level loop
    -- The ranges of this timeframe: the previous ones widened to whole bars and merged.
    select coalesce(array_agg(r.instrument_id), '{}'), coalesce(array_agg(r.range_from), '{}'),
           coalesce(array_agg(r.range_to), '{}')
      into v_instruments, v_from, v_to
      from market.bar_ranges(v_instruments, v_from, v_to, v_tf.width) r;
    v_target := 'bars_' || v_tf.timeframe || '_data';
    -- Delete, then insert what the source holds: a bucket with nothing left loses its bar.
    execute format('delete from market.%I b using unnest($1, $2, $3) as r(instrument_id, range_from, range_to) '
                   'where b.instrument_id = r.instrument_id and b.bucket >= r.range_from and b.bucket < r.range_to',
                   v_target)
      using v_instruments, v_from, v_to;
    if v_tf.level = 1 then
      insert into market.bars_1m_data (instrument_id, bucket, open, high, low, close, volume, notional, trades, vwap)
      select t.instrument_id, market.bar_bucket(interval '1 minute', t.traded_at),
             trim_scale((array_agg(t.price order by market.trade_order_key(t.traded_at, t.seq, t.trade_id)))[1]),
             trim_scale(max(t.price)), trim_scale(min(t.price)),
             trim_scale((array_agg(t.price order by market.trade_order_key(t.traded_at, t.seq, t.trade_id) desc))[1]),
             trim_scale(sum(t.size)), sum(t.price * t.size), count(*), market.vwap(sum(t.price * t.size), sum(t.size))
      from unnest(v_instruments, v_from, v_to) as r(instrument_id, range_from, range_to)
      join market.trades t on t.instrument_id = r.instrument_id and t.traded_at >= r.range_from and t.traded_at < r.range_to
      group by 1, 2;
    else
      execute format('insert into market.%I (instrument_id, bucket, open, high, low, close, volume, notional, trades, vwap) '
                     'select s.instrument_id, market.bar_bucket($4, s.bucket), '
                     '(array_agg(s.open order by s.bucket))[1], max(s.high), min(s.low), '
                     '(array_agg(s.close order by s.bucket desc))[1], trim_scale(sum(s.volume)), sum(s.notional), '
                     'sum(s.trades), market.vwap(sum(s.notional), sum(s.volume)) '
                     'from unnest($1, $2, $3) as r(instrument_id, range_from, range_to) '
                     'join market.%I s on s.instrument_id = r.instrument_id and s.bucket >= r.range_from and s.bucket < r.range_to '
                     'group by 1, 2',
                     v_target, v_source)
        using v_instruments, v_from, v_to, v_tf.width;
    end if;
    v_source := v_target;
  end loop;
end
$$;
comment on function market.rebuild_bars(integer[], timestamptz[], timestamptz[]) is
  'Rollup engine: recomputes every timeframe''s bars over the given [from, to) ranges per instrument (1m from trades, then upward).';

create or replace function market.refresh_bars(p_limit integer)
returns integer
language plpgsql
as $$
declare
  v_instruments integer[];
  v_from timestamptz[];
  v_to timestamptz[];
begin
  if p_limit is null or p_limit < 1 then
    raise exception using errcode = '22023',
      message = format('market.refresh_bars: expected a positive p_limit, received %s', coalesce(p_limit::text, 'null'));
  end if;
  perform pg_advisory_xact_lock(hashtext('market.rebuild_bars'));
  -- Rows a normalizer is still writing are skipped; they are taken by the next call.
  with claimed as (
    delete from market.bar_invalidations i
    using (select c.instrument_id, c.bucket from market.bar_invalidations c
           order by c.bucket, c.instrument_id limit p_limit for update skip locked) c
    where i.instrument_id = c.instrument_id and i.bucket = c.bucket
    returning i.instrument_id, i.bucket
  )
  select array_agg(instrument_id), array_agg(bucket), array_agg(bucket + interval '1 minute')
    into v_instruments, v_from, v_to
    from claimed;
  if v_instruments is null then
    return 0;
  end if;
  perform market.rebuild_bars(v_instruments, v_from, v_to);
  return cardinality(v_instruments);
end
$$;
comment on function market.refresh_bars(integer) is
  'Takes up to p_limit invalidated minutes (oldest first) and makes their 1m..1d bars exact; returns how many minutes it took. '
  'Called by the bars_refresh job.';

create or replace function market.refresh_bars_window(p_instrument integer, p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz;
  v_to timestamptz;
  v_instruments integer[];
begin
  if p_from is null or p_to is null then
    raise exception using errcode = '22004', message = 'market.refresh_bars_window: expected p_from and p_to, received null';
  end if;
  if p_to <= p_from then
    return 0;
  end if;
  v_from := market.bar_bucket(interval '1 minute', p_from);
  v_to := market.bar_bucket(interval '1 minute', p_to - interval '1 microsecond') + interval '1 minute';
  perform pg_advisory_xact_lock(hashtext('market.rebuild_bars'));
  delete from market.bar_invalidations
  where (p_instrument is null or instrument_id = p_instrument) and bucket >= v_from and bucket < v_to;
  v_instruments := case when p_instrument is null then array(select instrument_id from market.instruments order by 1)
                        else array[p_instrument] end;
  perform market.rebuild_bars(v_instruments, array_fill(v_from, array[cardinality(v_instruments)]),
                              array_fill(v_to, array[cardinality(v_instruments)]));
  return (extract(epoch from v_to - v_from) / 60)::integer;
end
$$;
comment on function market.refresh_bars_window(integer, timestamptz, timestamptz) is
  'Makes the 1m..1d bars touching [p_from, p_to) exact for one instrument (null: all), e.g. after a backfill; '
  'returns the number of minutes covered.';

-- The TimescaleDB engine queues windows for refresh_continuous_aggregate(); here refresh_bars()
-- has already done the work, so the queue is always empty and the same job runs on both engines.
create or replace function market.pending_bar_refreshes()
returns table (window_id bigint, cagg regclass, window_start timestamptz, window_end timestamptz)
language sql
stable
as $$
  select null::bigint, null::regclass, null::timestamptz, null::timestamptz where false
$$;
comment on function market.pending_bar_refreshes() is
  'Continuous-aggregate windows waiting for refresh (TimescaleDB engine); always empty on the rollup engine.';

create or replace function market.finish_bar_refresh(p_window_id bigint)
returns void
language plpgsql
as $$
begin
  null;
end
$$;
comment on function market.finish_bar_refresh(bigint) is
  'Marks a queued window refreshed (TimescaleDB engine); nothing to do on the rollup engine.';

-- The public views read the stored columns as they are.
select market.define_bar_views('b.open, b.high, b.low, b.close, b.volume, b.vwap');
