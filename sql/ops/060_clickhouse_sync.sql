-- The ClickHouse sync's view of market: which rows are new since a watermark, and how far behind
-- ClickHouse is. See migrations/postgres/20261121003000_clickhouse_sync.sql for the watermark.
--
-- A feed returns the rows visible in p_target and not in p_shipped (their writing transaction
-- committed between the two snapshots, whatever their event time or sync_id), after the key
-- (p_after_xid, p_after_id) and up to (p_upto_xid, p_upto_id) when given, in key order. Every
-- row visible in p_target stays visible, so the same arguments always return the same rows: a
-- batch that may or may not have reached ClickHouse is read again identically and re-inserted
-- with the same deduplication token. Columns are named and formatted as the ClickHouse tables
-- expect (times as UTC text with microseconds, numerics as exact text); "exact" says whether
-- every number fits ClickHouse's Decimal(38, 12) without rounding.
--
-- The feeds join market.trades / quotes (and quote_blocks) / book_snapshots to market.instruments
-- exactly as the views market.ticks, market.bbo and market.book_snapshot_levels do, because they
-- need the sync_xid / sync_id columns those views do not expose.

create or replace function ops.clickhouse_tsv(p_text text)
returns text
language sql
immutable parallel safe
as $$
  select coalesce(replace(replace(replace(replace(p_text, '\', '\\'), E'\t', '\t'), E'\n', '\n'), E'\r', '\r'), '\N')
$$;
comment on function ops.clickhouse_tsv(text) is
  'A text value as a ClickHouse TabSeparated field: backslash, tab, newline and carriage return escaped, NULL as \N.';

create or replace function ops.clickhouse_unshipped(p_xid xid8, p_id bigint, p_shipped pg_snapshot, p_target pg_snapshot,
                                                  p_after_xid xid8, p_after_id bigint, p_upto_xid xid8, p_upto_id bigint)
returns boolean
language sql
stable parallel safe
as $$
  -- A row (its sync key) a feed returns: committed between the two snapshots, after the cursor,
  -- up to a key when given. Inlined into the feeds, so the bounds on p_xid reach the sync index.
  select p_xid >= pg_snapshot_xmin(p_shipped)
     and p_xid < pg_snapshot_xmax(p_target)
     and (p_xid, p_id) > (p_after_xid, p_after_id)
     and (p_upto_xid is null or (p_xid, p_id) <= (p_upto_xid, p_upto_id))
     and pg_visible_in_snapshot(p_xid, p_target)
     and not pg_visible_in_snapshot(p_xid, p_shipped)
$$;

create or replace function ops.clickhouse_trades_feed(
  p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint,
  p_upto_xid xid8, p_upto_id bigint, p_limit integer)
returns table (sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer,
               traded_at text, trade_id text, seq bigint, price numeric, size numeric, side text,
               received_at text, source text)
language sql
stable
as $$
  select t.sync_xid, t.sync_id,
         t.price = trunc(t.price, 12) and t.size = trunc(t.size, 12),
         i.venue, i.symbol, t.instrument_id,
         to_char(t.traded_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
         t.trade_id, t.seq, t.price, t.size, t.side,
         to_char(t.received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), t.source
  from market.trades t
  join market.instruments i on i.instrument_id = t.instrument_id
  where ops.clickhouse_unshipped(t.sync_xid, t.sync_id, p_shipped, p_target, p_after_xid, p_after_id, p_upto_xid, p_upto_id)
  order by t.sync_xid, t.sync_id
  limit p_limit
$$;
comment on function ops.clickhouse_trades_feed(pg_snapshot, pg_snapshot, xid8, bigint, xid8, bigint, integer) is
  'Trades committed between two snapshots, after a sync key, in sync order, formatted for ClickHouse (the clickhouse_sync job reads it).';

create or replace function ops.clickhouse_quotes_feed(
  p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint,
  p_upto_xid xid8, p_upto_id bigint, p_limit integer)
returns table (sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer,
               quoted_at text, seq bigint, bid numeric, bid_size numeric, ask numeric, ask_size numeric,
               tradeable boolean, time_source text, received_at text, source text)
language sql
stable
as $$
  -- Quotes of both stores. A block of market.quote_blocks is one sync key for all its ticks, and
  -- is shipped whole: keys are taken in order until their rows reach p_limit (at least one key),
  -- so a batch may hold more rows than p_limit by the ticks of its last block.
  with keys as materialized (
    select k.sync_xid, k.sync_id, k.n, k.instrument_id, k.hour_start
    from (
      select q.sync_xid, q.sync_id, 1 as n, null::integer as instrument_id, null::timestamptz as hour_start
      from market.quotes q
      where ops.clickhouse_unshipped(q.sync_xid, q.sync_id, p_shipped, p_target, p_after_xid, p_after_id, p_upto_xid, p_upto_id)
      union all
      select b.sync_xid, b.sync_id, b.ticks, b.instrument_id, b.hour_start
      from market.quote_blocks b
      where ops.clickhouse_unshipped(b.sync_xid, b.sync_id, p_shipped, p_target, p_after_xid, p_after_id, p_upto_xid, p_upto_id)
      order by 1, 2
      limit p_limit
    ) k
  ), taken as materialized (
    select x.* from (select k.*, sum(k.n) over (order by k.sync_xid, k.sync_id) - k.n as before from keys k) x
    where p_limit is null or x.before < p_limit
  ), upto as (
    select t.sync_xid, t.sync_id from taken t order by t.sync_xid desc, t.sync_id desc limit 1
  ), rows as (
    select q.sync_xid, q.sync_id, q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable,
           q.time_source, q.received_at, q.source
    from market.quotes q, upto u
    where ops.clickhouse_unshipped(q.sync_xid, q.sync_id, p_shipped, p_target, p_after_xid, p_after_id, u.sync_xid, u.sync_id)
    union all
    select t.sync_xid, t.sync_id, b.instrument_id, b.quoted_at, b.seq, b.bid, b.bid_size, b.ask, b.ask_size, b.tradeable,
           b.time_source, b.received_at, b.source
    from taken t
    join market.quote_block_ticks b on b.instrument_id = t.instrument_id and b.hour_start = t.hour_start
    where t.hour_start is not null
  )
  select q.sync_xid, q.sync_id,
         coalesce(q.bid = trunc(q.bid, 12), true) and coalesce(q.bid_size = trunc(q.bid_size, 12), true)
           and coalesce(q.ask = trunc(q.ask, 12), true) and coalesce(q.ask_size = trunc(q.ask_size, 12), true),
         i.venue, i.symbol, q.instrument_id,
         to_char(q.quoted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
         q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable, q.time_source,
         to_char(q.received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), q.source
  from rows q
  join market.instruments i on i.instrument_id = q.instrument_id
  order by q.sync_xid, q.sync_id, q.seq
$$;
comment on function ops.clickhouse_quotes_feed(pg_snapshot, pg_snapshot, xid8, bigint, xid8, bigint, integer) is
  'Quotes committed between two snapshots, after a sync key, in sync order, formatted for ClickHouse (the clickhouse_sync job reads it).';

create or replace function ops.clickhouse_book_snapshots_feed(
  p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint,
  p_upto_xid xid8, p_upto_id bigint, p_limit integer)
returns table (sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer,
               taken_at text, update_id bigint, origin text, bid_prices text[], bid_sizes text[],
               ask_prices text[], ask_sizes text[], received_at text)
language sql
stable
as $$
  select b.sync_xid, b.sync_id,
         not exists (select from unnest(b.bid_prices || b.bid_sizes || b.ask_prices || b.ask_sizes) v where v <> trunc(v, 12)),
         i.venue, i.symbol, b.instrument_id,
         to_char(b.taken_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
         b.update_id, b.origin, b.bid_prices::text[], b.bid_sizes::text[], b.ask_prices::text[], b.ask_sizes::text[],
         to_char(b.received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
  from market.book_snapshots b
  join market.instruments i on i.instrument_id = b.instrument_id
  where ops.clickhouse_unshipped(b.sync_xid, b.sync_id, p_shipped, p_target, p_after_xid, p_after_id, p_upto_xid, p_upto_id)
  order by b.sync_xid, b.sync_id
  limit p_limit
$$;
comment on function ops.clickhouse_book_snapshots_feed(pg_snapshot, pg_snapshot, xid8, bigint, xid8, bigint, integer) is
  'Book snapshots committed between two snapshots, after a sync key, in sync order, formatted for ClickHouse (the clickhouse_sync job reads it).';

-- Rows of a stream that are visible now and not yet confirmed in ClickHouse.
create or replace function ops.clickhouse_pending(p_stream text)
returns table (pending_rows bigint, oldest_pending_received_at timestamptz)
language sql
stable
as $$
  with w as (select * from ops.clickhouse_watermarks where stream = p_stream),
  keys as (
    select t.sync_xid, t.sync_id, t.received_at, 1 as n from market.trades t, w
    where p_stream = 'trades' and t.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
    union all
    select q.sync_xid, q.sync_id, q.received_at, 1 from market.quotes q, w
    where p_stream = 'quotes' and q.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
    union all
    -- a block of ticks: one key, as many rows as ticks
    select b.sync_xid, b.sync_id, b.received_at, b.ticks from market.quote_blocks b, w
    where p_stream = 'quotes' and b.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
    union all
    select b.sync_xid, b.sync_id, b.received_at, 1 from market.book_snapshots b, w
    where p_stream = 'book_snapshots' and b.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
  )
  select coalesce(sum(k.n), 0)::bigint, min(k.received_at)
  from keys k, w
  where not pg_visible_in_snapshot(k.sync_xid, w.shipped_snapshot)
    and not (w.target_snapshot is not null
             and pg_visible_in_snapshot(k.sync_xid, w.target_snapshot)
             and (k.sync_xid, k.sync_id) <= (w.cursor_xid, w.cursor_id))
$$;
comment on function ops.clickhouse_pending(text) is 'Count and oldest receive time of the rows of a stream not yet confirmed in ClickHouse.';

create or replace view ops.clickhouse_lag as
select w.stream,
       p.pending_rows,
       -- Everything committed before complete_up_to is in ClickHouse; the lag is how old that
       -- guarantee is while rows are waiting, and zero when nothing is.
       w.shipped_snapshot_at as complete_up_to,
       case when p.pending_rows = 0 then 0::numeric
            else round(extract(epoch from now() - coalesce(w.shipped_snapshot_at, p.oldest_pending_received_at)), 3)
       end as lag_seconds,
       p.oldest_pending_received_at,
       w.rows_shipped,
       w.batches,
       w.replays,
       w.pending_xid is not null as replay_pending,
       w.last_batch_at,
       w.last_error,
       w.last_error_at
from ops.clickhouse_watermarks w
cross join lateral ops.clickhouse_pending(w.stream) p;
comment on view ops.clickhouse_lag is
  'ClickHouse sync lag per stream: rows not yet in ClickHouse, seconds since the moment up to which ClickHouse is complete (0 when nothing waits), counters and the last error.';
