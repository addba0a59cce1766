-- Dukascopy historical files (.bi5), decoded by ingesters/dukascopy/bi5.ts and landed by
-- ingesters/dukascopy/land.ts: one frame per file, source 'file', request = the datafeed path
-- (month 0-based), payload
--   {"instrument","start","point","format":"bi5-ticks-v2","records":n} with the n records as columns
--     in staging.tick_columns (same frame_id): ms, ask, bid (int4[]), ask_volume, bid_volume (numeric[])
--   {"instrument","start","point","format":"bi5-ticks-v1","records":[[ms,ask,bid,"askVol","bidVol"],...]}
--     (what earlier versions landed)
--   {"instrument","start","point","format":"bi5-candles-v1","side","records":[[s,open,close,low,high,"vol"],...]}
-- A file fetched by a backfill (ingesters/dukascopy-rest.ts) has request 'GET /<path> 200'; one
-- that did not decode lands as {"instrument","start","point","format":"bi5-undecodable","error",
-- "bytes","base64"} and is quarantined whole with its error (the backfill fetches it again).
-- Every file read whole is recorded in market.venue_files (records 0: the venue has no data for
-- the period); an empty hour of ticks in the instrument's expected hours (quality calendars) is a
-- gap finding (label venue_outage, detector dukascopy_files), an empty closed hour is not.
-- Prices are integers in points: price = points / point, exactly, at the instrument's scale
-- (computed as points * unit, staging.dukascopy_files).
-- Volumes are in millions of units in the files (the venue's JSON API publishes the same tick
-- volumes in units: 1.8 there is 1800000.0), so sizes here are volume * 1000000, in base units.
-- Ticks of v2 files become market.quote_blocks, a file's hour to a row in points (read as quotes
-- with market.quotes_between); ticks of v1 files become market.quotes rows. An hour is kept in one
-- store: a block is replaced by a later file only while it comes from a file fetched before its
-- hour ended; an hour held as rows (a v1 file, the JSON API) takes a v2 file's ticks as rows, and
-- rows are not added to an hour held as a block. Writers of an hour hold its lock
-- (market.lock_quote_hours). Candles become market.candles (price side from the file name,
-- volume_kind quoted_size: a Dukascopy candle's volume is the sum of its ticks' sizes on that
-- side, not traded volume; volume 0 marks a filler candle for a bucket without ticks).
--
-- Natural key of a tick of a v1 file: (instrument, quoted_at, k), k = how many earlier records of the same
-- file share its millisecond. Dukascopy times are milliseconds, so seq = microseconds since the
-- epoch of quoted_at + k (k < 1000) keeps quotes.seq "microseconds since the epoch" to the
-- millisecond, is unique (files of one instrument never overlap), orders like the file, and is
-- the same on every re-landing of the file, so re-landing inserts nothing twice. A block's ticks
-- are keyed by their position in the block (sql/market/015_quote_blocks.sql).

create or replace function market.dukascopy_symbol(p_venue_symbol text, out symbol text, out base text, out quote text,
                                                   out asset_class text)
language sql
immutable parallel safe
as $$
  -- Six letters of two ISO 4217 codes (metals XAU, XAG, XPT, XPD included) are a currency pair;
  -- a known coin before a currency is crypto; anything else keeps its venue symbol.
  with x as (select upper(p_venue_symbol) as s),
  fiat as (select unnest(array['AUD', 'CAD', 'CHF', 'CNH', 'CZK', 'DKK', 'EUR', 'GBP', 'HKD', 'HUF', 'ILS', 'JPY',
                               'MXN', 'NOK', 'NZD', 'PLN', 'RON', 'RUB', 'SEK', 'SGD', 'THB', 'TRY', 'USD', 'ZAR',
                               'XAU', 'XAG', 'XPT', 'XPD', 'BRL', 'CNY', 'INR', 'KRW', 'AED', 'SAR']) as c),
  coin as (select unnest(array['BTC', 'ETH', 'LTC', 'BCH', 'XRP', 'XLM', 'EOS', 'ADA', 'DOT', 'LNK', 'UNI', 'XMR',
                               'DSH', 'ETC', 'TRX', 'SOL', 'DOGE', 'AVAX', 'MATIC', 'BAT', 'ENJ', 'MKR', 'YFI',
                               'CMP', 'AAV', 'UST', 'USDT']) as c),
  pair as (
    select left(x.s, 3) as b, right(x.s, 3) as q, 'forex' as k from x
    where length(x.s) = 6 and left(x.s, 3) in (select c from fiat) and right(x.s, 3) in (select c from fiat)
    union all
    select coin.c, substr(x.s, length(coin.c) + 1), 'crypto' from x, coin
    where x.s like coin.c || '%' and substr(x.s, length(coin.c) + 1) in (select c from fiat)
  )
  select coalesce((select b || '/' || q from pair limit 1), x.s),
         (select b from pair limit 1),
         (select q from pair limit 1),
         coalesce((select k from pair limit 1), case when x.s like '%IDX%' then 'index' else 'cfd' end)
  from x
