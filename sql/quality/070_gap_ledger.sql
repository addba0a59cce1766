-- The gap ledger (quality.gaps) and its recovery. A gap is detected (a disconnect, a sequence
-- break, a hole found by a scan), queued (a recover_gap job exists), recovering, and ends
-- recovered, unrecoverable, venue_outage or market_closed, with the rows recovery brought back.
-- Recovery of id-sequenced streams (trades, aggregate trades) works on the missing id range:
-- from_seq..to_seq, bounded by the ids we hold on either side of the gap.

create or replace function quality.enqueue_gap_recovery(p_gap bigint, p_delay interval default null)
returns boolean
language plpgsql
as $$
begin
  if not ops.graphile_worker_installed() then
    return false; -- the first worker start queues it (quality.enqueue_pending_gaps)
  end if;
  perform graphile_worker.add_job('recover_gap', json_build_object('gapId', p_gap),
    run_at := now() + coalesce(p_delay, ops.setting('gaps.recovery_delay', '2 seconds')::interval),
    job_key := 'recover_gap:' || p_gap, max_attempts := ops.setting('gaps.max_attempts', '5')::integer,
    job_key_mode := 'preserve_run_at');
  return true;
end
$$;
comment on function quality.enqueue_gap_recovery(bigint, interval) is
  'Queues the recover_gap job of a gap (after gaps.recovery_delay, so the frames around it have landed); false before graphile-worker is installed.';

create or replace function quality.gaps_enqueue_recovery()
returns trigger
language plpgsql
as $$
begin
  -- A gap with both ends known queues its own recovery. This runs inside the transaction that
  -- lands the frames (ops.record_events), so it must never fail it: an error leaves the gap
  -- detected, and quality.enqueue_pending_gaps() (detect_gaps job) queues it later.
  if new.state = 'detected' and new.gap_to is not null then
    begin
      if quality.enqueue_gap_recovery(new.gap_id) then
        new.state := 'queued';
        new.updated_at := now();
      end if;
    exception when others then
      new.detail := new.detail || jsonb_build_object('enqueue_error', sqlerrm);
    end;
  end if;
  return new;
end
$$;

create or replace trigger gaps_enqueue_recovery
before insert or update of gap_to, state on quality.gaps
for each row execute function quality.gaps_enqueue_recovery();

create or replace function quality.enqueue_pending_gaps()
returns integer
language plpgsql
as $$
declare
  v_gap bigint;
  v_done integer := 0;
begin
  -- Gaps closed while graphile-worker was not installed, or whose enqueue failed.
  for v_gap in
    select g.gap_id from quality.gaps g where g.state = 'detected' and g.gap_to is not null order by g.gap_id
  loop
    if quality.enqueue_gap_recovery(v_gap, interval '0') then
      update quality.gaps set state = 'queued', updated_at = now() where gap_id = v_gap and state = 'detected';
      v_done := v_done + 1;
    end if;
  end loop;
  return v_done;
end
$$;

create or replace function quality.begin_gap_recovery(p_gap bigint)
returns table (gap_id bigint, venue text, stream text, symbol text, instrument_id integer, gap_from timestamptz,
               gap_to timestamptz, from_ms bigint, to_ms bigint, from_seq bigint, to_seq bigint, timeframe text,
               attempts integer)
language plpgsql
as $$
declare
  v_gap quality.gaps;
