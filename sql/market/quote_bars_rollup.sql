-- requires: rollup
-- The portable engine for quote (mid-price) bars: market.quote_bars_<tf>_data are tables rebuilt
-- exactly for the minutes the quote normalizers invalidated (market.quote_bar_invalidations),
-- 1m from the quotes (market.quotes_between: rows and tick blocks) and every higher timeframe from the one below, with the semantics of the
-- continuous aggregates in migration 20261121010600_quote_bars.sql. One rebuild at a time.

create or replace function market.rebuild_quote_bars(p_instruments integer[], p_from timestamptz[], p_to timestamptz[])
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
    select coalesce(array_agg(r.instrument_id), '{}'), coalesce(array_agg(r.range_from), '{}'),
           coalesce(array_agg(r.range_to), '{}')
      into v_instruments, v_from, v_to
      from market.bar_ranges(v_instruments, v_from, v_to, v_tf.width) r;
    v_target := 'quote_bars_' || v_tf.timeframe || '_data';
    -- Delete, then insert what the source holds: a bucket with nothing left loses its bar.
    execute format('delete from market.%I b using unnest($1, $2, $3) as r(instrument_id, range_from, range_to) '
                   'where b.instrument_id = r.instrument_id and b.bucket >= r.range_from and b.bucket < r.range_to',
                   v_target)
      using v_instruments, v_from, v_to;
    if v_tf.level = 1 then
      insert into market.quote_bars_1m_data (instrument_id, bucket, open, high, low, close, ticks, slots)
      select q.instrument_id, market.bar_bucket(interval '1 minute', q.quoted_at),
             (array_agg((q.bid + q.ask) / 2 order by market.quote_order_key(q.quoted_at, q.seq)))[1],
             max((q.bid + q.ask) / 2), min((q.bid + q.ask) / 2),
             (array_agg((q.bid + q.ask) / 2 order by market.quote_order_key(q.quoted_at, q.seq) desc))[1],
             count(*), count(distinct market.bar_bucket(interval '10 seconds', q.quoted_at))
      from unnest(v_instruments, v_from, v_to) as r(instrument_id, range_from, range_to)
      join market.instruments i on i.instrument_id = r.instrument_id and i.asset_class in ('forex', 'cfd')
      cross join lateral market.quotes_between(r.range_from, r.range_to) q
      where q.instrument_id = r.instrument_id and q.tradeable and q.bid is not null and q.ask is not null
      group by 1, 2;
    else
      execute format('insert into market.%I (instrument_id, bucket, open, high, low, close, ticks, slots) '
                     'select s.instrument_id, market.bar_bucket($4, s.bucket), '
                     '(array_agg(s.open order by s.bucket))[1], max(s.high), min(s.low), '
                     '(array_agg(s.close order by s.bucket desc))[1], sum(s.ticks), sum(s.slots) '
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
comment on function market.rebuild_quote_bars(integer[], timestamptz[], timestamptz[]) is
  'Rollup engine: recomputes every timeframe''s quote bars over the given [from, to) ranges per instrument (1m from quotes, then upward).';

create or replace function market.refresh_quote_bars(p_limit integer)
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
      message = format('market.refresh_quote_bars: expected a positive p_limit, received %s', coalesce(p_limit::text, 'null'));
  end if;
  perform pg_advisory_xact_lock(hashtext('market.rebuild_quote_bars'));
  with claimed as (
    delete from market.quote_bar_invalidations i
    using (select c.instrument_id, c.bucket from market.quote_bar_invalidations c
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
  perform market.rebuild_quote_bars(v_instruments, v_from, v_to);
  return cardinality(v_instruments);
end
$$;
comment on function market.refresh_quote_bars(integer) is
  'Takes up to p_limit invalidated minutes of quote bars (oldest first) and makes their 1m..1d bars exact; returns how many '
  'minutes it took. Called by the bars_refresh job.';

create or replace function market.refresh_quote_bars_window(p_instrument integer, p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
as $$
declare
  v_from timestamptz;
  v_to timestamptz;
  v_instruments integer[];
begin
  if p_from is null or p_to is null then
    raise exception using errcode = '22004', message = 'market.refresh_quote_bars_window: expected p_from and p_to, received null';
  end if;
  if p_to <= p_from then
    return 0;
  end if;
  v_from := market.bar_bucket(interval '1 minute', p_from);
  v_to := market.bar_bucket(interval '1 minute', p_to - interval '1 microsecond') + interval '1 minute';
  perform pg_advisory_xact_lock(hashtext('market.rebuild_quote_bars'));
  delete from market.quote_bar_invalidations
  where (p_instrument is null or instrument_id = p_instrument) and bucket >= v_from and bucket < v_to;
  v_instruments := case when p_instrument is null
                        then array(select instrument_id from market.instruments where asset_class in ('forex', 'cfd') order by 1)
                        else array[p_instrument] end;
  perform market.rebuild_quote_bars(v_instruments, array_fill(v_from, array[cardinality(v_instruments)]),
                                    array_fill(v_to, array[cardinality(v_instruments)]));
  return (extract(epoch from v_to - v_from) / 60)::integer;
end
$$;
comment on function market.refresh_quote_bars_window(integer, timestamptz, timestamptz) is
  'Makes the 1m..1d quote bars touching [p_from, p_to) exact for one instrument (null: every quote-priced one), e.g. after '
  'a backfill of quotes; returns the number of minutes covered.';