$$;
comment on function market.dukascopy_symbol(text) is
  'EURUSD -> EUR/USD forex, BTCUSD -> BTC/USD crypto, USA500IDXUSD -> itself, index; others cfd.';

create or replace function market.register_dukascopy_instruments(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns void
language sql
as $$
  insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
  select 'dukascopy', x.s, c.symbol, c.base, c.quote, c.asset_class
  from (
    select distinct substring(f.payload from '^\{"instrument":"([A-Z0-9][A-Z0-9._-]{0,39})"') as s
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy' and f.received_at >= p_from and f.received_at < p_to
  ) x
  cross join lateral market.dukascopy_symbol(x.s) c
  where x.s is not null
    and not exists (select 1 from market.instruments i where i.venue = 'dukascopy' and i.venue_symbol = x.s)
  on conflict (venue, venue_symbol) do nothing
$$;

create or replace function staging.dukascopy_path(p_instrument text, p_stream text, p_side text, p_start timestamptz)
returns text
language sql
immutable parallel safe
as $$
  -- The datafeed path of a file; its month is 0-based.
  select p_instrument || '/' || to_char(t, 'YYYY') ||
         case p_stream
           when 'ticks' then '/' || m0 || to_char(t, '/DD/HH24') || 'h_ticks.bi5'
           when 'candles_m1' then '/' || m0 || to_char(t, '/DD/') || upper(p_side) || '_candles_min_1.bi5'
           when 'candles_h1' then '/' || m0 || '/' || upper(p_side) || '_candles_hour_1.bi5'
           when 'candles_d1' then '/' || upper(p_side) || '_candles_day_1.bi5'
         end
  from (select p_start at time zone 'UTC' as t) x
  cross join lateral (select lpad((extract(month from x.t)::integer - 1)::text, 2, '0') as m0) m
$$;
comment on function staging.dukascopy_path(text, text, text, timestamptz) is
  'The datafeed path of a Dukascopy file (EURUSD/2019/01/04/08h_ticks.bi5 is 2019-02-04 08:00 UTC).';

-- unit: the price of one point (1 / point, at the instrument's scale: 0.00001 for point 100000), so
-- price = points * unit, the same number and scale as points / point rounded to that scale.
drop function if exists staging.dukascopy_files(uuid, timestamptz, timestamptz, text[]);
create or replace function staging.dukascopy_files(p_batch uuid, p_from timestamptz, p_to timestamptz, p_streams text[])
returns table (frame_id bigint, batch_id uuid, stream text, received_at timestamptz, source text, payload text,
               d jsonb, path text, instrument_id integer, start_at timestamptz, unit numeric, problem text)
language sql
stable
as $$
  -- Frame-level checks shared by ticks and candles: the envelope a file's records depend on.
  -- Materialized so that each payload is parsed once, not once per reference to d.
  with f as materialized (
    select f.*, case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy' and f.stream = any (p_streams)
      and f.received_at >= p_from and f.received_at < p_to
  ), s as materialized (
    select f.*,
           case when jsonb_typeof(f.d) = 'object'
                 and f.d->>'start' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00:00Z$'
                 and pg_input_is_valid(f.d->>'start', 'timestamptz')
                then (f.d->>'start')::timestamptz end as start_at,
           case f.stream when 'ticks' then 'hour' when 'candles_m1' then 'day' when 'candles_h1' then 'month'
                         else 'year' end as period,
           -- The datafeed path: the request of a landed file, or of a fetch (GET /<path> <status>).
           substring(f.request from '^(?:GET /)?([^ ]+)') as path
    from f
  )
  select s.frame_id, s.batch_id, s.stream, s.received_at, s.source, s.payload, s.d, s.path, i.instrument_id, s.start_at,
         case when staging.is_int(s.d->'point') and s.d->>'point' ~ '^10{0,9}$'
              then round(1 / (s.d->>'point')::numeric, length(s.d->>'point') - 1) end,
         case
           when s.d is null then 'payload is not valid JSON'
           when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
           when s.d->>'format' = 'bi5-undecodable'
             then 'file does not decode (' || coalesce(s.d->>'bytes', '?') || ' bytes): ' || coalesce(s.d->>'error', '(no reason)')
           when not coalesce(s.d->>'format' = any (case when s.stream = 'ticks' then array['bi5-ticks-v2', 'bi5-ticks-v1']
                                                        else array['bi5-candles-v1'] end), false)
             then 'format ' || coalesce(s.d->>'format', '(none)') || ' does not fit stream ' || s.stream
           when i.instrument_id is null then 'missing or unknown instrument: ' || coalesce((s.d->'instrument')::text, '(none)')
           when not staging.is_int(s.d->'point') or s.d->>'point' !~ '^10{0,9}$'
             then 'point is not a power of ten up to 1e9: ' || coalesce((s.d->'point')::text, '(none)')
           when s.start_at is null then 'start is not a UTC time on the hour: ' || coalesce((s.d->'start')::text, '(none)')
           when date_trunc(s.period, s.start_at, 'UTC') <> s.start_at
             then 'start ' || (s.d->>'start') || ' is not the start of a ' || s.period
           when s.start_at > s.received_at then 'start ' || (s.d->>'start') || ' is after the file was received'
           when s.stream <> 'ticks' and s.d->>'side' is distinct from 'bid' and s.d->>'side' is distinct from 'ask'
             then 'side is neither bid nor ask: ' || coalesce((s.d->'side')::text, '(none)')
           when s.path is distinct from staging.dukascopy_path(s.d->>'instrument', s.stream, s.d->>'side', s.start_at)
             then 'request ' || coalesce(s.request, '(none)') || ' is not the file of ' || (s.d->>'instrument') || ' from '
                  || (s.d->>'start') || ' (expected ' || staging.dukascopy_path(s.d->>'instrument', s.stream, s.d->>'side', s.start_at)
                  || ', month 0-based)'
           when s.d->>'format' = 'bi5-ticks-v2'
             then case when not staging.is_int(s.d->'records') or (s.d->>'records')::bigint not between 0 and 100000000
                       then 'records is not a count of records: ' || left(coalesce((s.d->'records')::text, '(none)'), 80) end
           when jsonb_typeof(s.d->'records') is distinct from 'array' then 'records is not an array'
         end
  from s
  left join market.instruments i on i.venue = 'dukascopy' and i.venue_symbol = s.d->>'instrument'
$$;

create or replace function staging.normalize_dukascopy_ticks_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
-- A batch's files and their records stay in memory: at the default work_mem every step below
-- spilled to disk and was read back once per file. Twelve busy hour files, as a backfill lands
-- them, are about 25 MB of text, and each step holds about as much; the limit leaves room for
-- batches four times that, and a larger one spills as before.
set work_mem = '128MB'
as $$
  with files as materialized (
    -- Tick files not of format v2 (v1, or refused as a whole: quarantined here); v2 files, whose
    -- records are columns, are staging.normalize_dukascopy_tick_blocks_v1's.
    select f.*, staging.epoch_us_of(f.start_at) as start_us
    from staging.dukascopy_files(p_batch, p_from, p_to, array['ticks']) f
    where f.d->>'format' is distinct from 'bi5-ticks-v2'
  ), fast as materialized (
    -- Files whose records all have the decoder's shape ([int, int, int, "decimal", "decimal"]) are
    -- cut into records and fields as text (several times faster than one jsonb element at a
    -- time); any other file is read element by element (slow, below), which gives each record it
    -- refuses its own reason. Each carries what its records need of the file, so the records are
    -- not joined back to the files (which hold the payloads).
    select f.frame_id, f.instrument_id, f.start_at, f.start_us, f.unit, f.received_at, f.source, x.txt
    from files f
    cross join lateral (select (f.d->'records')::text as txt) x
    where f.problem is null and jsonb_array_length(f.d->'records') > 0
      and x.txt ~ '^\[(\[-?[0-9]+, -?[0-9]+, -?[0-9]+, "[0-9]+(\.[0-9]+)?", "[0-9]+(\.[0-9]+)?"\](, |\]$))+$'
  ), fast_files as materialized (
    select frame_id from fast
  ), fast_items as (
    select f.frame_id, f.instrument_id, f.start_at, f.start_us, f.unit, f.received_at, f.source, (u.n - 1)::integer as item,
           c.ms, c.ask, c.bid, c.av, c.bv, null::text as r,
           case
             when not c.ms between 0 and 3599999 then 'time offset ' || c.ms || ' ms is outside the hour'
             when c.ask <= 0 then 'ask ' || c.ask || ' is not positive'
             when c.bid <= 0 then 'bid ' || c.bid || ' is not positive'
           end as problem
    from fast f
    -- [[994, 114545, 114543, "1", "2.06"], [...]] -> one text per record -> its five fields
    cross join lateral string_to_table(substr(f.txt, 3, length(f.txt) - 4), '], [') with ordinality u(t, n)
    cross join lateral (select split_part(u.t, ', ', 1)::bigint as ms, split_part(u.t, ', ', 2)::numeric as ask,
                               split_part(u.t, ', ', 3)::numeric as bid, btrim(split_part(u.t, ', ', 4), '"')::numeric as av,
                               btrim(split_part(u.t, ', ', 5), '"')::numeric as bv) c
  ), slow as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.start_us, f.unit, f.received_at, f.source, (e.n - 1)::integer as item,
           e.r,
           case
             when jsonb_typeof(e.r) <> 'array' then 'expected [ms, ask, bid, askVolume, bidVolume], received ' || left(e.r::text, 80)
             when jsonb_array_length(e.r) <> 5 then 'expected [ms, ask, bid, askVolume, bidVolume], received ' || left(e.r::text, 80)
             when not (staging.is_int(e.r->0) and staging.is_int(e.r->1) and staging.is_int(e.r->2))
               then 'time offset, ask or bid is not an integer: ' || left(e.r::text, 80)
             when not (e.r->>0)::bigint between 0 and 3599999
               then 'time offset ' || (e.r->>0) || ' ms is outside the hour'
             when (e.r->>1)::bigint <= 0 then 'ask ' || (e.r->>1) || ' is not positive'
             when (e.r->>2)::bigint <= 0 then 'bid ' || (e.r->>2) || ' is not positive'
             when jsonb_typeof(e.r->3) <> 'string' or not staging.is_decimal(e.r->>3)
               then 'ask volume is not a non-negative decimal: ' || (e.r->3)::text
             when jsonb_typeof(e.r->4) <> 'string' or not staging.is_decimal(e.r->>4)
               then 'bid volume is not a non-negative decimal: ' || (e.r->4)::text
           end as problem
    from files f
    cross join lateral jsonb_array_elements(f.d->'records') with ordinality e(r, n)
    where f.problem is null and not exists (select 1 from fast_files x where x.frame_id = f.frame_id)
  ), items as materialized (
    select i.frame_id, i.instrument_id, i.start_at, i.start_us, i.unit, i.received_at, i.source, i.item,
           i.ms::bigint as ms, i.ask, i.bid, i.av, i.bv, i.r, i.problem
    from fast_items i
    union all
    select s.frame_id, s.instrument_id, s.start_at, s.start_us, s.unit, s.received_at, s.source, s.item,
           case when s.problem is null then (s.r->>0)::bigint end, case when s.problem is null then (s.r->>1)::numeric end,
           case when s.problem is null then (s.r->>2)::numeric end, case when s.problem is null then (s.r->>3)::numeric end,
           case when s.problem is null then (s.r->>4)::numeric end, s.r::text, s.problem
    from slow s
  ), ranked as materialized (
    select i.*, row_number() over (partition by i.frame_id, i.ms order by i.item) - 1 as k
    from items i
    where i.problem is null
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    -- points * unit: cheaper than a division per price.
    select r.instrument_id, r.start_at + r.ms * interval '1 millisecond', r.start_us + r.ms * 1000 + r.k,
           r.bid * r.unit, trim_scale(r.bv * 1000000), r.ask * r.unit, trim_scale(r.av * 1000000),
           'venue', r.received_at, r.source, r.frame_id
    from ranked r
    where r.k < 1000
      -- an hour kept as a block (a v2 file) is not stored again as rows
      and not exists (select 1 from market.quote_blocks b
                      where b.instrument_id = r.instrument_id and b.hour_start = r.start_at)
    on conflict do nothing
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from files where problem is not null
    union all
    select frame_id, item, problem, coalesce(r, format('[%s, %s, %s, "%s", "%s"]', ms, ask, bid, av, bv)) from items
    where problem is not null
    union all
    select frame_id, item, 'more than 1000 ticks in millisecond ' || ms || ' of the hour',
           coalesce(r, format('[%s, %s, %s, "%s", "%s"]', ms, ask, bid, av, bv))
    from ranked where k >= 1000
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'dukascopy', f.stream, f.received_at, b.payload, b.problem,
           'normalize_dukascopy_ticks_v1'
    from bad b join files f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'files', (select count(*) from files where problem is null),
    'files_empty', (select count(*) from files where problem is null and jsonb_array_length(d->'records') = 0),
    'rows_received', (select count(*) from items),
    'rows_new', (select count(*) from ins),
    'quotes', (select count(*) from ins),
    'quotes_duplicate', (select count(*) from ranked where k < 1000) - (select count(*) from ins),
    'pages_quarantined', (select count(*) from files where problem is not null),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_dukascopy_tick_blocks_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- Tick files of format v2: the records are columns (staging.tick_columns), checked whole with
  -- array comparisons and kept whole as the hour's block in market.quote_blocks. A file with a
  -- record SQL refuses is read record by record: each refused record is quarantined with its
  -- reason, and the others make the block.
  with files as materialized (
    select x.*,
           -- every record passes (array comparisons, several times faster than record by record)
           x.problem is null and (x.n = 0 or (0 <= all (x.ms) and 3599999 >= all (x.ms) and 0 < all (x.ask) and 0 < all (x.bid)
                                              and 0 <= all (x.ask_volume) and 'Infinity' > all (x.ask_volume)
                                              and 0 <= all (x.bid_volume) and 'Infinity' > all (x.bid_volume))) as clean
    from (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload, f.path, f.instrument_id, f.start_at,
           f.unit, case when f.problem is null then (f.d->>'records')::integer end as n, c.ms, c.ask, c.bid, c.ask_volume, c.bid_volume,
           case
             when f.problem is not null then f.problem
             when c.frame_id is null then 'the file''s records were not landed (no staging.tick_columns row for the frame)'
             when cardinality(c.ms) <> (f.d->>'records')::integer or cardinality(c.ask) <> (f.d->>'records')::integer
                  or cardinality(c.bid) <> (f.d->>'records')::integer or cardinality(c.ask_volume) <> (f.d->>'records')::integer
                  or cardinality(c.bid_volume) <> (f.d->>'records')::integer
               then 'expected ' || (f.d->>'records') || ' records in every column, received ms ' || cardinality(c.ms)
                    || ', ask ' || cardinality(c.ask) || ', bid ' || cardinality(c.bid) || ', ask_volume '
                    || cardinality(c.ask_volume) || ', bid_volume ' || cardinality(c.bid_volume)
           end as problem
    from staging.dukascopy_files(p_batch, p_from, p_to, array['ticks']) f
    -- landed with its frame: after the batch's first receive time (a day of leeway for a database
    -- clock behind ours), so only the staging partitions of the batch's days are read
    left join staging.tick_columns c on c.frame_id = f.frame_id and c.landed_at >= p_from - interval '1 day'
    where f.d->>'format' = 'bi5-ticks-v2'
    ) x
  ), items as materialized (
    select f.frame_id, (u.n - 1)::integer as item, u.ms, u.ask, u.bid, u.av, u.bv,
           case
             when not u.ms between 0 and 3599999 then 'time offset ' || u.ms || ' ms is outside the hour'
             when u.ask <= 0 then 'ask ' || u.ask || ' is not positive'
             when u.bid <= 0 then 'bid ' || u.bid || ' is not positive'
             when not (u.av >= 0 and u.av < 'Infinity') then 'ask volume is not a non-negative decimal: "' || u.av || '"'
             when not (u.bv >= 0 and u.bv < 'Infinity') then 'bid volume is not a non-negative decimal: "' || u.bv || '"'
           end as problem
    from files f
    cross join lateral unnest(f.ms, f.ask, f.bid, f.ask_volume, f.bid_volume) with ordinality u(ms, ask, bid, av, bv, n)
    where f.problem is null and not f.clean
  ), blocks as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.unit, f.received_at, f.source, f.n as ticks,
           f.ms, f.ask, f.bid, f.ask_volume, f.bid_volume
    from files f
    where f.clean and f.n > 0
    union all
    select f.frame_id, f.instrument_id, f.start_at, f.unit, f.received_at, f.source, g.ticks, g.ms, g.ask, g.bid, g.av, g.bv
    from files f
    join (select i.frame_id, count(*)::integer as ticks, array_agg(i.ms order by i.item) as ms,
                 array_agg(i.ask order by i.item) as ask, array_agg(i.bid order by i.item) as bid,
                 array_agg(i.av order by i.item) as av, array_agg(i.bv order by i.item) as bv
          from items i where i.problem is null group by i.frame_id) g using (frame_id)
  ), stored as materialized (
    -- What the hours hold already (the callers hold each hour's lock, market.lock_quote_hours): a
    -- block (the upsert replaces it only while it comes from a file fetched before its hour ended,
    -- by a later file), or rows (a v1 file or the JSON API), to which the file's ticks are added as rows.
    select b.frame_id, q.ticks as old_ticks,
           q.hour_start is null and exists (select 1 from market.quotes r where r.instrument_id = b.instrument_id
                                              and r.quoted_at >= b.start_at and r.quoted_at < b.start_at + interval '1 hour')
             as in_rows
    from blocks b
    left join market.quote_blocks q on q.instrument_id = b.instrument_id and q.hour_start = b.start_at
  ), ins as (
    insert into market.quote_blocks as q (instrument_id, hour_start, ticks, unit, ms, ask, bid, ask_volume, bid_volume,
                                          received_at, source, frame_id)
    select distinct on (b.instrument_id, b.start_at) b.instrument_id, b.start_at, b.ticks, b.unit, b.ms, b.ask, b.bid,
           b.ask_volume, b.bid_volume, b.received_at, b.source, b.frame_id
    from blocks b
    join stored s using (frame_id)
    where not s.in_rows
    order by b.instrument_id, b.start_at, b.received_at desc, b.frame_id desc
    on conflict (instrument_id, hour_start) do update
      set ticks = excluded.ticks, unit = excluded.unit, ms = excluded.ms, ask = excluded.ask, bid = excluded.bid,
          ask_volume = excluded.ask_volume, bid_volume = excluded.bid_volume, received_at = excluded.received_at,
          source = excluded.source, frame_id = excluded.frame_id, sync_xid = pg_current_xact_id(),
          sync_id = nextval('market.sync_id_seq')
      where q.received_at < q.hour_start + interval '1 hour' and excluded.received_at > q.received_at
    returning q.frame_id, q.ticks
  ), as_rows as (
    -- A file of an hour held as rows completes those rows (keyed as a v1 file's ticks are).
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select t.instrument_id, t.start_at + t.ms * interval '1 millisecond',
           staging.epoch_us_of(t.start_at) + t.ms::bigint * 1000 + t.k, t.bid * t.unit, trim_scale(t.bv * 1000000),
           t.ask * t.unit, trim_scale(t.av * 1000000), 'venue', t.received_at, t.source, t.frame_id
    from (select b.frame_id, b.instrument_id, b.start_at, b.unit, b.received_at, b.source, u.ms, u.ask, u.bid, u.av, u.bv,
                 row_number() over (partition by b.frame_id, u.ms order by u.n) - 1 as k
          from blocks b
          join stored s using (frame_id)
          cross join lateral unnest(b.ms, b.ask, b.bid, b.ask_volume, b.bid_volume) with ordinality u(ms, ask, bid, av, bv, n)
          where s.in_rows) t
    where t.k < 1000
    on conflict do nothing
    returning 1
  ), bad as (
    select f.frame_id, -1 as item, f.problem, f.payload from files f where f.problem is not null
    union all
    select i.frame_id, i.item, i.problem, format('[%s, %s, %s, "%s", "%s"]', i.ms, i.ask, i.bid, i.av, i.bv)
    from items i where i.problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'dukascopy', f.stream, f.received_at, b.payload, b.problem,
           'normalize_dukascopy_tick_blocks_v1'
    from bad b join files f using (frame_id)
    on conflict (frame_id, item) do nothing
  ), written as (
    -- A replaced block's new ticks are those beyond the ones it had (a later file of an hour holds
    -- the earlier file's ticks and more).
    select coalesce(sum(greatest(i.ticks - coalesce(s.old_ticks, 0), 0)), 0) + (select count(*) from as_rows) as new_ticks
    from ins i join stored s using (frame_id)
  )
  select jsonb_build_object(
    'files', (select count(*) from files where problem is null),
    'files_empty', (select count(*) from files where problem is null and n = 0),
    'rows_received', (select coalesce(sum(n), 0) from files where problem is null),
    'rows_new', (select new_ticks from written),
    'quotes', (select new_ticks from written),
    'quotes_duplicate', (select coalesce(sum(ticks), 0) from blocks) - (select new_ticks from written),
    'pages_quarantined', (select count(*) from files where problem is not null),
    'quarantined', (select count(*) from bad))
$$;
comment on function staging.normalize_dukascopy_tick_blocks_v1(uuid, timestamptz, timestamptz) is
  'Dukascopy tick files of format v2 (records as columns in staging.tick_columns) to market.quote_blocks, an hour a row.';

create or replace function staging.normalize_dukascopy_candles_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with files as materialized (
    select f.*, tf.timeframe, tf.step, -- Months and years are calendar lengths in UTC, whatever the session's time zone.
           extract(epoch from ((f.start_at at time zone 'UTC') + tf.period) - (f.start_at at time zone 'UTC'))::bigint
             as period_s
    from staging.dukascopy_files(p_batch, p_from, p_to, array['candles_m1', 'candles_h1', 'candles_d1']) f
    join (values ('candles_m1', '1m', 60, interval '1 day'), ('candles_h1', '1h', 3600, interval '1 month'),
                 ('candles_d1', '1d', 86400, interval '1 year')) tf(stream, timeframe, step, period)
      on tf.stream = f.stream
  ), items as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.unit, f.received_at, f.source, f.timeframe, f.step,
           f.d->>'side' as side, (e.n - 1)::integer as item, e.r,
           case
             when jsonb_typeof(e.r) <> 'array' then 'expected [s, open, close, low, high, volume], received ' || left(e.r::text, 80)
             when jsonb_array_length(e.r) <> 6 then 'expected [s, open, close, low, high, volume], received ' || left(e.r::text, 80)
             when not (staging.is_int(e.r->0) and staging.is_int(e.r->1) and staging.is_int(e.r->2)
                       and staging.is_int(e.r->3) and staging.is_int(e.r->4))
               then 'time offset or a price is not an integer: ' || left(e.r::text, 80)
             when (e.r->>0)::bigint < 0 or (e.r->>0)::bigint >= f.period_s
               then 'time offset ' || (e.r->>0) || ' s is outside the file''s ' || f.period_s || ' s'
             when (e.r->>0)::bigint % f.step <> 0
               then 'time offset ' || (e.r->>0) || ' s is not a multiple of ' || f.step || ' s'
             when least((e.r->>1)::bigint, (e.r->>2)::bigint, (e.r->>3)::bigint, (e.r->>4)::bigint) <= 0
               then 'a price is not positive: ' || left(e.r::text, 80)
             when (e.r->>3)::bigint > least((e.r->>1)::bigint, (e.r->>2)::bigint)
                  or (e.r->>4)::bigint < greatest((e.r->>1)::bigint, (e.r->>2)::bigint)
               then 'low or high does not bound open and close: ' || left(e.r::text, 80)
             when jsonb_typeof(e.r->5) <> 'string' or not staging.is_decimal(e.r->>5)
               then 'volume is not a non-negative decimal: ' || (e.r->5)::text
           end as problem
    from files f
    cross join lateral jsonb_array_elements(f.d->'records') with ordinality e(r, n)
    where f.problem is null
  ), good as materialized (
    -- One row per candle key (a file landed twice in a batch: the later one), and whether the
    -- key was there before this statement (one index probe each), to count inserts apart from
    -- replacements without joining the upsert's rows back to these (that join was quadratic).
    select distinct on (g.instrument_id, g.timeframe, g.side, g.bucket) g.*,
           exists (select 1 from market.candles c
                   where c.instrument_id = g.instrument_id and c.timeframe = g.timeframe
                     and c.price_side = g.side and c.bucket = g.bucket) as existed
    from (select i.*, i.start_at + (i.r->>0)::bigint * interval '1 second' as bucket
          from items i where i.problem is null) g
    order by g.instrument_id, g.timeframe, g.side, g.bucket, g.received_at desc, g.frame_id desc
  ), ups as (
    insert into market.candles as c (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, g.side,
           (g.r->>1)::numeric * g.unit, (g.r->>4)::numeric * g.unit, (g.r->>3)::numeric * g.unit, (g.r->>2)::numeric * g.unit,
           trim_scale((g.r->>5)::numeric * 1000000), 'quoted_size',
           g.bucket + g.step * interval '1 second' <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not c.complete
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from files where problem is not null
    union all
    select frame_id, item, problem, r::text from items where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'dukascopy', f.stream, f.received_at, b.payload, b.problem,
           'normalize_dukascopy_candles_v1'
    from bad b join files f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'files', (select count(*) from files where problem is null),
    'files_empty', (select count(*) from files where problem is null and jsonb_array_length(d->'records') = 0),
    'rows_received', (select count(*) from items),
    -- A key that was not there is inserted; the other rows the upsert wrote replaced incomplete candles.
    'rows_new', (select count(*) from good where not existed),
    'candles', (select count(*) from good where not existed),
    'candles_updated', (select count(*) from ups) - (select count(*) from good where not existed),
    'candles_duplicate', (select count(*) from items where problem is null) - (select count(*) from ups),
    'pages_quarantined', (select count(*) from files where problem is not null),
    'quarantined', (select count(*) from bad))
$$;

create or replace function staging.normalize_dukascopy_other_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown dukascopy stream ' || f.stream, 'normalize_dukascopy_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('ticks', 'candles_m1', 'candles_h1', 'candles_d1')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$$;

create or replace function staging.record_dukascopy_files(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns void
language sql
as $$
  -- Every file of the batch read whole (each record stored or quarantined with its reason), empty
  -- ones included, in market.venue_files: a rerun or resumed plan fetches only the others.
  insert into market.venue_files as v (venue, path, instrument_id, stream, period_from, period_to, records, complete,
                                       frame_id, received_at)
  select distinct on (f.path) 'dukascopy', f.path, f.instrument_id, f.stream, f.start_at, e.period_to,
         case when f.d->>'format' = 'bi5-ticks-v2' then (f.d->>'records')::integer else jsonb_array_length(f.d->'records') end,
         e.period_to <= f.received_at, f.frame_id, f.received_at
  from staging.dukascopy_files(p_batch, p_from, p_to, array['ticks', 'candles_m1', 'candles_h1', 'candles_d1']) f
  -- Months and years are calendar lengths in UTC, whatever the session's time zone.
  cross join lateral (select ((f.start_at at time zone 'UTC')
                              + case f.stream when 'ticks' then interval '1 hour' when 'candles_m1' then interval '1 day'
                                              when 'candles_h1' then interval '1 month' else interval '1 year' end)
                             at time zone 'UTC' as period_to) e
  where f.problem is null
    -- refused whole by a reader (a tick file's columns missing or miscounted): not read
    and not exists (select 1 from staging.quarantine q where q.frame_id = f.frame_id and q.item = -1)
  order by f.path, f.received_at desc, f.frame_id desc
  on conflict (venue, path) do update
    set records = excluded.records, complete = excluded.complete, frame_id = excluded.frame_id,
        received_at = excluded.received_at
    where excluded.received_at >= v.received_at
$$;
comment on function staging.record_dukascopy_files(uuid, timestamptz, timestamptz) is
  'The Dukascopy files of a batch read whole, recorded in market.venue_files (the normalizers call it after their readers).';

create or replace function staging.dukascopy_check_empty_hours(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
as $$
  -- The hours of ticks this batch recorded (market.venue_files, either source): an empty one is
  -- the venue saying it has no ticks, normal while the market is closed and a gap of the venue's
  -- while the instrument's calendar expects quotes; a later hour with ticks resolves its finding.
  with hours as materialized (
    select v.*
    from market.venue_files v
    join staging.frames f on f.frame_id = v.frame_id
    where f.batch_id = p_batch and f.received_at >= p_from and f.received_at < p_to
      and v.venue in ('dukascopy', 'dukascopy-json') and v.stream = 'ticks'
  ), empty_open as (
    select distinct on (h.instrument_id, h.period_from) h.instrument_id, h.path, h.period_from, h.period_to, e.expected
    from hours h
    cross join lateral (select quality.expected_hours(quality.instrument_calendar(h.instrument_id), h.period_from,
                                                      h.period_to) as expected) e
    where h.records = 0 and not isempty(e.expected)
    order by h.instrument_id, h.period_from, h.received_at desc
  ), flagged as (
    insert into quality.findings as q (kind, label, severity, instrument_id, source, window_from, window_to, value,
                                       detail, detector)
    select 'gap', 'venue_outage', 'warning', e.instrument_id, 'dukascopy', e.period_from, e.period_to,
           (select sum(extract(epoch from upper(r) - lower(r)) / 60) from unnest(e.expected) r),
           jsonb_build_object('evidence', 'empty file in expected hours', 'file', e.path, 'expected', e.expected::text),
           'dukascopy_files'
    from empty_open e
    on conflict on constraint findings_key do update
      set label = excluded.label, severity = excluded.severity, window_to = excluded.window_to, value = excluded.value,
          detail = excluded.detail, detector = excluded.detector, last_seen_at = now(), resolved_at = null
    returning 1
  ), refilled as (
    update quality.findings q set resolved_at = now()
    from hours h
    where h.records > 0 and q.detector = 'dukascopy_files' and q.kind = 'gap' and q.source = 'dukascopy'
      and q.instrument_id = h.instrument_id and q.window_from = h.period_from and q.resolved_at is null
    returning 1
  )
  select jsonb_build_object('hours_empty_open', (select count(*) from flagged))
$$;
comment on function staging.dukascopy_check_empty_hours(uuid, timestamptz, timestamptz) is
  'Empty Dukascopy tick hours of a batch checked against the instrument''s calendar: in expected hours a gap finding (venue_outage), closed hours nothing.';

create or replace function staging.normalize_dukascopy_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
  v_blocks boolean;
  v_rows boolean;
  v_other boolean;
  v_hours integer;
begin
  -- Each reader runs only for what the batch holds (a backfill's batch is one kind of file), read
  -- as the readers read it: a tick file of format v2 is the blocks reader's, any other the rows reader's.
  perform market.register_dukascopy_instruments(p_batch, p_from, p_to);
  select coalesce(bool_or(f.d->>'format' = 'bi5-ticks-v2'), false),
         coalesce(bool_or(f.d->>'format' is distinct from 'bi5-ticks-v2'), false),
         market.lock_quote_hours(array_agg(f.instrument_id), array_agg(f.start_at))
    into v_blocks, v_rows, v_hours
    from staging.dukascopy_files(p_batch, p_from, p_to, array['ticks']) f;
  v_other := exists (select 1 from staging.frames f
                     where f.batch_id = p_batch and f.venue = 'dukascopy' and f.received_at >= p_from and f.received_at < p_to
                       and f.stream <> 'ticks');
  if v_blocks then
    v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_tick_blocks_v1(p_batch, p_from, p_to));
  end if;
  if v_rows then
    v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_ticks_v1(p_batch, p_from, p_to));
  end if;
  if v_other then
    v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_candles_v1(p_batch, p_from, p_to));
    v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_other_v1(p_batch, p_from, p_to));
  end if;
  perform staging.record_dukascopy_files(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.dukascopy_check_empty_hours(p_batch, p_from, p_to));
  return v_counts;
end
$$;
comment on function staging.normalize_dukascopy_v1(uuid, timestamptz, timestamptz) is
  'Dukascopy .bi5 files (frames from ingesters/dukascopy/land.ts): ticks to market.quote_blocks (v2 files) or market.quotes '
  '(v1 files), candles to market.candles.';

insert into staging.normalizers (venue, version, valid_from, fn)
values ('dukascopy', 'v1', '-infinity', 'staging.normalize_dukascopy_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