begin
  -- Marks the gap recovering and bounds it: for trades, the missing ids run from just after the
  -- last trade received before the gap to just before the first trade received after it.
  select * into v_gap from quality.gaps g where g.gap_id = p_gap for update;
  if not found or v_gap.state not in ('detected', 'queued', 'recovering') then
    return;
  end if;
  if v_gap.instrument_id is null and v_gap.detail ? 'symbol' then
    select i.instrument_id into v_gap.instrument_id
    from market.instruments i where i.venue = v_gap.venue and i.symbol = v_gap.detail->>'symbol'
    order by i.instrument_id limit 1;
  end if;
  if v_gap.stream = 'trade' and v_gap.instrument_id is not null then
    if v_gap.from_seq is null then
      select t.seq + 1 into v_gap.from_seq
      from market.trades t
      where t.instrument_id = v_gap.instrument_id and t.seq is not null
        and t.traded_at <= v_gap.gap_from + interval '1 minute' and t.received_at <= v_gap.gap_from
      order by t.traded_at desc, t.seq desc limit 1;
    end if;
    if v_gap.to_seq is null and v_gap.gap_to is not null then
      select t.seq - 1 into v_gap.to_seq
      from market.trades t
      where t.instrument_id = v_gap.instrument_id and t.seq is not null and t.source <> 'rest'
        and t.traded_at >= v_gap.gap_from - interval '1 minute' and t.received_at >= v_gap.gap_to
      order by t.traded_at, t.seq limit 1;
    end if;
  elsif v_gap.stream = 'aggTrade' and v_gap.instrument_id is not null then
    if v_gap.from_seq is null then
      select a.agg_id + 1 into v_gap.from_seq
      from market.agg_trades a
      where a.instrument_id = v_gap.instrument_id
        and a.traded_at <= v_gap.gap_from + interval '1 minute' and a.received_at <= v_gap.gap_from
      order by a.traded_at desc, a.agg_id desc limit 1;
    end if;
    if v_gap.to_seq is null and v_gap.gap_to is not null then
      select a.agg_id - 1 into v_gap.to_seq
      from market.agg_trades a
      where a.instrument_id = v_gap.instrument_id and a.source <> 'rest'
        and a.traded_at >= v_gap.gap_from - interval '1 minute' and a.received_at >= v_gap.gap_to
      order by a.traded_at, a.agg_id limit 1;
    end if;
  end if;
  update quality.gaps g
     set state = 'recovering', attempts = g.attempts + 1, instrument_id = v_gap.instrument_id,
         from_seq = v_gap.from_seq, to_seq = v_gap.to_seq, updated_at = now()
   where g.gap_id = p_gap
  returning g.attempts into v_gap.attempts;
  return query
    select v_gap.gap_id, v_gap.venue, v_gap.stream,
           coalesce(v_gap.detail->>'symbol', (select i.symbol from market.instruments i where i.instrument_id = v_gap.instrument_id)),
           v_gap.instrument_id, v_gap.gap_from, v_gap.gap_to,
           floor(extract(epoch from v_gap.gap_from) * 1000)::bigint, ceil(extract(epoch from v_gap.gap_to) * 1000)::bigint,
           v_gap.from_seq, v_gap.to_seq, v_gap.detail->>'timeframe', v_gap.attempts;
end
$$;
comment on function quality.begin_gap_recovery(bigint) is
  'Marks a gap recovering and bounds its missing id range from the ids held on either side; nothing when the gap is closed.';

create or replace function quality.bound_gap_by_agg_trades(p_gap bigint)
returns table (from_seq bigint, to_seq bigint, instrument_id integer)
language plpgsql
as $$
declare
  v_gap quality.gaps;
begin
  -- Where no trade of ours bounds the gap (none before it, or none yet after it), the venue's
  -- aggregate trades at the gap's ends do: each carries the first trade id f it covers.
  select * into v_gap from quality.gaps g where g.gap_id = p_gap for update;
  if v_gap.instrument_id is null and v_gap.detail ? 'symbol' then
    select i.instrument_id into v_gap.instrument_id
    from market.instruments i where i.venue = v_gap.venue and i.symbol = v_gap.detail->>'symbol'
    order by i.instrument_id limit 1;
  end if;
  if v_gap.from_seq is null then
    select case when v_gap.stream = 'trade' then a.first_trade_seq else a.agg_id end into v_gap.from_seq
    from market.agg_trades a
    where a.instrument_id = v_gap.instrument_id and a.traded_at >= v_gap.gap_from
    order by a.traded_at, a.agg_id limit 1;
  end if;
  if v_gap.to_seq is null and v_gap.gap_to is not null then
    select case when v_gap.stream = 'trade' then a.first_trade_seq else a.agg_id end - 1 into v_gap.to_seq
    from market.agg_trades a
    where a.instrument_id = v_gap.instrument_id and a.traded_at >= v_gap.gap_to
    order by a.traded_at, a.agg_id limit 1;
  end if;
  update quality.gaps g
     set from_seq = v_gap.from_seq, to_seq = v_gap.to_seq, instrument_id = v_gap.instrument_id, updated_at = now()
   where g.gap_id = p_gap;
  return query select v_gap.from_seq, v_gap.to_seq, v_gap.instrument_id;
