-- Quotes of both stores: market.quotes (a row a quote: live streams, REST pages) and
-- market.quote_blocks (an hour of a venue file's ticks a row, as columns in points). A block's
-- ticks are presented exactly as rows would be:
--   quoted_at = hour_start + ms milliseconds
--   bid, ask  = points * unit (the instrument's scale: 114545 * 0.00001 = 1.14545)
--   sizes     = volume * 1000000 (the file's volumes are in millions of units), trailing zeros trimmed
--   seq       = microseconds since the epoch of hour_start + the tick's position in the block (0-based):
--               unique per instrument, the same on every re-landing, in file order within the hour
-- market.quote_block_ticks presents them, market.all_quotes is every quote of both stores with its
-- hour, and readers of quotes by time read market.quotes_between(), which is inlined into the
-- calling query, so an instrument or time condition reaches both stores' indexes (a block is read
-- only if its hour meets [p_from, p_to)). It reads a view, so every role that reads market's views
-- may call it.

create or replace view market.quote_block_ticks as
select b.instrument_id, b.hour_start, b.hour_start + u.ms * interval '1 millisecond' as quoted_at,
       h.us + u.n - 1 as seq,
       u.bid * b.unit as bid, trim_scale(u.bv * 1000000) as bid_size, u.ask * b.unit as ask,
       trim_scale(u.av * 1000000) as ask_size, true as tradeable, 'venue'::text as time_source, b.received_at, b.source,
       b.frame_id
from market.quote_blocks b
-- once a block, not once a tick ("offset 0" keeps it from being folded into the tick's columns)
cross join lateral (select (extract(epoch from b.hour_start) * 1000000)::bigint as us offset 0) h
cross join lateral unnest(b.ms, b.ask, b.bid, b.ask_volume, b.bid_volume) with ordinality u(ms, ask, bid, av, bv, n);
comment on view market.quote_block_ticks is
  'The ticks of market.quote_blocks as quotes, with the hour of their block (a condition on hour_start skips whole blocks).';

create or replace view market.all_quotes as
select q.instrument_id, date_bin(interval '1 hour', q.quoted_at, timestamptz '1970-01-01 00:00:00+00') as hour_start,
       q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable, q.time_source, q.received_at, q.source, q.frame_id
from market.quotes q
union all
select t.instrument_id, t.hour_start, t.quoted_at, t.seq, t.bid, t.bid_size, t.ask, t.ask_size, t.tradeable, t.time_source,
       t.received_at, t.source, t.frame_id
from market.quote_block_ticks t;
comment on view market.all_quotes is
  'Every quote of both stores (market.quotes, market.quote_blocks), with its hour: conditions on quoted_at and hour_start '
  'reach both stores'' indexes (market.quotes_between writes both for a time range).';

create or replace function market.quotes_between(p_from timestamptz, p_to timestamptz)
returns table (instrument_id integer, quoted_at timestamptz, seq bigint, bid numeric, bid_size numeric, ask numeric,
               ask_size numeric, tradeable boolean, time_source text, received_at timestamptz, source text,
               frame_id bigint)
language sql
stable parallel safe
as $$
  select q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable, q.time_source,
         q.received_at, q.source, q.frame_id
  from market.all_quotes q
  where q.hour_start > p_from - interval '1 hour' and q.hour_start < p_to and q.quoted_at >= p_from and q.quoted_at < p_to
$$;
comment on function market.quotes_between(timestamptz, timestamptz) is
  'Quotes with quoted_at in [p_from, p_to) from market.quotes and from the tick blocks of venue files (market.quote_blocks), '
  'with the columns of market.quotes.';

create or replace function market.lock_quote_hours(p_instruments integer[], p_hours timestamptz[])
returns integer
language sql
as $$
  -- Which store holds an hour of an instrument's quotes is decided by reading both, so writers of
  -- venue files' hours (overlapping backfills, the .bi5 files and the JSON API at once) take each
  -- hour's lock first, in one order, for the rest of their transaction.
  select count(pg_advisory_xact_lock(x.i, (extract(epoch from x.h) / 3600)::integer))::integer
  from (select distinct u.i, date_trunc('hour', u.h, 'UTC') as h
        from unnest(p_instruments, p_hours) u(i, h) where u.i is not null and u.h is not null order by 1, 2) x
$$;
comment on function market.lock_quote_hours(integer[], timestamptz[]) is
  'Transaction locks on (instrument, hour) of quotes, taken in order, by the normalizers of venue files; returns how many.';

create or replace function market.last_quote_time_before(p_instrument integer, p_at timestamptz)
returns timestamptz
language sql
stable parallel safe
as $$
  -- The time of the instrument's last quote before p_at, in either store: a probe of each index.
  -- A block holds at least one tick, so the two latest blocks starting before p_at hold the last
  -- block tick before it (the later one may have only ticks at or after p_at).
  select greatest(
    (select max(q.quoted_at) from market.quotes q where q.instrument_id = p_instrument and q.quoted_at < p_at),
    (select max(b.hour_start + u.ms * interval '1 millisecond')
     from (select b.hour_start, b.ms from market.quote_blocks b
           where b.instrument_id = p_instrument and b.hour_start < p_at order by b.hour_start desc limit 2) b
     cross join lateral unnest(b.ms) u(ms)
     where b.hour_start + u.ms * interval '1 millisecond' < p_at))
$$;

create or replace function market.first_quote_time_in(p_instrument integer, p_from timestamptz, p_to timestamptz)
returns timestamptz
language sql
stable parallel safe
as $$
  -- The time of the instrument's first quote in [p_from, p_to), in either store (see above).
  select least(
    (select min(q.quoted_at) from market.quotes q where q.instrument_id = p_instrument and q.quoted_at >= p_from
       and q.quoted_at < p_to),
    (select min(b.hour_start + u.ms * interval '1 millisecond')
     from (select b.hour_start, b.ms from market.quote_blocks b
           where b.instrument_id = p_instrument and b.hour_start > p_from - interval '1 hour' and b.hour_start < p_to
           order by b.hour_start limit 2) b
     cross join lateral unnest(b.ms) u(ms)
     where b.hour_start + u.ms * interval '1 millisecond' >= p_from and b.hour_start + u.ms * interval '1 millisecond' < p_to))
$$;

create or replace function market.bbo_between(p_from timestamptz, p_to timestamptz, p_symbols text[] default null)
returns table (venue text, symbol text, instrument_id integer, quoted_at timestamptz, seq bigint, bid numeric,
               bid_size numeric, ask numeric, ask_size numeric, mid numeric, spread numeric, tradeable boolean,
               time_source text, received_at timestamptz, source text, frame_id bigint)
language sql
stable
as $$
  -- market.bbo for quoted_at in [p_from, p_to), of the given canonical symbols (all when null):
  -- what analysts and Grafana read for a time range, since a time condition on the view cannot
  -- skip blocks. It runs with tickflow_worker's rights, read-only (sql/zz_privileges.sql).
  select i.venue, i.symbol, q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size,
         (q.bid + q.ask) / 2, q.ask - q.bid, q.tradeable, q.time_source, q.received_at, q.source, q.frame_id
  from market.instruments i
  cross join lateral market.quotes_between(p_from, p_to) q
  where q.instrument_id = i.instrument_id and (p_symbols is null or i.symbol = any (p_symbols))
$$;
comment on function market.bbo_between(timestamptz, timestamptz, text[]) is
  'market.bbo for a time range (and symbols), reading both stores of quotes through their indexes; for analysts and Grafana.';