end
$$;

create or replace function quality.gap_missing_pages(p_gap bigint, p_page integer)
returns table (from_id bigint, to_id bigint)
language sql
stable
as $$
  -- Pages (first id, last id wanted) covering every id of the gap's range not stored yet.
  select m.from_id, m.to_id
  from quality.gaps g
  cross join lateral market.missing_id_pages(g.stream, g.instrument_id, g.from_seq, g.to_seq, p_page) m
  where g.gap_id = p_gap and g.from_seq is not null and g.to_seq is not null
$$;
comment on function quality.gap_missing_pages(bigint, integer) is
  'For an id-sequenced gap (trade, aggTrade): pages of at most p_page ids covering every id of from_seq..to_seq not stored yet.';

create or replace function quality.finish_gap_recovery(p_gap bigint, p_rows bigint)
returns table (state text, missing bigint, window_from timestamptz, window_to timestamptz, instrument_id integer)
language plpgsql
as $$
declare
  v_gap quality.gaps;
  v_missing bigint; -- unknown until the range is bounded
  v_from timestamptz;
  v_to timestamptz;
begin
  -- Recovered when no id of the range is missing; the bars of the window it spans are refreshed
  -- by the job. Rows are added whatever the outcome (a later attempt adds its own).
  select * into v_gap from quality.gaps g where g.gap_id = p_gap for update;
  if v_gap.from_seq is not null and v_gap.to_seq is not null and v_gap.to_seq < v_gap.from_seq then
    v_missing := 0;
  elsif v_gap.from_seq is not null and v_gap.to_seq is not null then
    v_missing := market.missing_id_count(v_gap.stream, v_gap.instrument_id, v_gap.from_seq, v_gap.to_seq);
    if v_gap.stream = 'trade' then
      select min(t.traded_at), max(t.traded_at) into v_from, v_to
      from market.trades t
      where t.instrument_id = v_gap.instrument_id and t.seq between v_gap.from_seq and v_gap.to_seq;
    else
      select min(a.traded_at), max(a.traded_at) into v_from, v_to
      from market.agg_trades a
      where a.instrument_id = v_gap.instrument_id and a.agg_id between v_gap.from_seq and v_gap.to_seq;
    end if;
  end if;
  update quality.gaps g
     set rows_recovered = g.rows_recovered + coalesce(p_rows, 0),
         state = case when v_missing = 0 then 'recovered' else g.state end,
         resolved_at = case when v_missing = 0 then now() else g.resolved_at end,
         detail = g.detail || case when v_gap.to_seq < v_gap.from_seq
                                   then jsonb_build_object('note', 'no id is missing: the venue had nothing in the gap')
                                   else '{}' end,
         last_error = case when v_missing = 0 then null else g.last_error end,
         updated_at = now()
   where g.gap_id = p_gap
  returning g.state into v_gap.state;
  return query select v_gap.state, v_missing, v_from, v_to + interval '1 microsecond', v_gap.instrument_id;
end
$$;
comment on function quality.finish_gap_recovery(bigint, bigint) is
  'After a recovery attempt: adds the rows it brought back, marks the gap recovered when no id is missing, returns the window to refresh.';

create or replace function quality.market_closed_throughout(p_instrument_id integer, p_from timestamptz, p_to timestamptz)
returns boolean
language sql
stable
as $$
  -- The instrument's calendar (quality.instrument_calendar) has no open minute in [p_from, p_to):
  -- a forex pair's weekend, an equity's night or holiday. Thin hours count as open.
  select p_instrument_id is not null and p_from is not null and p_to is not null and p_to > p_from
         and isempty(quality.open_hours(quality.instrument_calendar(p_instrument_id), p_from, p_to))
$$;
comment on function quality.market_closed_throughout(integer, timestamptz, timestamptz) is
  'True when the instrument''s calendar is closed for the whole of [p_from, p_to) (a gap there lost nothing).';

create or replace function quality.end_gap(p_gap bigint, p_state text, p_reason text)
returns void
language sql
as $$
  -- A gap that nothing could fill (unrecoverable, venue_outage) while the market was closed
  -- throughout ends market_closed: nothing was lost.
  update quality.gaps g
     set state = case when c.closed then 'market_closed' else p_state end,
         last_error = left(case when c.closed then 'the market was closed throughout (calendar '
                                                   || quality.instrument_calendar(g.instrument_id) || '); ' || p_reason
                                else p_reason end, 2000),
         resolved_at = now(), updated_at = now()
    from (select p_state in ('unrecoverable', 'venue_outage')
                 and quality.market_closed_throughout(x.instrument_id, x.gap_from, x.gap_to) as closed
          from quality.gaps x where x.gap_id = p_gap) c
   where g.gap_id = p_gap and g.state in ('detected', 'queued', 'recovering')
$$;
comment on function quality.end_gap(bigint, text, text) is
  'Ends a gap as unrecoverable, venue_outage or market_closed, with the reason (market_closed when the calendar was closed throughout).';

create or replace function quality.note_gap_error(p_gap bigint, p_error text)
returns void
language sql
as $$
  update quality.gaps set last_error = left(p_error, 2000), state = 'queued', updated_at = now()
  where gap_id = p_gap and state = 'recovering'
$$;

create or replace function quality.finish_candle_gap(p_gap bigint, p_rows bigint)
returns table (state text, missing bigint)
language plpgsql
as $$
declare
  v_gap quality.gaps;
  v_width interval;
  v_open tstzmultirange;
  v_missing bigint;
  v_missing_open bigint;
begin
  -- After the venue's candles for the window were fetched: buckets still without a candle are
  -- the venue's own hole (it publishes none for them), so the gap is a venue outage.
  select * into v_gap from quality.gaps g where g.gap_id = p_gap for update;
  v_width := market.timeframe_width(v_gap.detail->>'timeframe');
  v_open := quality.open_hours(quality.instrument_calendar(v_gap.instrument_id), v_gap.gap_from, v_gap.gap_to);
  select count(*), count(*) filter (where tstzrange(b, b + v_width) && v_open) into v_missing, v_missing_open
  from generate_series(date_bin(v_width, v_gap.gap_from, timestamptz '1970-01-01 00:00:00+00'),
                       v_gap.gap_to - interval '1 microsecond', v_width) b
  where not exists (select 1 from market.candles c
                    where c.instrument_id = v_gap.instrument_id and c.timeframe = v_gap.detail->>'timeframe'
                      and c.price_side = any (market.candle_price_sides()) and c.bucket = b);
  -- Buckets the venue has no candle for either: a venue outage where the market was open, none
  -- lost where its calendar was closed.
  update quality.gaps g
     set rows_recovered = g.rows_recovered + coalesce(p_rows, 0),
         state = case when v_missing = 0 then 'recovered' when v_missing_open = 0 then 'market_closed' else 'venue_outage' end,
         last_error = case when v_missing = 0 then null
                           when v_missing_open = 0 then v_missing || ' buckets have no candle at the venue either, all while the market was closed'
                           when v_missing_open = v_missing then v_missing || ' buckets have no candle at the venue either'
                           else v_missing || ' buckets have no candle at the venue either, ' || v_missing_open
                                || ' of them while the market was open' end,
         resolved_at = now(), updated_at = now()
   where g.gap_id = p_gap
  returning g.state into v_gap.state;
  return query select v_gap.state, v_missing;
end
$$;
comment on function quality.finish_candle_gap(bigint, bigint) is
  'After a candle gap was fetched again: recovered when every bucket has a candle, market_closed when the missing ones all fall '
  'in closed hours of the instrument''s calendar, else venue_outage (the venue has none either).';

create or replace function quality.scan_candle_gaps(p_venue text, p_symbol text, p_timeframe text,
                                                    p_from timestamptz, p_to timestamptz)
returns integer
language sql
as $$
  -- Runs of missing buckets between stored candles of one instrument and timeframe, found later
  -- (detected_by scan); each becomes a gap of stream candles that recovery fetches again. A
  -- bucket is present when the venue gave a candle of any price side (trade, or bid/ask/mid).
  with inst as (
    select i.instrument_id from market.instruments i where i.venue = p_venue and i.symbol = p_symbol
  ), c as (
    select k.instrument_id, k.bucket, lag(k.bucket) over (partition by k.instrument_id order by k.bucket) as prev
    from (select distinct c.instrument_id, c.bucket
          from market.candles c join inst using (instrument_id)
          where c.timeframe = p_timeframe and c.price_side = any (market.candle_price_sides())
            and c.bucket >= p_from and c.bucket < p_to) k
  ), w as (
    select market.timeframe_width(p_timeframe) as width
  ), ins as (
    -- A hole the instrument's calendar was closed for throughout lost nothing: it is recorded
    -- market_closed (resolved), and never fetched again.
    insert into quality.gaps (venue, stream, instrument_id, gap_from, gap_to, detected_by, detail, state, resolved_at, last_error)
    select p_venue, 'candles', c.instrument_id, c.prev + w.width, c.bucket, 'scan',
           jsonb_build_object('timeframe', p_timeframe, 'symbol', p_symbol,
                              'missing_buckets', (extract(epoch from c.bucket - c.prev) / extract(epoch from w.width))::bigint - 1),
           case when k.closed then 'market_closed' else 'detected' end, case when k.closed then now() end,
           case when k.closed then 'the market was closed throughout (calendar ' || quality.instrument_calendar(c.instrument_id) || ')' end
    from c cross join w
    cross join lateral (select quality.market_closed_throughout(c.instrument_id, c.prev + w.width, c.bucket) as closed) k
    where c.prev is not null and c.bucket > c.prev + w.width
      and not exists (select 1 from quality.gaps g
                      where g.instrument_id = c.instrument_id and g.stream = 'candles'
                        and g.detail->>'timeframe' = p_timeframe
                        and g.gap_from < c.bucket and g.gap_to > c.prev + w.width)
    returning 1
  )
  select count(*)::integer from ins
$$;
comment on function quality.scan_candle_gaps(text, text, text, timestamptz, timestamptz) is
  'Records runs of missing candle buckets (between stored ones) of a symbol and timeframe as gaps (scan; market_closed when '
  'the calendar was closed throughout); returns how many.';

create or replace function quality.scan_trade_gaps(p_from timestamptz, p_to timestamptz)
returns integer
language sql
as $$
  -- Holes in the trade id sequence of trades in [p_from, p_to) that no gap of the ledger covers
  -- yet. A hole between two trades of the same live session is a sequence break (the venue
  -- skipped ids on a connection that stayed up); any other is a hole found later (scan).
  with t as (
    select tr.instrument_id, tr.seq, tr.traded_at, tr.received_at, tr.frame_id,
           lag(tr.seq) over w as prev_seq, lag(tr.traded_at) over w as prev_at,
           lag(tr.received_at) over w as prev_received_at, lag(tr.frame_id) over w as prev_frame_id
    from market.trades tr
    where tr.traded_at >= p_from and tr.traded_at < p_to and tr.seq is not null
    window w as (partition by tr.instrument_id order by tr.seq)
  ), holes as (
    select t.*, i.venue,
           (select f.session_id from staging.frames f where f.frame_id = t.frame_id and f.received_at = t.received_at) as session_id,
           (select f.session_id from staging.frames f where f.frame_id = t.prev_frame_id and f.received_at = t.prev_received_at) as prev_session_id
    from t
    join market.instruments i using (instrument_id)
    where t.prev_seq is not null and t.seq > t.prev_seq + 1
      and not exists (
        select 1 from quality.gaps g
        where g.instrument_id = t.instrument_id and g.stream = 'trade'
          and case when g.from_seq is not null and g.to_seq is not null
                   then g.from_seq <= t.seq - 1 and g.to_seq >= t.prev_seq + 1
                   else g.gap_from <= t.received_at and coalesce(g.gap_to, 'infinity') >= t.prev_received_at end)
  ), ins as (
    insert into quality.gaps (venue, stream, instrument_id, gap_from, gap_to, from_seq, to_seq, detected_by, session_id, detail)
    select h.venue, 'trade', h.instrument_id, h.prev_at, h.traded_at, h.prev_seq + 1, h.seq - 1,
           case when h.session_id is not null and h.session_id = h.prev_session_id then 'sequence_break' else 'scan' end,
           h.session_id, jsonb_build_object('missing_ids', h.seq - h.prev_seq - 1)
    from holes h
    returning 1
  )
  select count(*)::integer from ins
$$;
comment on function quality.scan_trade_gaps(timestamptz, timestamptz) is
  'Records every hole in the trade id sequence of [p_from, p_to) that no gap covers yet (sequence_break within a session, else scan); returns how many.';

create or replace view quality.gap_ledger as
select g.gap_id, g.venue, coalesce(g.feed, '') as feed, g.stream, i.symbol, g.instrument_id, g.gap_from, g.gap_to,
       g.gap_to - g.gap_from as duration, g.from_seq, g.to_seq,
       case when g.to_seq >= g.from_seq then g.to_seq - g.from_seq + 1 end as ids_in_range,
       g.detected_by, g.state, g.rows_recovered, g.attempts, g.last_error, g.detected_at, g.resolved_at, g.session_id, g.detail
from quality.gaps g
left join market.instruments i using (instrument_id);
comment on view quality.gap_ledger is
  'The gap ledger with symbols: every disconnect, sequence break and hole found later, its state and the rows recovery brought back.';

create or replace function quality.scan_recent_trade_gaps()
returns integer
language plpgsql
as $$
declare
  v_from timestamptz := coalesce(ops.setting('gaps.trades_scanned_to', null)::timestamptz, now() - interval '10 minutes');
  v_to timestamptz := now() - interval '5 seconds';
  v_found integer;
begin
  -- Trades since the last scan, with a minute of overlap (a hole straddling the previous edge).
  if v_to <= v_from then
    return 0;
  end if;
  v_found := quality.scan_trade_gaps(v_from - interval '1 minute', v_to);
  perform ops.set_setting('gaps.trades_scanned_to', v_to::text);
  return v_found;
end
$$;
comment on function quality.scan_recent_trade_gaps() is
  'quality.scan_trade_gaps() over the trades since the last call (watermark gaps.trades_scanned_to in ops.settings).';

create or replace function quality.scan_recent_candle_gaps()
returns integer
language plpgsql
as $$
declare
  v_from timestamptz := coalesce(ops.setting('gaps.candles_scanned_to', null)::timestamptz, now() - interval '10 minutes');
  v_to timestamptz := clock_timestamp();
  v_found integer := 0;
  v_chunk record;
begin
  -- Candle backfill chunks finished since the last call (with a minute of overlap), each scanned
  -- from the last stored candle before it, so a hole across a chunk boundary is found too.
  for v_chunk in
    select c.venue, c.symbol, c.timeframe, c.chunk_from, c.chunk_to
    from ops.backfill_chunks c
    where c.kind = 'candles' and c.state in ('done', 'partial') and c.timeframe is not null
      and c.finished_at >= v_from - interval '1 minute' and c.finished_at < v_to
    order by c.finished_at
  loop
    v_found := v_found + quality.scan_candle_gaps(v_chunk.venue, v_chunk.symbol, v_chunk.timeframe,
      coalesce((select max(k.bucket) from market.candles k
                join market.instruments i on i.instrument_id = k.instrument_id
                where i.venue = v_chunk.venue and i.symbol = v_chunk.symbol and k.timeframe = v_chunk.timeframe
                  and k.price_side = any (market.candle_price_sides()) and k.bucket < v_chunk.chunk_from), v_chunk.chunk_from),
      v_chunk.chunk_to);
  end loop;
  perform ops.set_setting('gaps.candles_scanned_to', v_to::text);
  return v_found;
end
$$;
comment on function quality.scan_recent_candle_gaps() is
  'quality.scan_candle_gaps() over the candle backfill chunks finished since the last call (watermark gaps.candles_scanned_to); '
  'returns the gaps recorded. Run every minute by the detect_gaps job.';
