-- table market.agg_trades
  instrument_id integer not null
  traded_at timestamp with time zone not null
  agg_id bigint not null
  first_trade_seq bigint not null
  last_trade_seq bigint not null
  price numeric not null
  size numeric not null
  side text not null
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  constraint agg_trades_pkey: PRIMARY KEY (instrument_id, agg_id, traded_at)
  constraint agg_trades_price_check: CHECK (((price > (0)::numeric) AND (price <> 'NaN'::numeric) AND (price <> 'Infinity'::numeric)))
  constraint agg_trades_side_check: CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text])))
  constraint agg_trades_size_check: CHECK (((size > (0)::numeric) AND (size <> 'NaN'::numeric) AND (size <> 'Infinity'::numeric)))
  CREATE INDEX agg_trades_instrument_time_idx ON market.agg_trades USING btree (instrument_id, traded_at)
  CREATE UNIQUE INDEX agg_trades_pkey ON market.agg_trades USING btree (instrument_id, agg_id, traded_at)
-- view market.all_quotes
SELECT q.instrument_id,
    date_bin('01:00:00'::interval, q.quoted_at, '1970-01-01 00:00:00+00'::timestamp with time zone) AS hour_start,
    q.quoted_at,
    q.seq,
    q.bid,
    q.bid_size,
    q.ask,
    q.ask_size,
    q.tradeable,
    q.time_source,
    q.received_at,
    q.source,
    q.frame_id
   FROM market.quotes q
UNION ALL
 SELECT t.instrument_id,
    t.hour_start,
    t.quoted_at,
    t.seq,
    t.bid,
    t.bid_size,
    t.ask,
    t.ask_size,
    t.tradeable,
    t.time_source,
    t.received_at,
    t.source,
    t.frame_id
   FROM market.quote_block_ticks t;
-- table market.bar_invalidations
  instrument_id integer not null
  bucket timestamp with time zone not null
  invalidated_at timestamp with time zone not null default now()
  constraint bar_invalidations_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE INDEX bar_invalidations_bucket_idx ON market.bar_invalidations USING btree (bucket)
  CREATE UNIQUE INDEX bar_invalidations_pkey ON market.bar_invalidations USING btree (instrument_id, bucket)
-- view market.bars_15m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_15m_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_15m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_15m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_15m_data_pkey ON market.bars_15m_data USING btree (instrument_id, bucket)
-- view market.bars_1d
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_1d_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_1d_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_1d_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1d_data_pkey ON market.bars_1d_data USING btree (instrument_id, bucket)
-- view market.bars_1h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_1h_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_1h_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_1h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1h_data_pkey ON market.bars_1h_data USING btree (instrument_id, bucket)
-- view market.bars_1m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_1m_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_1m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_1m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1m_data_pkey ON market.bars_1m_data USING btree (instrument_id, bucket)
-- view market.bars_4h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_4h_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_4h_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_4h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_4h_data_pkey ON market.bars_4h_data USING btree (instrument_id, bucket)
-- view market.bars_5m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades
   FROM market.bars_5m_data b
     LEFT JOIN market.instruments i USING (instrument_id);
-- table market.bars_5m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric not null
  notional numeric not null
  trades bigint not null
  vwap numeric
  constraint bars_5m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_5m_data_pkey ON market.bars_5m_data USING btree (instrument_id, bucket)
-- view market.bbo
SELECT i.venue,
    i.symbol,
    q.instrument_id,
    q.quoted_at,
    q.seq,
    q.bid,
    q.bid_size,
    q.ask,
    q.ask_size,
    (q.bid + q.ask) / 2::numeric AS mid,
    q.ask - q.bid AS spread,
    q.tradeable,
    q.time_source,
    q.received_at,
    q.source,
    q.frame_id
   FROM market.all_quotes q
     JOIN market.instruments i USING (instrument_id);
-- view market.book
SELECT i.venue,
    i.symbol,
    l.instrument_id,
    l.side,
    row_number() OVER (PARTITION BY l.instrument_id, l.side ORDER BY (
        CASE
            WHEN l.side = 'bid'::text THEN - l.price
            ELSE l.price
        END)) AS level,
    l.price,
    l.size,
    l.update_id,
    l.updated_at,
    s.in_sync
   FROM market.book_levels l
     JOIN market.instruments i USING (instrument_id)
     JOIN market.book_state s USING (instrument_id);
-- table market.book_levels
  instrument_id integer not null
  side text not null
  price numeric not null
  size numeric not null
  update_id bigint not null
  updated_at timestamp with time zone not null
  constraint book_levels_pkey: PRIMARY KEY (instrument_id, side, price)
  constraint book_levels_price_check: CHECK (((price > (0)::numeric) AND (price <> 'NaN'::numeric) AND (price <> 'Infinity'::numeric)))
  constraint book_levels_side_check: CHECK ((side = ANY (ARRAY['bid'::text, 'ask'::text])))
  constraint book_levels_size_check: CHECK (((size >= (0)::numeric) AND (size <> 'NaN'::numeric) AND (size <> 'Infinity'::numeric)))
  CREATE UNIQUE INDEX book_levels_pkey ON market.book_levels USING btree (instrument_id, side, price)
-- view market.book_snapshot_levels
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.taken_at,
    b.update_id,
    b.origin,
    b.bid_prices,
    b.bid_sizes,
    b.ask_prices,
    b.ask_sizes,
    b.received_at
   FROM market.book_snapshots b
     JOIN market.instruments i USING (instrument_id);
-- table market.book_snapshots
  instrument_id integer not null
  taken_at timestamp with time zone not null
  update_id bigint not null
  origin text not null
  bid_prices numeric[] not null
  bid_sizes numeric[] not null
  ask_prices numeric[] not null
  ask_sizes numeric[] not null
  received_at timestamp with time zone not null
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint book_snapshots_origin_check: CHECK ((origin = ANY (ARRAY['venue'::text, 'derived'::text])))
  constraint book_snapshots_pkey: PRIMARY KEY (instrument_id, update_id, origin, taken_at)
  CREATE INDEX book_snapshots_sync_idx ON ONLY market.book_snapshots USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX book_snapshots_pkey ON ONLY market.book_snapshots USING btree (instrument_id, update_id, origin, taken_at)
-- table market.book_snapshots_default
  instrument_id integer not null
  taken_at timestamp with time zone not null
  update_id bigint not null
  origin text not null
  bid_prices numeric[] not null
  bid_sizes numeric[] not null
  ask_prices numeric[] not null
  ask_sizes numeric[] not null
  received_at timestamp with time zone not null
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint book_snapshots_default_pkey: PRIMARY KEY (instrument_id, update_id, origin, taken_at)
  constraint book_snapshots_origin_check: CHECK ((origin = ANY (ARRAY['venue'::text, 'derived'::text])))
  CREATE INDEX book_snapshots_default_sync_xid_sync_id_idx ON market.book_snapshots_default USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX book_snapshots_default_pkey ON market.book_snapshots_default USING btree (instrument_id, update_id, origin, taken_at)
  partition DEFAULT
-- table market.book_state
  instrument_id integer not null
  last_update_id bigint not null
  snapshot_update_id bigint not null
  in_sync boolean not null
  synced_at timestamp with time zone
  updated_at timestamp with time zone not null
  last_snapshot_at timestamp with time zone
  diffs_applied bigint not null default 0
  diffs_skipped bigint not null default 0
  breaks bigint not null default 0
  constraint book_state_pkey: PRIMARY KEY (instrument_id)
  CREATE UNIQUE INDEX book_state_pkey ON market.book_state USING btree (instrument_id)
-- table market.candles
  instrument_id integer not null
  timeframe text not null
  bucket timestamp with time zone not null
  price_side text not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric
  volume_kind text
  trade_count bigint
  complete boolean not null
  source text not null
  received_at timestamp with time zone not null
  frame_id bigint
  constraint candles_pkey: PRIMARY KEY (instrument_id, timeframe, price_side, bucket)
  constraint candles_price_check: CHECK (((low > (0)::numeric) AND (low <> 'NaN'::numeric) AND (high <> 'NaN'::numeric) AND (high <> 'Infinity'::numeric) AND (open <> 'NaN'::numeric) AND (close <> 'NaN'::numeric) AND (low <= LEAST(open, close)) AND (high >= GREATEST(open, close))))
  constraint candles_price_side_check: CHECK ((price_side = ANY (ARRAY['bid'::text, 'ask'::text, 'mid'::text, 'trade'::text, 'value'::text])))
  constraint candles_timeframe_check: CHECK ((timeframe ~ '^[1-9][0-9]*(s|m|h|d|w|mo)$'::text))
  constraint candles_trade_count_check: CHECK ((trade_count >= 0))
  constraint candles_volume_check: CHECK ((((volume IS NULL) = (volume_kind IS NULL)) AND ((volume IS NULL) OR ((volume >= (0)::numeric) AND (volume <> 'NaN'::numeric) AND (volume <> 'Infinity'::numeric)))))
  constraint candles_volume_kind_check: CHECK ((volume_kind = ANY (ARRAY['base'::text, 'quote'::text, 'tick_count'::text, 'quoted_size'::text])))
  CREATE UNIQUE INDEX candles_pkey ON ONLY market.candles USING btree (instrument_id, timeframe, price_side, bucket)
-- table market.candles_default
  instrument_id integer not null
  timeframe text not null
  bucket timestamp with time zone not null
  price_side text not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  volume numeric
  volume_kind text
  trade_count bigint
  complete boolean not null
  source text not null
  received_at timestamp with time zone not null
  frame_id bigint
  constraint candles_default_pkey: PRIMARY KEY (instrument_id, timeframe, price_side, bucket)
  constraint candles_price_check: CHECK (((low > (0)::numeric) AND (low <> 'NaN'::numeric) AND (high <> 'NaN'::numeric) AND (high <> 'Infinity'::numeric) AND (open <> 'NaN'::numeric) AND (close <> 'NaN'::numeric) AND (low <= LEAST(open, close)) AND (high >= GREATEST(open, close))))
  constraint candles_price_side_check: CHECK ((price_side = ANY (ARRAY['bid'::text, 'ask'::text, 'mid'::text, 'trade'::text, 'value'::text])))
  constraint candles_timeframe_check: CHECK ((timeframe ~ '^[1-9][0-9]*(s|m|h|d|w|mo)$'::text))
  constraint candles_trade_count_check: CHECK ((trade_count >= 0))
  constraint candles_volume_check: CHECK ((((volume IS NULL) = (volume_kind IS NULL)) AND ((volume IS NULL) OR ((volume >= (0)::numeric) AND (volume <> 'NaN'::numeric) AND (volume <> 'Infinity'::numeric)))))
  constraint candles_volume_kind_check: CHECK ((volume_kind = ANY (ARRAY['base'::text, 'quote'::text, 'tick_count'::text, 'quoted_size'::text])))
  CREATE UNIQUE INDEX candles_default_pkey ON market.candles_default USING btree (instrument_id, timeframe, price_side, bucket)
  partition DEFAULT
-- view market.canonical_bars_15m
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('00:15:00'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('00:15:00'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_15m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_15m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '15m'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- view market.canonical_bars_1d
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('1 day'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('1 day'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_1d_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_1d_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '1d'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- view market.canonical_bars_1h
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('01:00:00'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('01:00:00'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_1h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_1h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '1h'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- view market.canonical_bars_1m
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('00:01:00'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('00:01:00'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_1m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_1m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '1m'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- view market.canonical_bars_4h
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('04:00:00'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('04:00:00'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_4h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_4h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '4h'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- view market.canonical_bars_5m
SELECT DISTINCT ON (symbol, bucket) symbol,
    bucket,
    venue AS source,
    instrument_id,
    priority,
    price_basis,
    trim_scale(open) AS open,
    trim_scale(high) AS high,
    trim_scale(low) AS low,
    trim_scale(close) AS close,
    trim_scale(volume) AS volume,
    ticks,
    coverage,
    complete
   FROM ( SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'mid'::text AS price_basis,
            b.open,
            b.high,
            b.low,
            b.close,
            b.ticks::numeric AS volume,
            b.ticks,
            round(b.slots::numeric / market.coverage_slots('00:05:00'::interval)::numeric, 4) AS coverage,
            b.slots >= market.coverage_slots('00:05:00'::interval) AS complete,
            0 AS from_candle
           FROM market.quote_bars_5m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND r.quote_priced
        UNION ALL
         SELECT r.symbol,
            r.venue,
            r.priority,
            b.instrument_id,
            b.bucket,
            'trade'::text,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            NULL::numeric AS "numeric",
            true,
            0
           FROM market.bars_5m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced
        UNION ALL
         SELECT k.symbol,
            k.venue,
            k.priority,
            k.instrument_id,
            k.bucket,
            k.price_side,
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            k.trade_count,
            k."numeric",
            k.complete,
            1
           FROM ( SELECT DISTINCT ON (r.symbol, k_1.instrument_id, k_1.bucket) r.symbol,
                    r.venue,
                    r.priority,
                    k_1.instrument_id,
                    k_1.bucket,
                    k_1.price_side,
                    k_1.open,
                    k_1.high,
                    k_1.low,
                    k_1.close,
                    k_1.volume,
                        CASE
                            WHEN k_1.volume_kind = 'tick_count'::text THEN k_1.volume::bigint
                            ELSE k_1.trade_count
                        END AS trade_count,
                    NULL::numeric AS "numeric",
                    k_1.complete
                   FROM market.candles k_1
                     JOIN market.instrument_source_ranks r ON r.instrument_id = k_1.instrument_id
                  WHERE k_1.timeframe = '5m'::text
                  ORDER BY r.symbol, k_1.instrument_id, k_1.bucket, (array_position(ARRAY['mid'::text, 'trade'::text, 'value'::text, 'bid'::text, 'ask'::text], k_1.price_side))) k) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority, from_candle;
-- table market.index_values
  instrument_id integer not null
  valued_at timestamp with time zone not null
  value numeric not null
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  constraint index_values_pkey: PRIMARY KEY (instrument_id, valued_at)
  constraint index_values_value_check: CHECK (((value > (0)::numeric) AND (value <> 'NaN'::numeric) AND (value <> 'Infinity'::numeric)))
  CREATE UNIQUE INDEX index_values_pkey ON ONLY market.index_values USING btree (instrument_id, valued_at)
-- table market.index_values_default
  instrument_id integer not null
  valued_at timestamp with time zone not null
  value numeric not null
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  constraint index_values_default_pkey: PRIMARY KEY (instrument_id, valued_at)
  constraint index_values_value_check: CHECK (((value > (0)::numeric) AND (value <> 'NaN'::numeric) AND (value <> 'Infinity'::numeric)))
  CREATE UNIQUE INDEX index_values_default_pkey ON market.index_values_default USING btree (instrument_id, valued_at)
  partition DEFAULT
-- view market.instrument_source_ranks
SELECT i.instrument_id,
    i.venue,
    i.symbol,
    i.asset_class,
    s.priority,
    i.asset_class = ANY (ARRAY['forex'::text, 'cfd'::text]) AS quote_priced
   FROM market.instruments i
     JOIN market.instrument_sources s ON s.asset_class = i.asset_class AND s.venue = i.venue AND s.symbol =
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM market.instrument_sources o
              WHERE o.asset_class = i.asset_class AND o.symbol = i.symbol)) THEN i.symbol
            ELSE '*'::text
        END;
-- table market.instrument_sources
  asset_class text not null
  symbol text not null default '*'::text
  venue text not null
  priority integer not null
  constraint instrument_sources_asset_class_check: CHECK ((asset_class = ANY (ARRAY['crypto'::text, 'forex'::text, 'index'::text, 'equity'::text, 'cfd'::text])))
  constraint instrument_sources_pkey: PRIMARY KEY (asset_class, symbol, venue)
  constraint instrument_sources_priority_check: CHECK ((priority >= 1))
  constraint instrument_sources_priority_key: UNIQUE (asset_class, symbol, priority)
  CREATE UNIQUE INDEX instrument_sources_pkey ON market.instrument_sources USING btree (asset_class, symbol, venue)
  CREATE UNIQUE INDEX instrument_sources_priority_key ON market.instrument_sources USING btree (asset_class, symbol, priority)
-- table market.instruments
  instrument_id integer not null identity
  venue text not null
  venue_symbol text not null
  symbol text not null
  asset_class text not null default 'crypto'::text
  base text
  quote text
  first_seen_at timestamp with time zone not null default now()
  constraint instruments_asset_class_check: CHECK ((asset_class = ANY (ARRAY['crypto'::text, 'forex'::text, 'index'::text, 'equity'::text, 'cfd'::text])))
  constraint instruments_pkey: PRIMARY KEY (instrument_id)
  constraint instruments_venue_symbol_key: UNIQUE (venue, venue_symbol)
  CREATE INDEX instruments_symbol_idx ON market.instruments USING btree (symbol)
  CREATE UNIQUE INDEX instruments_pkey ON market.instruments USING btree (instrument_id)
  CREATE UNIQUE INDEX instruments_venue_symbol_key ON market.instruments USING btree (venue, venue_symbol)
-- sequence market.instruments_instrument_id_seq
-- table market.quote_bar_invalidations
  instrument_id integer not null
  bucket timestamp with time zone not null
  invalidated_at timestamp with time zone not null default now()
  constraint quote_bar_invalidations_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE INDEX quote_bar_invalidations_bucket_idx ON market.quote_bar_invalidations USING btree (bucket)
  CREATE UNIQUE INDEX quote_bar_invalidations_pkey ON market.quote_bar_invalidations USING btree (instrument_id, bucket)
-- view market.quote_bars_15m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('00:15:00'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_15m_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_15m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_15m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_15m_data_pkey ON market.quote_bars_15m_data USING btree (instrument_id, bucket)
-- view market.quote_bars_1d
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('1 day'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_1d_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_1d_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_1d_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_1d_data_pkey ON market.quote_bars_1d_data USING btree (instrument_id, bucket)
-- view market.quote_bars_1h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('01:00:00'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_1h_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_1h_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_1h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_1h_data_pkey ON market.quote_bars_1h_data USING btree (instrument_id, bucket)
-- view market.quote_bars_1m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('00:01:00'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_1m_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_1m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_1m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_1m_data_pkey ON market.quote_bars_1m_data USING btree (instrument_id, bucket)
-- view market.quote_bars_4h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('04:00:00'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_4h_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_4h_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_4h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_4h_data_pkey ON market.quote_bars_4h_data USING btree (instrument_id, bucket)
-- view market.quote_bars_5m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    b.ticks AS volume,
    b.ticks,
    b.slots,
    round(b.slots::numeric / market.coverage_slots('00:05:00'::interval)::numeric, 4) AS coverage
   FROM market.quote_bars_5m_data b
     JOIN market.instruments i USING (instrument_id);
-- table market.quote_bars_5m_data
  instrument_id integer not null
  bucket timestamp with time zone not null
  open numeric not null
  high numeric not null
  low numeric not null
  close numeric not null
  ticks bigint not null
  slots bigint not null
  constraint quote_bars_5m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX quote_bars_5m_data_pkey ON market.quote_bars_5m_data USING btree (instrument_id, bucket)
-- view market.quote_block_ticks
SELECT b.instrument_id,
    b.hour_start,
    b.hour_start + u.ms::double precision * '00:00:00.001'::interval AS quoted_at,
    h.us + u.n - 1 AS seq,
    u.bid::numeric * b.unit AS bid,
    trim_scale(u.bv * 1000000::numeric) AS bid_size,
    u.ask::numeric * b.unit AS ask,
    trim_scale(u.av * 1000000::numeric) AS ask_size,
    true AS tradeable,
    'venue'::text AS time_source,
    b.received_at,
    b.source,
    b.frame_id
   FROM market.quote_blocks b
     CROSS JOIN LATERAL ( SELECT (EXTRACT(epoch FROM b.hour_start) * 1000000::numeric)::bigint AS us
         OFFSET 0) h
     CROSS JOIN LATERAL UNNEST(b.ms, b.ask, b.bid, b.ask_volume, b.bid_volume) WITH ORDINALITY u(ms, ask, bid, av, bv, n);
-- table market.quote_blocks
  instrument_id integer not null
  hour_start timestamp with time zone not null
  ticks integer not null
  unit numeric not null
  ms integer[] not null
  ask integer[] not null
  bid integer[] not null
  ask_volume numeric[] not null
  bid_volume numeric[] not null
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint quote_blocks_hour_check: CHECK (((EXTRACT(epoch FROM hour_start) % (3600)::numeric) = (0)::numeric))
  constraint quote_blocks_pkey: PRIMARY KEY (instrument_id, hour_start)
  constraint quote_blocks_ticks_check: CHECK (((ticks = cardinality(ms)) AND (ticks = cardinality(ask)) AND (ticks = cardinality(bid)) AND (ticks = cardinality(ask_volume)) AND (ticks = cardinality(bid_volume))))
  CREATE INDEX quote_blocks_sync_idx ON ONLY market.quote_blocks USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX quote_blocks_pkey ON ONLY market.quote_blocks USING btree (instrument_id, hour_start)
-- table market.quote_blocks_default
  instrument_id integer not null
  hour_start timestamp with time zone not null
  ticks integer not null
  unit numeric not null
  ms integer[] not null
  ask integer[] not null
  bid integer[] not null
  ask_volume numeric[] not null
  bid_volume numeric[] not null
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint quote_blocks_default_pkey: PRIMARY KEY (instrument_id, hour_start)
  constraint quote_blocks_hour_check: CHECK (((EXTRACT(epoch FROM hour_start) % (3600)::numeric) = (0)::numeric))
  constraint quote_blocks_ticks_check: CHECK (((ticks = cardinality(ms)) AND (ticks = cardinality(ask)) AND (ticks = cardinality(bid)) AND (ticks = cardinality(ask_volume)) AND (ticks = cardinality(bid_volume))))
  CREATE INDEX quote_blocks_default_sync_xid_sync_id_idx ON market.quote_blocks_default USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX quote_blocks_default_pkey ON market.quote_blocks_default USING btree (instrument_id, hour_start)
  partition DEFAULT
-- table market.quotes
  instrument_id integer not null
  quoted_at timestamp with time zone not null
  seq bigint not null
  bid numeric
  bid_size numeric
  ask numeric
  ask_size numeric
  tradeable boolean not null default true
  time_source text not null default 'venue'::text
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint quotes_pkey: PRIMARY KEY (instrument_id, seq, quoted_at)
  constraint quotes_price_check: CHECK ((((bid IS NULL) OR ((bid > (0)::numeric) AND (bid <> 'NaN'::numeric) AND (bid <> 'Infinity'::numeric))) AND ((ask IS NULL) OR ((ask > (0)::numeric) AND (ask <> 'NaN'::numeric) AND (ask <> 'Infinity'::numeric)))))
  constraint quotes_size_check: CHECK ((((bid_size IS NULL) OR ((bid_size >= (0)::numeric) AND (bid_size <> 'NaN'::numeric) AND (bid_size <> 'Infinity'::numeric))) AND ((ask_size IS NULL) OR ((ask_size >= (0)::numeric) AND (ask_size <> 'NaN'::numeric) AND (ask_size <> 'Infinity'::numeric)))))
  constraint quotes_time_source_check: CHECK ((time_source = ANY (ARRAY['venue'::text, 'received'::text])))
  CREATE INDEX quotes_instrument_time_idx ON ONLY market.quotes USING btree (instrument_id, quoted_at)
  CREATE INDEX quotes_sync_idx ON ONLY market.quotes USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX quotes_pkey ON ONLY market.quotes USING btree (instrument_id, seq, quoted_at)
-- table market.quotes_default
  instrument_id integer not null
  quoted_at timestamp with time zone not null
  seq bigint not null
  bid numeric
  bid_size numeric
  ask numeric
  ask_size numeric
  tradeable boolean not null default true
  time_source text not null default 'venue'::text
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint quotes_default_pkey: PRIMARY KEY (instrument_id, seq, quoted_at)
  constraint quotes_price_check: CHECK ((((bid IS NULL) OR ((bid > (0)::numeric) AND (bid <> 'NaN'::numeric) AND (bid <> 'Infinity'::numeric))) AND ((ask IS NULL) OR ((ask > (0)::numeric) AND (ask <> 'NaN'::numeric) AND (ask <> 'Infinity'::numeric)))))
  constraint quotes_size_check: CHECK ((((bid_size IS NULL) OR ((bid_size >= (0)::numeric) AND (bid_size <> 'NaN'::numeric) AND (bid_size <> 'Infinity'::numeric))) AND ((ask_size IS NULL) OR ((ask_size >= (0)::numeric) AND (ask_size <> 'NaN'::numeric) AND (ask_size <> 'Infinity'::numeric)))))
  constraint quotes_time_source_check: CHECK ((time_source = ANY (ARRAY['venue'::text, 'received'::text])))
  CREATE INDEX quotes_default_instrument_id_quoted_at_idx ON market.quotes_default USING btree (instrument_id, quoted_at)
  CREATE INDEX quotes_default_sync_xid_sync_id_idx ON market.quotes_default USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX quotes_default_pkey ON market.quotes_default USING btree (instrument_id, seq, quoted_at)
  partition DEFAULT
-- view market.symbols
SELECT DISTINCT venue,
    symbol,
    asset_class
   FROM market.instruments i;
-- sequence market.sync_id_seq
-- view market.ticks
SELECT i.venue,
    i.symbol,
    t.instrument_id,
    t.traded_at,
    t.trade_id,
    t.seq,
    t.price,
    t.size,
    t.side,
    t.received_at,
    t.source,
    t.frame_id
   FROM market.trades t
     JOIN market.instruments i USING (instrument_id);
-- table market.trades
  instrument_id integer not null
  traded_at timestamp with time zone not null
  trade_id text not null
  seq bigint
  price numeric not null
  size numeric not null
  side text
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint trades_pkey: PRIMARY KEY (instrument_id, trade_id, traded_at)
  constraint trades_price_check: CHECK (((price > (0)::numeric) AND (price <> 'NaN'::numeric) AND (price <> 'Infinity'::numeric)))
  constraint trades_side_check: CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text])))
  constraint trades_size_check: CHECK (((size > (0)::numeric) AND (size <> 'NaN'::numeric) AND (size <> 'Infinity'::numeric)))
  CREATE INDEX trades_instrument_seq_idx ON ONLY market.trades USING btree (instrument_id, seq)
  CREATE INDEX trades_instrument_time_idx ON ONLY market.trades USING btree (instrument_id, traded_at)
  CREATE INDEX trades_sync_idx ON ONLY market.trades USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX trades_pkey ON ONLY market.trades USING btree (instrument_id, trade_id, traded_at)
-- table market.trades_default
  instrument_id integer not null
  traded_at timestamp with time zone not null
  trade_id text not null
  seq bigint
  price numeric not null
  size numeric not null
  side text
  received_at timestamp with time zone not null
  source text not null
  frame_id bigint
  sync_xid xid8 default pg_current_xact_id()
  sync_id bigint default nextval('market.sync_id_seq'::regclass)
  constraint trades_default_pkey: PRIMARY KEY (instrument_id, trade_id, traded_at)
  constraint trades_price_check: CHECK (((price > (0)::numeric) AND (price <> 'NaN'::numeric) AND (price <> 'Infinity'::numeric)))
  constraint trades_side_check: CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text])))
  constraint trades_size_check: CHECK (((size > (0)::numeric) AND (size <> 'NaN'::numeric) AND (size <> 'Infinity'::numeric)))
  CREATE INDEX trades_default_instrument_id_seq_idx ON market.trades_default USING btree (instrument_id, seq)
  CREATE INDEX trades_default_instrument_id_traded_at_idx ON market.trades_default USING btree (instrument_id, traded_at)
  CREATE INDEX trades_default_sync_xid_sync_id_idx ON market.trades_default USING btree (sync_xid, sync_id)
  CREATE UNIQUE INDEX trades_default_pkey ON market.trades_default USING btree (instrument_id, trade_id, traded_at)
  partition DEFAULT
-- view market.venue_candles
SELECT i.venue,
    i.symbol,
    c.instrument_id,
    c.timeframe,
    c.price_side,
    c.bucket,
    c.open,
    c.high,
    c.low,
    c.close,
    c.volume,
    c.volume_kind,
    c.trade_count,
    c.complete,
    c.source,
    c.received_at,
    c.frame_id
   FROM market.candles c
     JOIN market.instruments i USING (instrument_id);
-- table market.venue_files
  venue text not null
  path text not null
  instrument_id integer not null
  stream text not null
  period_from timestamp with time zone not null
  period_to timestamp with time zone not null
  records integer not null
  complete boolean not null
  frame_id bigint not null
  received_at timestamp with time zone not null
  constraint venue_files_period_check: CHECK ((period_to > period_from))
  constraint venue_files_pkey: PRIMARY KEY (venue, path)
  constraint venue_files_records_check: CHECK ((records >= 0))
  CREATE INDEX venue_files_frame_idx ON market.venue_files USING btree (frame_id)
  CREATE INDEX venue_files_instrument_period_idx ON market.venue_files USING btree (instrument_id, stream, period_from)
  CREATE UNIQUE INDEX venue_files_pkey ON market.venue_files USING btree (venue, path)
-- table ops.backfill_chunks
  chunk_id bigint not null identity
  venue text not null
  symbol text not null
  kind text not null
  timeframe text
  chunk_from timestamp with time zone not null
  chunk_to timestamp with time zone not null
  state text not null default 'queued'::text
  fetched_to timestamp with time zone
  pages integer not null default 0
  weight bigint not null default 0
  rows_received bigint not null default 0
  rows_new bigint not null default 0
  attempts integer not null default 0
  last_error text
  queued_at timestamp with time zone not null default now()
  started_at timestamp with time zone
  finished_at timestamp with time zone
  updated_at timestamp with time zone not null default now()
  constraint backfill_chunks_key: UNIQUE NULLS NOT DISTINCT (venue, symbol, kind, timeframe, chunk_from, chunk_to)
  constraint backfill_chunks_pkey: PRIMARY KEY (chunk_id)
  constraint backfill_chunks_range_check: CHECK ((chunk_to > chunk_from))
  constraint backfill_chunks_state_check: CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'done'::text, 'partial'::text, 'failed'::text])))
  CREATE INDEX backfill_chunks_state_idx ON ops.backfill_chunks USING btree (state) WHERE (state = ANY (ARRAY['queued'::text, 'running'::text, 'failed'::text]))
  CREATE UNIQUE INDEX backfill_chunks_key ON ops.backfill_chunks USING btree (venue, symbol, kind, timeframe, chunk_from, chunk_to) NULLS NOT DISTINCT
  CREATE UNIQUE INDEX backfill_chunks_pkey ON ops.backfill_chunks USING btree (chunk_id)
-- sequence ops.backfill_chunks_chunk_id_seq
-- table ops.backfill_plan_chunks
  plan_id bigint not null
  chunk_id bigint not null
  constraint backfill_plan_chunks_chunk_id_fkey: FOREIGN KEY (chunk_id) REFERENCES ops.backfill_chunks(chunk_id) ON DELETE CASCADE
  constraint backfill_plan_chunks_pkey: PRIMARY KEY (plan_id, chunk_id)
  constraint backfill_plan_chunks_plan_id_fkey: FOREIGN KEY (plan_id) REFERENCES ops.backfill_plans(plan_id) ON DELETE CASCADE
  CREATE INDEX backfill_plan_chunks_chunk_idx ON ops.backfill_plan_chunks USING btree (chunk_id)
  CREATE UNIQUE INDEX backfill_plan_chunks_pkey ON ops.backfill_plan_chunks USING btree (plan_id, chunk_id)
-- table ops.backfill_plans
  plan_id bigint not null identity
  venue text not null
  symbol text not null
  kind text not null
  timeframe text
  range_from timestamp with time zone not null
  range_to timestamp with time zone not null
  chunk_length interval not null
  requested_by text not null default 'sql'::text
  requested_at timestamp with time zone not null default now()
  constraint backfill_plans_kind_check: CHECK ((kind = ANY (ARRAY['candles'::text, 'trades'::text, 'ticks'::text])))
  constraint backfill_plans_pkey: PRIMARY KEY (plan_id)
  constraint backfill_plans_range_check: CHECK ((range_to > range_from))
  constraint backfill_plans_timeframe_check: CHECK (((kind = 'candles'::text) = (timeframe IS NOT NULL)))
  CREATE UNIQUE INDEX backfill_plans_pkey ON ops.backfill_plans USING btree (plan_id)
-- sequence ops.backfill_plans_plan_id_seq
-- view ops.backfill_progress
WITH per_plan AS (
         SELECT p.plan_id,
            p.venue,
            p.symbol,
            p.kind,
            p.timeframe,
            p.range_from,
            p.range_to,
            p.requested_at,
            p.requested_by,
            count(*)::integer AS chunks,
            count(*) FILTER (WHERE c.state = ANY (ARRAY['done'::text, 'partial'::text]))::integer AS chunks_done,
            count(*) FILTER (WHERE c.state = 'running'::text)::integer AS chunks_running,
            count(*) FILTER (WHERE c.state = 'queued'::text)::integer AS chunks_queued,
            count(*) FILTER (WHERE c.state = 'failed'::text)::integer AS chunks_failed,
            count(*) FILTER (WHERE (c.state = ANY (ARRAY['done'::text, 'partial'::text])) AND c.finished_at >= p.requested_at)::integer AS chunks_done_here,
            COALESCE(sum(c.rows_new), 0::numeric)::bigint AS rows_new,
            COALESCE(sum(c.rows_received), 0::numeric)::bigint AS rows_received,
            COALESCE(sum(c.rows_received) FILTER (WHERE c.updated_at >= p.requested_at), 0::numeric)::bigint AS rows_received_here,
            COALESCE(sum(c.pages), 0::bigint) AS pages,
            COALESCE(sum(c.weight), 0::numeric)::bigint AS weight,
            min(c.started_at) FILTER (WHERE c.started_at >= p.requested_at) AS started_at,
            max(c.updated_at) FILTER (WHERE c.updated_at >= p.requested_at) AS last_update_at,
            array_agg((c.chunk_from::text || ': '::text) || c.last_error ORDER BY c.chunk_from) FILTER (WHERE c.state = 'failed'::text) AS errors
           FROM ops.backfill_plans p
             JOIN ops.backfill_plan_chunks pc USING (plan_id)
             JOIN ops.backfill_chunks c USING (chunk_id)
          GROUP BY p.plan_id
        )
 SELECT plan_id,
    venue,
    symbol,
    kind,
    timeframe,
    range_from,
    range_to,
    requested_at,
    requested_by,
        CASE
            WHEN (chunks_running + chunks_queued) > 0 AND (chunks_done + chunks_failed + chunks_running) = 0 THEN 'queued'::text
            WHEN (chunks_running + chunks_queued) > 0 THEN 'running'::text
            WHEN chunks_failed > 0 THEN 'failed'::text
            ELSE 'done'::text
        END AS state,
    chunks,
    chunks_done,
    chunks_running,
    chunks_queued,
    chunks_failed,
    rows_new,
    rows_received,
    pages,
    weight,
    started_at,
    EXTRACT(epoch FROM COALESCE(last_update_at, started_at) - started_at)::numeric(12,1) AS seconds,
        CASE
            WHEN last_update_at > started_at THEN round(rows_received_here::numeric / EXTRACT(epoch FROM last_update_at - started_at))
            ELSE NULL::numeric
        END AS rows_per_second,
        CASE
            WHEN (chunks_running + chunks_queued) = 0 THEN 0::numeric
            WHEN chunks_done_here > 0 AND last_update_at > started_at THEN round(EXTRACT(epoch FROM last_update_at - started_at) / chunks_done_here::numeric * (chunks_running + chunks_queued)::numeric)
            ELSE NULL::numeric
        END AS eta_seconds,
    errors
   FROM per_plan;
-- table ops.batches
  batch_id uuid not null
  landed_at timestamp with time zone not null default now()
  frames integer not null
  first_received_at timestamp with time zone
  last_received_at timestamp with time zone
  normalized_at timestamp with time zone
  normalize_error text
  counts jsonb not null default '{}'::jsonb
  constraint batches_pkey: PRIMARY KEY (batch_id)
  CREATE INDEX batches_pending_idx ON ops.batches USING btree (landed_at) WHERE (normalized_at IS NULL)
  CREATE UNIQUE INDEX batches_pkey ON ops.batches USING btree (batch_id)
-- view ops.clickhouse_lag
SELECT w.stream,
    p.pending_rows,
    w.shipped_snapshot_at AS complete_up_to,
        CASE
            WHEN p.pending_rows = 0 THEN 0::numeric
            ELSE round(EXTRACT(epoch FROM now() - COALESCE(w.shipped_snapshot_at, p.oldest_pending_received_at)), 3)
        END AS lag_seconds,
    p.oldest_pending_received_at,
    w.rows_shipped,
    w.batches,
    w.replays,
    w.pending_xid IS NOT NULL AS replay_pending,
    w.last_batch_at,
    w.last_error,
    w.last_error_at
   FROM ops.clickhouse_watermarks w
     CROSS JOIN LATERAL ops.clickhouse_pending(w.stream) p(pending_rows, oldest_pending_received_at);
-- table ops.clickhouse_watermarks
  stream text not null
  shipped_snapshot pg_snapshot not null default '1:1:'::pg_snapshot
  shipped_snapshot_at timestamp with time zone
  target_snapshot pg_snapshot
  target_snapshot_at timestamp with time zone
  cursor_xid xid8
  cursor_id bigint
  pending_xid xid8
  pending_id bigint
  pending_token text
  rows_shipped bigint not null default 0
  batches bigint not null default 0
  replays bigint not null default 0
  last_batch_at timestamp with time zone
  last_error text
  last_error_at timestamp with time zone
  updated_at timestamp with time zone not null default now()
  constraint clickhouse_watermarks_cursor_check: CHECK ((((target_snapshot IS NULL) = (cursor_xid IS NULL)) AND ((cursor_xid IS NULL) = (cursor_id IS NULL)) AND ((target_snapshot IS NULL) = (target_snapshot_at IS NULL))))
  constraint clickhouse_watermarks_pending_check: CHECK ((((pending_xid IS NULL) = (pending_id IS NULL)) AND ((pending_xid IS NULL) = (pending_token IS NULL)) AND ((pending_xid IS NULL) OR (target_snapshot IS NOT NULL))))
  constraint clickhouse_watermarks_pkey: PRIMARY KEY (stream)
  constraint clickhouse_watermarks_stream_check: CHECK ((stream = ANY (ARRAY['trades'::text, 'quotes'::text, 'book_snapshots'::text])))
  CREATE UNIQUE INDEX clickhouse_watermarks_pkey ON ops.clickhouse_watermarks USING btree (stream)
-- view ops.feed_status
WITH latest AS (
         SELECT DISTINCT ON (sessions.feed) sessions.feed,
            sessions.venue,
            sessions.session_id,
            sessions.connected_at,
            sessions.closed_at
           FROM ops.sessions
          ORDER BY sessions.feed, sessions.opened_at DESC
        ), last_event AS (
         SELECT DISTINCT ON (session_events.feed) session_events.feed,
            session_events.kind,
            session_events.at
           FROM ops.session_events
          WHERE session_events.kind = ANY (ARRAY['circuit_open'::text, 'circuit_closed'::text, 'connected'::text, 'disconnected'::text, 'stale'::text])
          ORDER BY session_events.feed, session_events.at DESC
        ), traffic AS (
         SELECT s.feed,
            count(*) AS frames_1m,
            max(f.received_at) AS last_frame_at
           FROM staging.frames f
             JOIN ops.sessions s USING (session_id)
          WHERE f.received_at > (now() - '00:01:00'::interval)
          GROUP BY s.feed
        ), last_frame AS (
         SELECT l_1.feed,
            ( SELECT max(f.received_at) AS max
                   FROM staging.frames f
                  WHERE f.session_id = l_1.session_id) AS at
           FROM latest l_1
        )
 SELECT l.feed,
    l.venue,
    l.connected_at IS NOT NULL AND l.closed_at IS NULL AS connected,
        CASE
            WHEN e.kind = 'circuit_open'::text THEN 'circuit_open'::text
            WHEN l.connected_at IS NOT NULL AND l.closed_at IS NULL THEN 'connected'::text
            ELSE 'disconnected'::text
        END AS state,
    round(COALESCE(t.frames_1m, 0::bigint)::numeric / 60.0, 1) AS messages_per_second,
    round(EXTRACT(epoch FROM now() - COALESCE(t.last_frame_at, lf.at)), 1) AS last_message_age_s,
    (( SELECT count(*) AS count
           FROM quality.gaps g
          WHERE g.venue = l.venue AND (g.feed = l.feed OR g.stream = l.feed OR g.stream ~~ (l.feed || ':%'::text)) AND (g.state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text]))))::integer AS open_gaps,
    (( SELECT count(*) AS count
           FROM staging.quarantine q
          WHERE q.venue = l.venue))::integer AS quarantined
   FROM latest l
     LEFT JOIN last_event e USING (feed)
     LEFT JOIN traffic t USING (feed)
     LEFT JOIN last_frame lf USING (feed);
-- table ops.job_leases
  worker_id text not null
  job_key text not null
  backend_pid integer not null
  backend_start timestamp with time zone not null
  leased_at timestamp with time zone not null default now()
  constraint job_leases_pkey: PRIMARY KEY (worker_id, job_key)
  CREATE UNIQUE INDEX job_leases_pkey ON ops.job_leases USING btree (worker_id, job_key)
-- table ops.paced_requests
  venue text not null
  key text not null
  request text not null
  at timestamp with time zone not null
  CREATE INDEX paced_requests_venue_at_idx ON ops.paced_requests USING btree (venue, at)
-- table ops.pacing_rules
  venue text not null
  name text not null
  scope text not null
  window_length interval not null
  max_per_window integer not null
  updated_at timestamp with time zone not null default now()
  constraint pacing_rules_max_check: CHECK ((max_per_window > 0))
  constraint pacing_rules_pkey: PRIMARY KEY (venue, name)
  constraint pacing_rules_scope_check: CHECK ((scope = ANY (ARRAY['request'::text, 'key'::text, 'venue'::text])))
  constraint pacing_rules_window_check: CHECK ((window_length > '00:00:00'::interval))
  CREATE UNIQUE INDEX pacing_rules_pkey ON ops.pacing_rules USING btree (venue, name)
-- table ops.rate_limits
  venue text not null
  name text not null
  unit text not null default 'weight'::text
  window_length interval not null
  max_per_window integer not null
  edge_guard interval not null default '00:00:00.25'::interval
  window_start timestamp with time zone
  used integer not null default 0
  updated_at timestamp with time zone not null default now()
  constraint rate_limits_max_check: CHECK ((max_per_window > 0))
  constraint rate_limits_pkey: PRIMARY KEY (venue, name)
  constraint rate_limits_unit_check: CHECK ((unit = ANY (ARRAY['weight'::text, 'requests'::text])))
  constraint rate_limits_used_check: CHECK ((used >= 0))
  constraint rate_limits_window_check: CHECK (((window_length > '00:00:00'::interval) AND (edge_guard >= '00:00:00'::interval) AND (edge_guard < window_length)))
  CREATE UNIQUE INDEX rate_limits_pkey ON ops.rate_limits USING btree (venue, name)
-- table ops.rate_state
  venue text not null
  paused_until timestamp with time zone
  banned_until timestamp with time zone
  slow_until timestamp with time zone
  slow_factor numeric not null default 1
  requests bigint not null default 0
  throttled bigint not null default 0
  bans bigint not null default 0
  last_status integer
  last_used_reported integer
  last_throttle_at timestamp with time zone
  updated_at timestamp with time zone not null default now()
  constraint rate_state_pkey: PRIMARY KEY (venue)
  constraint rate_state_slow_factor_check: CHECK (((slow_factor > (0)::numeric) AND (slow_factor <= (1)::numeric)))
  CREATE UNIQUE INDEX rate_state_pkey ON ops.rate_state USING btree (venue)
-- view ops.rate_status
SELECT s.venue,
    l.name,
    l.unit,
    l.window_length,
    l.max_per_window,
    floor(l.max_per_window::numeric *
        CASE
            WHEN s.slow_until > now() THEN s.slow_factor
            ELSE 1::numeric
        END)::integer AS effective_max,
        CASE
            WHEN l.window_start = date_bin(l.window_length, now(), '1970-01-01 00:00:00+00'::timestamp with time zone) THEN l.used
            ELSE 0
        END AS used,
        CASE
            WHEN s.banned_until > now() THEN 'banned'::text
            WHEN s.paused_until > now() THEN 'paused'::text
            WHEN s.slow_until > now() THEN 'slowed'::text
            ELSE 'ok'::text
        END AS state,
    s.banned_until,
    s.paused_until,
    s.slow_until,
    s.requests,
    s.throttled,
    s.bans,
    s.last_status,
    s.last_throttle_at
   FROM ops.rate_state s
     JOIN ops.rate_limits l USING (venue);
-- table ops.session_events
  event_id bigint not null identity
  session_id uuid not null
  feed text not null
  venue text not null
  at timestamp with time zone not null
  kind text not null
  detail jsonb not null default '{}'::jsonb
  constraint session_events_kind_check: CHECK ((kind = ANY (ARRAY['connecting'::text, 'connected'::text, 'subscribed'::text, 'ack'::text, 'error_frame'::text, 'disconnected'::text, 'rotating'::text, 'stale'::text, 'circuit_open'::text, 'circuit_closed'::text, 'resync'::text, 'snapshot'::text, 'sequence_break'::text])))
  constraint session_events_pkey: PRIMARY KEY (event_id)
  CREATE INDEX session_events_feed_at_idx ON ops.session_events USING btree (feed, at)
  CREATE INDEX session_events_session_idx ON ops.session_events USING btree (session_id)
  CREATE UNIQUE INDEX session_events_pkey ON ops.session_events USING btree (event_id)
-- sequence ops.session_events_event_id_seq
-- table ops.sessions
  session_id uuid not null
  feed text not null
  venue text not null
  url text not null
  opened_at timestamp with time zone not null
  connected_at timestamp with time zone
  closed_at timestamp with time zone
  close_reason text
  constraint sessions_pkey: PRIMARY KEY (session_id)
  CREATE INDEX sessions_feed_opened_idx ON ops.sessions USING btree (feed, opened_at DESC)
  CREATE UNIQUE INDEX sessions_pkey ON ops.sessions USING btree (session_id)
-- table ops.settings
  key text not null
  value text not null
  updated_at timestamp with time zone not null default now()
  constraint settings_pkey: PRIMARY KEY (key)
  CREATE UNIQUE INDEX settings_pkey ON ops.settings USING btree (key)
-- table ops.time_tables
  table_name regclass not null
  time_column text not null
  partition_interval interval not null
  form text not null
  constraint time_tables_form_check: CHECK ((form = ANY (ARRAY['hypertable'::text, 'partitioned'::text])))
  constraint time_tables_pkey: PRIMARY KEY (table_name)
  CREATE UNIQUE INDEX time_tables_pkey ON ops.time_tables USING btree (table_name)
-- view ops.venues
SELECT DISTINCT venue
   FROM ops.sessions;
-- table quality.activity_profiles
  instrument_id integer not null
  hour_of_week smallint not null
  open_minutes integer not null
  active_minutes integer not null
  messages bigint not null
  sampled_from timestamp with time zone not null
  sampled_to timestamp with time zone not null
  updated_at timestamp with time zone not null default now()
  constraint activity_profiles_counts_check: CHECK ((((active_minutes >= 0) AND (active_minutes <= open_minutes)) AND (messages >= 0)))
  constraint activity_profiles_hour_check: CHECK (((hour_of_week >= 0) AND (hour_of_week <= 167)))
  constraint activity_profiles_pkey: PRIMARY KEY (instrument_id, hour_of_week)
  CREATE UNIQUE INDEX activity_profiles_pkey ON quality.activity_profiles USING btree (instrument_id, hour_of_week)
-- table quality.alert_rules
  kind text not null
  min_severity text not null
  constraint alert_rules_pkey: PRIMARY KEY (kind)
  constraint alert_rules_severity_check: CHECK ((min_severity = ANY (ARRAY['info'::text, 'warning'::text, 'error'::text, 'critical'::text])))
  CREATE UNIQUE INDEX alert_rules_pkey ON quality.alert_rules USING btree (kind)
-- table quality.asset_class_calendars
  asset_class text not null
  calendar text not null
  constraint asset_class_calendars_calendar_fkey: FOREIGN KEY (calendar) REFERENCES quality.calendars(calendar)
  constraint asset_class_calendars_pkey: PRIMARY KEY (asset_class)
  CREATE UNIQUE INDEX asset_class_calendars_pkey ON quality.asset_class_calendars USING btree (asset_class)
-- view quality.bar_quality_1m
SELECT b.instrument_id,
    b.bucket,
    x.observed,
    x.expected,
        CASE
            WHEN x.expected > 0::double precision THEN round((x.observed::double precision / x.expected)::numeric, 3)
            ELSE NULL::numeric
        END AS coverage,
    x.sources,
    x.gap,
    x.spike,
    x.anomaly,
    x.revised,
    array_remove(ARRAY[
        CASE
            WHEN x.gap THEN 'gap'::text
            ELSE NULL::text
        END,
        CASE
            WHEN x.spike THEN 'spike'::text
            ELSE NULL::text
        END,
        CASE
            WHEN x.anomaly THEN 'anomaly'::text
            ELSE NULL::text
        END,
        CASE
            WHEN x.expected >= 10::double precision AND x.observed::double precision < (0.1::double precision * x.expected) THEN 'low_coverage'::text
            ELSE NULL::text
        END,
        CASE
            WHEN x.revised THEN 'revised'::text
            ELSE NULL::text
        END], NULL::text) AS flags,
    NOT (x.gap OR x.spike OR x.anomaly OR COALESCE(x.expected >= 10::double precision AND x.observed::double precision < (0.1::double precision * x.expected), false)) AS ok
   FROM market.bars_1m_data b
     JOIN market.instruments i USING (instrument_id)
     CROSS JOIN LATERAL ( SELECT c.time_zone
           FROM quality.calendars c
          WHERE c.calendar = COALESCE(( SELECT ic.calendar
                   FROM quality.instrument_calendars ic
                  WHERE ic.instrument_id = b.instrument_id), ( SELECT ac.calendar
                   FROM quality.asset_class_calendars ac
                  WHERE ac.asset_class = i.asset_class), 'crypto'::text)) cal
     CROSS JOIN LATERAL ( SELECT s.sources,
            b.trades + (( SELECT count(*) AS count
                   FROM market.all_quotes q
                  WHERE q.instrument_id = b.instrument_id AND q.hour_start = date_bin('01:00:00'::interval, b.bucket, '1970-01-01 00:00:00+00'::timestamp with time zone) AND q.quoted_at >= b.bucket AND q.quoted_at < (b.bucket + '00:01:00'::interval))) AS observed,
            COALESCE(( SELECT p.messages::double precision / p.open_minutes::double precision
                   FROM quality.activity_profiles p
                  WHERE p.instrument_id = b.instrument_id AND p.open_minutes >= 30 AND p.hour_of_week = quality.hour_of_week(b.bucket, cal.time_zone)), ( SELECT sum(p.messages)::double precision / NULLIF(sum(p.open_minutes), 0)::double precision
                   FROM quality.activity_profiles p
                  WHERE p.instrument_id = b.instrument_id)) AS expected,
            (EXISTS ( SELECT 1
                   FROM quality.findings f
                  WHERE f.instrument_id = b.instrument_id AND f.kind = 'gap'::text AND (f.label = ANY (ARRAY['our_loss'::text, 'venue_outage'::text])) AND f.resolved_at IS NULL AND f.window_from < (b.bucket + '00:01:00'::interval) AND f.window_to > b.bucket)) OR (EXISTS ( SELECT 1
                   FROM quality.gaps g
                  WHERE g.venue = i.venue AND (g.instrument_id IS NULL OR g.instrument_id = b.instrument_id) AND (g.state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text, 'unrecoverable'::text, 'venue_outage'::text])) AND g.gap_from < (b.bucket + '00:01:00'::interval) AND COALESCE(g.gap_to, 'infinity'::timestamp with time zone) > b.bucket)) AS gap,
            (EXISTS ( SELECT 1
                   FROM quality.findings f
                  WHERE f.instrument_id = b.instrument_id AND f.kind = 'spike'::text AND f.resolved_at IS NULL AND f.window_from < (b.bucket + '00:01:00'::interval) AND f.window_to > b.bucket)) AS spike,
            (EXISTS ( SELECT 1
                   FROM quality.findings f
                  WHERE f.instrument_id = b.instrument_id AND (f.kind <> ALL (ARRAY['gap'::text, 'spike'::text])) AND f.severity <> 'info'::text AND f.resolved_at IS NULL AND f.window_from < (b.bucket + '00:01:00'::interval) AND f.window_to > b.bucket)) AS anomaly,
            (('ws'::text = ANY (s.sources)) OR ('stream'::text = ANY (s.sources)) OR ('socket'::text = ANY (s.sources))) AND (('rest'::text = ANY (s.sources)) OR ('file'::text = ANY (s.sources))) OR (EXISTS ( SELECT 1
                   FROM quality.gaps g
                  WHERE g.venue = i.venue AND (g.instrument_id IS NULL OR g.instrument_id = b.instrument_id) AND g.state = 'recovered'::text AND g.gap_from < (b.bucket + '00:01:00'::interval) AND COALESCE(g.gap_to, 'infinity'::timestamp with time zone) > b.bucket)) AS revised
           FROM ( SELECT ARRAY( SELECT DISTINCT t.source
                           FROM market.trades t
                          WHERE t.instrument_id = b.instrument_id AND t.traded_at >= b.bucket AND t.traded_at < (b.bucket + '00:01:00'::interval)
                          ORDER BY t.source) AS sources) s) x;
-- view quality.bars_1m
SELECT b.venue,
    b.symbol,
    b.instrument_id,
    b.bucket,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    b.vwap,
    b.trades,
    q.observed,
    q.expected,
    q.coverage,
    q.sources,
    q.gap,
    q.spike,
    q.anomaly,
    q.revised,
    q.flags,
    q.ok
   FROM market.bars_1m b
     JOIN quality.bar_quality_1m q USING (instrument_id, bucket);
-- table quality.calendar_closures
  calendar text not null
  closed_from timestamp without time zone not null
  closed_to timestamp without time zone not null
  kind text not null
  note text not null
  constraint calendar_closures_calendar_fkey: FOREIGN KEY (calendar) REFERENCES quality.calendars(calendar) ON DELETE CASCADE
  constraint calendar_closures_check: CHECK ((closed_to > closed_from))
  constraint calendar_closures_kind_check: CHECK ((kind = ANY (ARRAY['holiday'::text, 'early_close'::text, 'late_open'::text, 'other'::text])))
  constraint calendar_closures_pkey: PRIMARY KEY (calendar, closed_from)
  CREATE UNIQUE INDEX calendar_closures_pkey ON quality.calendar_closures USING btree (calendar, closed_from)
-- table quality.calendar_sessions
  calendar text not null
  opens_dow smallint not null
  opens_at time without time zone not null
  closes_dow smallint not null
  closes_at time without time zone not null
  constraint calendar_sessions_calendar_fkey: FOREIGN KEY (calendar) REFERENCES quality.calendars(calendar) ON DELETE CASCADE
  constraint calendar_sessions_dow_check: CHECK ((((opens_dow >= 0) AND (opens_dow <= 6)) AND ((closes_dow >= 0) AND (closes_dow <= 6))))
  constraint calendar_sessions_pkey: PRIMARY KEY (calendar, opens_dow, opens_at)
  CREATE UNIQUE INDEX calendar_sessions_pkey ON quality.calendar_sessions USING btree (calendar, opens_dow, opens_at)
-- table quality.calendar_thin_hours
  calendar text not null
  starts_at time without time zone not null
  ends_at time without time zone not null
  note text not null
  constraint calendar_thin_hours_calendar_fkey: FOREIGN KEY (calendar) REFERENCES quality.calendars(calendar) ON DELETE CASCADE
  constraint calendar_thin_hours_check: CHECK ((ends_at > starts_at))
  constraint calendar_thin_hours_pkey: PRIMARY KEY (calendar, starts_at)
  CREATE UNIQUE INDEX calendar_thin_hours_pkey ON quality.calendar_thin_hours USING btree (calendar, starts_at)
-- table quality.calendars
  calendar text not null
  time_zone text not null
  always_open boolean not null default false
  description text not null
  constraint calendars_pkey: PRIMARY KEY (calendar)
  CREATE UNIQUE INDEX calendars_pkey ON quality.calendars USING btree (calendar)
-- view quality.daily_completeness
SELECT i.venue,
    i.symbol,
    c.instrument_id,
    c.day,
    c.expected_minutes,
    c.active_open_minutes,
    c.active_minutes,
    l.lost_minutes,
        CASE
            WHEN c.expected_minutes > 0 AND (c.active_minutes > 0 OR l.lost_minutes > 0::numeric) THEN round(1::numeric - LEAST(l.lost_minutes, c.expected_minutes::numeric) / c.expected_minutes::numeric, 4)
            ELSE NULL::numeric
        END AS completeness,
    c.messages,
    c.expected_messages,
        CASE
            WHEN c.expected_messages > 0::numeric THEN round(c.messages::numeric / c.expected_messages, 3)
            ELSE NULL::numeric
        END AS message_coverage,
    c.computed_at
   FROM quality.daily_coverage c
     JOIN market.instruments i USING (instrument_id)
     CROSS JOIN LATERAL ( SELECT quality.minutes_of(COALESCE(range_agg(tstzrange(f.window_from, f.window_to)), '{}'::tstzmultirange) * tstzmultirange(tstzrange((c.day::timestamp without time zone AT TIME ZONE 'UTC'::text), ((c.day + 1)::timestamp without time zone AT TIME ZONE 'UTC'::text)))) AS lost_minutes
           FROM quality.findings f
          WHERE f.instrument_id = c.instrument_id AND f.kind = 'gap'::text AND (f.label = ANY (ARRAY['our_loss'::text, 'venue_outage'::text])) AND f.resolved_at IS NULL AND f.window_from < ((c.day + 1)::timestamp without time zone AT TIME ZONE 'UTC'::text) AND f.window_to > (c.day::timestamp without time zone AT TIME ZONE 'UTC'::text)) l;
-- table quality.daily_coverage
  instrument_id integer not null
  day date not null
  expected_minutes integer not null
  active_minutes integer not null
  active_open_minutes integer not null
  messages bigint not null
  expected_messages numeric
  computed_at timestamp with time zone not null default now()
  constraint daily_coverage_pkey: PRIMARY KEY (instrument_id, day)
  CREATE UNIQUE INDEX daily_coverage_pkey ON quality.daily_coverage USING btree (instrument_id, day)
-- view quality.daily_findings
SELECT i.venue,
    i.symbol,
    f.instrument_id,
    f.source,
    (f.window_from AT TIME ZONE 'UTC'::text)::date AS day,
    f.kind,
    f.label,
    f.severity,
    count(*) AS findings,
    round(sum(EXTRACT(epoch FROM f.window_to - f.window_from) / 60::numeric), 1) AS minutes,
    count(*) FILTER (WHERE f.alerted_at IS NOT NULL) AS alerted
   FROM quality.findings f
     LEFT JOIN market.instruments i USING (instrument_id)
  WHERE f.resolved_at IS NULL
  GROUP BY i.venue, i.symbol, f.instrument_id, f.source, ((f.window_from AT TIME ZONE 'UTC'::text)::date), f.kind, f.label, f.severity;
-- table quality.detectors
  detector text not null
  fn regprocedure not null
  kinds text[] not null
  lookback interval not null default '02:00:00'::interval
  description text not null
  constraint detectors_pkey: PRIMARY KEY (detector)
  CREATE UNIQUE INDEX detectors_pkey ON quality.detectors USING btree (detector)
-- table quality.findings
  finding_id bigint not null identity
  kind text not null
  label text not null default ''::text
  severity text not null
  instrument_id integer
  source text not null
  window_from timestamp with time zone not null
  window_to timestamp with time zone not null
  value numeric
  baseline numeric
  detail jsonb not null default '{}'::jsonb
  detector text not null
  first_seen_at timestamp with time zone not null default now()
  last_seen_at timestamp with time zone not null default now()
  resolved_at timestamp with time zone
  alerted_at timestamp with time zone
  alerted_severity text
  constraint findings_alerted_severity_check: CHECK ((alerted_severity = ANY (ARRAY['info'::text, 'warning'::text, 'error'::text, 'critical'::text])))
  constraint findings_key: UNIQUE NULLS NOT DISTINCT (kind, instrument_id, source, window_from)
  constraint findings_pkey: PRIMARY KEY (finding_id)
  constraint findings_severity_check: CHECK ((severity = ANY (ARRAY['info'::text, 'warning'::text, 'error'::text, 'critical'::text])))
  constraint findings_value_check: CHECK (((value <> 'NaN'::numeric) AND (baseline <> 'NaN'::numeric)))
  constraint findings_window_check: CHECK ((window_to >= window_from))
  CREATE INDEX findings_instrument_window_idx ON quality.findings USING btree (instrument_id, window_from)
  CREATE INDEX findings_kind_window_idx ON quality.findings USING btree (kind, window_from)
  CREATE INDEX findings_unalerted_idx ON quality.findings USING btree (finding_id) WHERE ((alerted_at IS NULL) AND (resolved_at IS NULL))
  CREATE UNIQUE INDEX findings_key ON quality.findings USING btree (kind, instrument_id, source, window_from) NULLS NOT DISTINCT
  CREATE UNIQUE INDEX findings_pkey ON quality.findings USING btree (finding_id)
-- view quality.findings_by_instrument
SELECT f.finding_id,
    f.kind,
    f.label,
    f.severity,
    i.venue,
    i.symbol,
    f.source,
    f.window_from,
    f.window_to,
    f.value,
    f.baseline,
    f.detector,
    f.first_seen_at,
    f.last_seen_at,
    f.resolved_at
   FROM quality.findings f
     LEFT JOIN market.instruments i USING (instrument_id);
-- sequence quality.findings_finding_id_seq
-- view quality.gap_ledger
SELECT g.gap_id,
    g.venue,
    COALESCE(g.feed, ''::text) AS feed,
    g.stream,
    i.symbol,
    g.instrument_id,
    g.gap_from,
    g.gap_to,
    g.gap_to - g.gap_from AS duration,
    g.from_seq,
    g.to_seq,
        CASE
            WHEN g.to_seq >= g.from_seq THEN g.to_seq - g.from_seq + 1
            ELSE NULL::bigint
        END AS ids_in_range,
    g.detected_by,
    g.state,
    g.rows_recovered,
    g.attempts,
    g.last_error,
    g.detected_at,
    g.resolved_at,
    g.session_id,
    g.detail
   FROM quality.gaps g
     LEFT JOIN market.instruments i USING (instrument_id);
-- table quality.gaps
  gap_id bigint not null identity
  venue text not null
  stream text not null
  instrument_id integer
  gap_from timestamp with time zone not null
  gap_to timestamp with time zone
  from_seq bigint
  to_seq bigint
  detected_by text not null
  state text not null default 'detected'::text
  detected_at timestamp with time zone not null default now()
  updated_at timestamp with time zone not null default now()
  rows_recovered bigint not null default 0
  session_id uuid
  detail jsonb not null default '{}'::jsonb
  feed text
  resolved_at timestamp with time zone
  attempts integer not null default 0
  last_error text
  constraint gaps_detected_by_check: CHECK ((detected_by = ANY (ARRAY['disconnect'::text, 'sequence_break'::text, 'book_break'::text, 'scan'::text, 'stale'::text])))
  constraint gaps_pkey: PRIMARY KEY (gap_id)
  constraint gaps_state_check: CHECK ((state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text, 'recovered'::text, 'unrecoverable'::text, 'venue_outage'::text, 'market_closed'::text])))
  CREATE INDEX gaps_instrument_idx ON quality.gaps USING btree (instrument_id, stream, gap_from)
  CREATE INDEX gaps_open_idx ON quality.gaps USING btree (venue, stream, gap_from) WHERE (state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text]))
  CREATE UNIQUE INDEX gaps_pkey ON quality.gaps USING btree (gap_id)
-- sequence quality.gaps_gap_id_seq
-- view quality.gaps_labelled
SELECT g.gap_id,
    g.venue,
    g.stream,
    i.symbol,
    g.detected_by,
    g.state,
    (g.detected_by || ': '::text) || g.state AS label,
    g.gap_from,
    g.gap_to,
    g.gap_to IS NULL OR (g.state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text])) AS open,
    round(EXTRACT(epoch FROM COALESCE(g.gap_to, now()) - g.gap_from), 3) AS seconds,
    g.rows_recovered,
    g.detected_at,
    g.updated_at
   FROM quality.gaps g
     LEFT JOIN market.instruments i USING (instrument_id);
-- table quality.instrument_calendars
  instrument_id integer not null
  calendar text not null
  constraint instrument_calendars_calendar_fkey: FOREIGN KEY (calendar) REFERENCES quality.calendars(calendar)
  constraint instrument_calendars_pkey: PRIMARY KEY (instrument_id)
  CREATE UNIQUE INDEX instrument_calendars_pkey ON quality.instrument_calendars USING btree (instrument_id)
-- table quality.instrument_limits
  instrument_id integer not null
  max_trade_size numeric
  max_quote_size numeric
  max_bar_volume numeric
  constraint instrument_limits_check: CHECK (((max_trade_size > (0)::numeric) AND (max_quote_size > (0)::numeric) AND (max_bar_volume > (0)::numeric)))
  constraint instrument_limits_pkey: PRIMARY KEY (instrument_id)
  CREATE UNIQUE INDEX instrument_limits_pkey ON quality.instrument_limits USING btree (instrument_id)
-- table quality.maintenance_windows
  window_id bigint not null identity
  venue text not null
  instrument_id integer
  window_from timestamp with time zone not null
  window_to timestamp with time zone not null
  note text not null
  added_at timestamp with time zone not null default now()
  constraint maintenance_windows_check: CHECK ((window_to > window_from))
  constraint maintenance_windows_pkey: PRIMARY KEY (window_id)
  CREATE INDEX maintenance_windows_venue_idx ON quality.maintenance_windows USING btree (venue, window_from)
  CREATE UNIQUE INDEX maintenance_windows_pkey ON quality.maintenance_windows USING btree (window_id)
-- sequence quality.maintenance_windows_window_id_seq
-- view quality.open_findings
SELECT f.finding_id,
    i.venue,
    i.symbol,
    f.instrument_id,
    f.kind,
    f.label,
    f.severity,
    f.source,
    f.window_from,
    f.window_to,
    f.value,
    f.baseline,
    f.detail,
    f.detector,
    f.first_seen_at,
    f.last_seen_at,
    f.alerted_at
   FROM quality.findings f
     LEFT JOIN market.instruments i USING (instrument_id)
  WHERE f.resolved_at IS NULL;
-- table quality.payload_shapes
  venue text not null
  stream text not null
  shape text not null
  keys text[] not null
  time_units jsonb not null
  first_frame_id bigint
  first_seen_at timestamp with time zone not null
  last_seen_at timestamp with time zone not null
  frames bigint not null default 0
  constraint payload_shapes_pkey: PRIMARY KEY (venue, stream, shape)
  CREATE UNIQUE INDEX payload_shapes_pkey ON quality.payload_shapes USING btree (venue, stream, shape)
-- sequence staging.frame_id_seq
-- table staging.frames
  frame_id bigint not null default nextval('staging.frame_id_seq'::regclass)
  batch_id uuid not null
  venue text not null
  stream text not null
  session_id uuid
  seq bigint not null
  received_at timestamp with time zone not null
  source text not null
  request text
  payload text not null
  constraint frames_source_check: CHECK ((source = ANY (ARRAY['ws'::text, 'stream'::text, 'rest'::text, 'file'::text, 'socket'::text])))
  CREATE INDEX frames_batch_idx ON ONLY staging.frames USING btree (batch_id)
  CREATE INDEX frames_received_brin ON ONLY staging.frames USING brin (received_at)
-- table staging.frames_default
  frame_id bigint not null default nextval('staging.frame_id_seq'::regclass)
  batch_id uuid not null
  venue text not null
  stream text not null
  session_id uuid
  seq bigint not null
  received_at timestamp with time zone not null
  source text not null
  request text
  payload text not null
  constraint frames_source_check: CHECK ((source = ANY (ARRAY['ws'::text, 'stream'::text, 'rest'::text, 'file'::text, 'socket'::text])))
  CREATE INDEX frames_default_batch_id_idx ON staging.frames_default USING btree (batch_id)
  CREATE INDEX frames_default_received_at_idx ON staging.frames_default USING brin (received_at)
  partition DEFAULT
-- table staging.normalizers
  venue text not null
  version text not null
  valid_from timestamp with time zone not null
  valid_to timestamp with time zone not null default 'infinity'::timestamp with time zone
  fn regprocedure not null
  constraint normalizers_pkey: PRIMARY KEY (venue, version)
  CREATE UNIQUE INDEX normalizers_pkey ON staging.normalizers USING btree (venue, version)
-- table staging.quarantine
  quarantine_id bigint not null identity
  frame_id bigint not null
  item integer not null default '-1'::integer
  batch_id uuid
  venue text not null
  stream text not null
  received_at timestamp with time zone not null
  payload text not null
  reason text not null
  normalizer text not null
  quarantined_at timestamp with time zone not null default now()
  constraint quarantine_frame_item_key: UNIQUE (frame_id, item)
  constraint quarantine_pkey: PRIMARY KEY (quarantine_id)
  CREATE UNIQUE INDEX quarantine_frame_item_key ON staging.quarantine USING btree (frame_id, item)
  CREATE UNIQUE INDEX quarantine_pkey ON staging.quarantine USING btree (quarantine_id)
-- sequence staging.quarantine_quarantine_id_seq
-- table staging.tick_columns
  frame_id bigint not null
  landed_at timestamp with time zone not null default now()
  ms integer[] not null
  ask integer[] not null
  bid integer[] not null
  ask_volume numeric[] not null
  bid_volume numeric[] not null
  CREATE INDEX tick_columns_frame_idx ON ONLY staging.tick_columns USING btree (frame_id)
-- table staging.tick_columns_default
  frame_id bigint not null
  landed_at timestamp with time zone not null default now()
  ms integer[] not null
  ask integer[] not null
  bid integer[] not null
  ask_volume numeric[] not null
  bid_volume numeric[] not null
  CREATE INDEX tick_columns_default_frame_id_idx ON staging.tick_columns_default USING btree (frame_id)
  partition DEFAULT
CREATE OR REPLACE FUNCTION market.bar_bucket(p_width interval, p_at timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select date_bin(p_width, p_at, timestamptz '2000-01-03 00:00:00+00')
$function$
CREATE OR REPLACE FUNCTION market.bar_ranges(p_instruments integer[], p_from timestamp with time zone[], p_to timestamp with time zone[], p_width interval, p_merge_gap interval DEFAULT '00:00:00'::interval)
 RETURNS TABLE(instrument_id integer, range_from timestamp with time zone, range_to timestamp with time zone)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.bar_timeframes()
 RETURNS TABLE(level integer, timeframe text, width interval)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  values (1, '1m', interval '1 minute'), (2, '5m', interval '5 minutes'), (3, '15m', interval '15 minutes'),
         (4, '1h', interval '1 hour'), (5, '4h', interval '4 hours'), (6, '1d', interval '1 day')
$function$
CREATE OR REPLACE FUNCTION market.bars(p_symbol text, p_timeframe text, p_from timestamp with time zone, p_to timestamp with time zone, p_venue text DEFAULT NULL::text)
 RETURNS TABLE(venue text, symbol text, instrument_id integer, bucket timestamp with time zone, open numeric, high numeric, low numeric, close numeric, volume numeric, vwap numeric, trades bigint)
 LANGUAGE plpgsql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.bbo_between(p_from timestamp with time zone, p_to timestamp with time zone, p_symbols text[] DEFAULT NULL::text[])
 RETURNS TABLE(venue text, symbol text, instrument_id integer, quoted_at timestamp with time zone, seq bigint, bid numeric, bid_size numeric, ask numeric, ask_size numeric, mid numeric, spread numeric, tradeable boolean, time_source text, received_at timestamp with time zone, source text, frame_id bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
  -- market.bbo for quoted_at in [p_from, p_to), of the given canonical symbols (all when null):
  -- what analysts and Grafana read for a time range, since a time condition on the view cannot
  -- skip blocks. It runs with tickflow_worker's rights, read-only (sql/zz_privileges.sql).
  select i.venue, i.symbol, q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size,
         (q.bid + q.ask) / 2, q.ask - q.bid, q.tradeable, q.time_source, q.received_at, q.source, q.frame_id
  from market.instruments i
  cross join lateral market.quotes_between(p_from, p_to) q
  where q.instrument_id = i.instrument_id and (p_symbols is null or i.symbol = any (p_symbols))
$function$
CREATE OR REPLACE FUNCTION market.binance_symbol(p_venue_symbol text, OUT symbol text, OUT base text, OUT quote text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select coalesce(b || '/' || q, p_venue_symbol), b, q
  from (select upper(p_venue_symbol) as s) x
  left join lateral (
    select left(x.s, length(x.s) - length(qa)) as b, qa as q
    from unnest(array['FDUSD', 'USDT', 'USDC', 'TUSD', 'BUSD', 'USDP', 'DAI', 'BTC', 'ETH', 'BNB', 'EUR', 'GBP',
                      'TRY', 'BRL', 'JPY', 'AUD', 'RUB', 'UAH', 'NGN', 'ZAR', 'PLN', 'RON', 'ARS', 'MXN', 'COP',
                      'XRP', 'TRX', 'DOGE', 'DOT', 'SOL']) qa
    where x.s like '%' || qa and length(x.s) > length(qa)
    order by length(qa) desc
    limit 1
  ) split on true
$function$
CREATE OR REPLACE FUNCTION market.book_apply(p_instrument integer, p_update_id bigint, p_bids jsonb, p_asks jsonb, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
  delete from market.book_levels b
  using (select 'bid' as side, jsonb_array_elements(p_bids) as l union all select 'ask', jsonb_array_elements(p_asks)) x
  where b.instrument_id = p_instrument and b.side = x.side and b.price = (x.l->>0)::numeric and (x.l->>1)::numeric = 0;
  insert into market.book_levels (instrument_id, side, price, size, update_id, updated_at)
  select p_instrument, side, (l->>0)::numeric, (l->>1)::numeric, p_update_id, p_at
  from (select 'bid' as side, jsonb_array_elements(p_bids) as l
        union all select 'ask', jsonb_array_elements(p_asks)) x
  where (l->>1)::numeric > 0
  on conflict (instrument_id, side, price) do update set size = excluded.size, update_id = excluded.update_id,
                                                        updated_at = excluded.updated_at;
  update market.book_state set last_update_id = p_update_id, updated_at = p_at, diffs_applied = diffs_applied + 1
  where instrument_id = p_instrument;
$function$
CREATE OR REPLACE FUNCTION market.book_reset(p_instrument integer, p_update_id bigint, p_bids jsonb, p_asks jsonb, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
  delete from market.book_levels where instrument_id = p_instrument;
  insert into market.book_levels (instrument_id, side, price, size, update_id, updated_at)
  select p_instrument, side, (l->>0)::numeric, (l->>1)::numeric, p_update_id, p_at
  from (select 'bid' as side, jsonb_array_elements(p_bids) as l
        union all select 'ask', jsonb_array_elements(p_asks)) x
  where (l->>1)::numeric > 0
  on conflict (instrument_id, side, price) do update set size = excluded.size, update_id = excluded.update_id;
  insert into market.book_state (instrument_id, last_update_id, snapshot_update_id, in_sync, synced_at, updated_at,
                                 last_snapshot_at)
  values (p_instrument, p_update_id, p_update_id, true, p_at, p_at, p_at)
  on conflict (instrument_id) do update
    set last_update_id = excluded.last_update_id, snapshot_update_id = excluded.snapshot_update_id,
        in_sync = true, synced_at = excluded.synced_at,
        updated_at = excluded.updated_at, last_snapshot_at = excluded.last_snapshot_at;
$function$
CREATE OR REPLACE FUNCTION market.book_snapshot_derived(p_instrument integer, p_update_id bigint, p_at timestamp with time zone, p_depth integer DEFAULT 20)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into market.book_snapshots (instrument_id, taken_at, update_id, origin, bid_prices, bid_sizes, ask_prices,
                                     ask_sizes, received_at)
  select p_instrument, p_at, p_update_id, 'derived',
         coalesce((select array_agg(price order by price desc) from (select price from market.book_levels where instrument_id = p_instrument and side = 'bid' order by price desc limit p_depth) b), '{}'),
         coalesce((select array_agg(size order by price desc) from (select price, size from market.book_levels where instrument_id = p_instrument and side = 'bid' order by price desc limit p_depth) b), '{}'),
         coalesce((select array_agg(price order by price) from (select price from market.book_levels where instrument_id = p_instrument and side = 'ask' order by price limit p_depth) a), '{}'),
         coalesce((select array_agg(size order by price) from (select price, size from market.book_levels where instrument_id = p_instrument and side = 'ask' order by price limit p_depth) a), '{}'),
         p_at
  on conflict do nothing
$function$
CREATE OR REPLACE FUNCTION market.candle_price_sides()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- Every price side market.candles allows (its check constraint). Filtering on all of them,
  -- rather than not at all, keeps price_side a usable part of the key (instrument_id, timeframe,
  -- price_side, bucket) for bucket ranges on servers without btree skip scan (before Postgres 18).
  select array['trade', 'bid', 'ask', 'mid', 'value']
$function$
CREATE OR REPLACE FUNCTION market.canonical_bars(p_symbol text, p_timeframe text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE(symbol text, bucket timestamp with time zone, source text, instrument_id integer, priority integer, price_basis text, open numeric, high numeric, low numeric, close numeric, volume numeric, ticks bigint, coverage numeric, complete boolean)
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  if p_symbol is null or p_from is null or p_to is null then
    raise exception using
      errcode = '22004',
      message = 'market.canonical_bars: expected a symbol, p_from and p_to, received null',
      hint = 'Example: select * from market.canonical_bars(''EUR/USD'', ''1m'', now() - interval ''1 hour'', now());';
  end if;
  -- One static query per timeframe (no SQL built from text).
  case p_timeframe
    when '1m' then
      return query select b.* from market.canonical_bars_1m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '5m' then
      return query select b.* from market.canonical_bars_5m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '15m' then
      return query select b.* from market.canonical_bars_15m b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '1h' then
      return query select b.* from market.canonical_bars_1h b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '4h' then
      return query select b.* from market.canonical_bars_4h b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    when '1d' then
      return query select b.* from market.canonical_bars_1d b
        where b.symbol = p_symbol and b.bucket >= p_from and b.bucket < p_to order by b.bucket;
    else
      raise exception using
        errcode = '22023',
        message = format('market.canonical_bars: unknown timeframe %s', coalesce(quote_literal(p_timeframe), 'null')),
        detail = 'Expected one of 1m, 5m, 15m, 1h, 4h, 1d.';
  end case;
end
$function$
CREATE OR REPLACE FUNCTION market.coverage_slots(p_width interval)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select (extract(epoch from p_width) / 10)::integer
$function$
CREATE OR REPLACE FUNCTION market.define_bar_views(p_columns text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.dukascopy_symbol(p_venue_symbol text, OUT symbol text, OUT base text, OUT quote text, OUT asset_class text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.finish_bar_refresh(p_window_id bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
  null;
end
$function$
CREATE OR REPLACE FUNCTION market.first_quote_time_in(p_instrument integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.ib_asset_class(p_sec_type text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case p_sec_type when 'STK' then 'equity' when 'CASH' then 'forex' when 'IND' then 'index' when 'CFD' then 'cfd'
                         when 'CRYPTO' then 'crypto' end
$function$
CREATE OR REPLACE FUNCTION market.last_quote_time_before(p_instrument integer, p_at timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.lock_quote_hours(p_instruments integer[], p_hours timestamp with time zone[])
 RETURNS integer
 LANGUAGE sql
AS $function$
  -- Which store holds an hour of an instrument's quotes is decided by reading both, so writers of
  -- venue files' hours (overlapping backfills, the .bi5 files and the JSON API at once) take each
  -- hour's lock first, in one order, for the rest of their transaction.
  select count(pg_advisory_xact_lock(x.i, (extract(epoch from x.h) / 3600)::integer))::integer
  from (select distinct u.i, date_trunc('hour', u.h, 'UTC') as h
        from unnest(p_instruments, p_hours) u(i, h) where u.i is not null and u.h is not null order by 1, 2) x
$function$
CREATE OR REPLACE FUNCTION market.missing_id_count(p_stream text, p_instrument integer, p_from bigint, p_to bigint)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
  select greatest(p_to - p_from + 1, 0) - (
    select count(*) from (
      select t.seq from market.trades t
      where p_stream = 'trade' and t.instrument_id = p_instrument and t.seq between p_from and p_to
      union
      select a.agg_id from market.agg_trades a
      where p_stream = 'aggTrade' and a.instrument_id = p_instrument and a.agg_id between p_from and p_to) x)
$function$
CREATE OR REPLACE FUNCTION market.missing_id_pages(p_stream text, p_instrument integer, p_from bigint, p_to bigint, p_page integer)
 RETURNS TABLE(from_id bigint, to_id bigint)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.oanda_symbol(p_venue_symbol text, OUT symbol text, OUT base text, OUT quote text, OUT asset_class text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select b || '/' || q, b, q,
         case when b = any (c.codes) and q = any (c.codes) then 'forex' else 'cfd' end
  from (select split_part(p_venue_symbol, '_', 1) as b, split_part(p_venue_symbol, '_', 2) as q) x,
       (select array['AUD', 'CAD', 'CHF', 'CNH', 'CZK', 'DKK', 'EUR', 'GBP', 'HKD', 'HUF', 'JPY', 'MXN', 'NOK', 'NZD',
                     'PLN', 'SEK', 'SGD', 'THB', 'TRY', 'USD', 'ZAR', 'XAU', 'XAG', 'XPT', 'XPD'] as codes) c
  where p_venue_symbol ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$'
$function$
CREATE OR REPLACE FUNCTION market.pending_bar_refreshes()
 RETURNS TABLE(window_id bigint, cagg regclass, window_start timestamp with time zone, window_end timestamp with time zone)
 LANGUAGE sql
 STABLE
AS $function$
  select null::bigint, null::regclass, null::timestamptz, null::timestamptz where false
$function$
CREATE OR REPLACE FUNCTION market.polygon_index_names()
 RETURNS TABLE(symbol text, ticker text)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- The same table as POLYGON_INDEX_TICKERS in ingesters/polygon.ts (a test keeps them equal).
  values ('US30', 'I:DJI'), ('NAS100', 'I:NDX'), ('SPX500', 'I:SPX')
$function$
CREATE OR REPLACE FUNCTION market.polygon_symbol(p_ticker text, p_pair text DEFAULT NULL::text, OUT symbol text, OUT base text, OUT quote text, OUT asset_class text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- p_pair, when the WebSocket event gave it (BTC-USD), says where a crypto ticker splits.
  select case
           when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 3, 3) || '/' || substr(p_ticker, 6, 3)
           when p_ticker ~ '^X:' then coalesce(replace(p_pair, '-', '/'), x.b || '/' || x.q, substr(p_ticker, 3))
           when p_ticker ~ '^I:' then coalesce((select n.symbol from market.polygon_index_names() n where n.ticker = p_ticker),
                                               substr(p_ticker, 3))
           else p_ticker
         end,
         case when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 3, 3)
              when p_ticker ~ '^X:' then coalesce(split_part(p_pair, '-', 1), x.b) end,
         case when p_ticker ~ '^C:[A-Z]{6}$' then substr(p_ticker, 6, 3)
              when p_ticker ~ '^X:' then coalesce(nullif(split_part(p_pair, '-', 2), ''), x.q) end,
         case when p_ticker ~ '^C:' then 'forex' when p_ticker ~ '^X:' then 'crypto' when p_ticker ~ '^I:' then 'index'
              else 'equity' end
  from (select null::text as b, null::text as q) d
  left join lateral (
    -- A REST crypto ticker (X:BTCUSD) has no separator: the longest known quote currency wins.
    select left(substr(p_ticker, 3), length(substr(p_ticker, 3)) - length(qa)) as b, qa as q
    from unnest(array['USDT', 'USDC', 'USD', 'EUR', 'GBP', 'JPY', 'AUD', 'CAD', 'BTC', 'ETH']) qa
    where p_ticker ~ '^X:' and substr(p_ticker, 3) like '%' || qa and length(substr(p_ticker, 3)) > length(qa)
    order by length(qa) desc
    limit 1
  ) x on true
$function$
CREATE OR REPLACE FUNCTION market.polygon_ws_ticker(p_cluster text, p_ev text, p_name text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- The REST ticker of the instrument a WebSocket event names; null when the name has the wrong form.
  select case
    when p_cluster = 'forex' and p_name ~ '^[A-Z]{3}/[A-Z]{3}$' then 'C:' || replace(p_name, '/', '')
    when p_cluster = 'crypto' and p_name ~ '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$' then 'X:' || replace(p_name, '-', '')
    when p_cluster = 'indices' and p_name ~ '^I:[A-Z0-9.]{1,20}$' then p_name
    when p_cluster = 'stocks' and p_name ~ '^[A-Z][A-Z0-9.]{0,11}$' then p_name
  end
$function$
CREATE OR REPLACE FUNCTION market.quote_order_key(p_quoted_at timestamp with time zone, p_seq bigint)
 RETURNS bytea
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select set_byte(timestamptz_send(p_quoted_at), 0, get_byte(timestamptz_send(p_quoted_at), 0) # 128)
      || set_byte(int8send(p_seq), 0, get_byte(int8send(p_seq), 0) # 128)
$function$
CREATE OR REPLACE FUNCTION market.quotes_between(p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE(instrument_id integer, quoted_at timestamp with time zone, seq bigint, bid numeric, bid_size numeric, ask numeric, ask_size numeric, tradeable boolean, time_source text, received_at timestamp with time zone, source text, frame_id bigint)
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable, q.time_source,
         q.received_at, q.source, q.frame_id
  from market.all_quotes q
  where q.hour_start > p_from - interval '1 hour' and q.hour_start < p_to and q.quoted_at >= p_from and q.quoted_at < p_to
$function$
CREATE OR REPLACE FUNCTION market.rebuild_bars(p_instruments integer[], p_from timestamp with time zone[], p_to timestamp with time zone[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.rebuild_quote_bars(p_instruments integer[], p_from timestamp with time zone[], p_to timestamp with time zone[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.refresh_bars(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.refresh_bars_window(p_instrument integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.refresh_quote_bars(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.refresh_quote_bars_window(p_instrument integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.register_dukascopy_instruments(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION market.timeframe_width(p_timeframe text)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- Fixed-width timeframes only (<n>s, <n>m, <n>h, <n>d, <n>w); calendar months give null.
  select (m[1])::integer * case m[2] when 's' then interval '1 second' when 'm' then interval '1 minute'
                                     when 'h' then interval '1 hour' when 'd' then interval '1 day'
                                     when 'w' then interval '7 days' end
  from regexp_match(p_timeframe, '^([1-9][0-9]{0,5})(s|m|h|d|w)$') m
$function$
CREATE OR REPLACE FUNCTION market.trade_order_key(p_traded_at timestamp with time zone, p_seq bigint, p_trade_id text)
 RETURNS bytea
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select set_byte(timestamptz_send(p_traded_at), 0, get_byte(timestamptz_send(p_traded_at), 0) # 128)
      || case when p_seq is null then '\x00'::bytea
              else '\x01'::bytea || set_byte(int8send(p_seq), 0, get_byte(int8send(p_seq), 0) # 128) end
      || convert_to(p_trade_id, 'UTF8')
$function$
CREATE OR REPLACE FUNCTION market.vwap(p_notional numeric, p_volume numeric)
 RETURNS numeric
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- Exact to 18 decimals, the rest cut off (not rounded): the same number ClickHouse's bars hold,
  -- whatever scale numeric division would pick for these operands.
  select trim_scale(div(p_notional * 1000000000000000000, nullif(p_volume, 0)) * 0.000000000000000001)
$function$
CREATE OR REPLACE FUNCTION ops.backfill_chunk_fail(p_chunk bigint, p_error text, p_final boolean)
 RETURNS void
 LANGUAGE sql
AS $function$
  update ops.backfill_chunks
     set state = case when p_final then 'failed' else 'queued' end, last_error = left(p_error, 2000),
         finished_at = case when p_final then clock_timestamp() end, updated_at = clock_timestamp()
   where chunk_id = p_chunk
$function$
CREATE OR REPLACE FUNCTION ops.backfill_chunk_finish(p_chunk bigint, p_fetched_to timestamp with time zone)
 RETURNS text
 LANGUAGE sql
AS $function$
  -- A chunk that ends in the future is partial: a later plan fetches the rest.
  update ops.backfill_chunks
     set fetched_to = greatest(fetched_to, p_fetched_to),
         state = case when greatest(fetched_to, p_fetched_to) >= chunk_to then 'done' else 'partial' end,
         last_error = null, finished_at = clock_timestamp(), updated_at = clock_timestamp()
   where chunk_id = p_chunk
  returning state
$function$
CREATE OR REPLACE FUNCTION ops.backfill_chunk_length(p_kind text, p_timeframe text)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- About ten pages of 1,000 rows per chunk for candles; an hour of trades; a day of tick files.
  select case
    when p_kind = 'trades' then interval '1 hour'
    when p_kind = 'ticks' then interval '1 day'
    when p_timeframe = '1s' then interval '3 hours'
    when p_timeframe = '1m' then interval '7 days'
    when p_timeframe in ('3m', '5m') then interval '28 days'
    when p_timeframe in ('15m', '30m') then interval '112 days'
    when p_timeframe in ('1h', '2h') then interval '364 days'
    else interval '3640 days'
  end
$function$
CREATE OR REPLACE FUNCTION ops.backfill_chunk_progress(p_chunk bigint, p_pages integer, p_weight integer, p_rows_received bigint, p_rows_new bigint, p_fetched_to timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
  update ops.backfill_chunks
     set pages = pages + p_pages, weight = weight + p_weight, rows_received = rows_received + p_rows_received,
         rows_new = rows_new + p_rows_new, fetched_to = greatest(fetched_to, p_fetched_to), updated_at = clock_timestamp()
   where chunk_id = p_chunk
$function$
CREATE OR REPLACE FUNCTION ops.backfill_chunk_start(p_chunk bigint)
 RETURNS SETOF ops.backfill_chunks
 LANGUAGE sql
AS $function$
  -- A chunk that is done is not started again (a job left over from an earlier plan).
  update ops.backfill_chunks
     set state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, clock_timestamp()),
         finished_at = null, updated_at = clock_timestamp()
   where chunk_id = p_chunk and state <> 'done'
  returning *
$function$
CREATE OR REPLACE FUNCTION ops.backfill_id_bounds(p_venue text, p_symbol text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE(instrument_id integer, from_id bigint, to_id bigint)
 LANGUAGE sql
 STABLE
AS $function$
  -- The trade ids of [p_from, p_to), from the venue's aggregate trades landed at both ends: the
  -- first trade id at or after p_from, and the one before the first at or after p_to.
  select i.instrument_id,
         (select a.first_trade_seq from market.agg_trades a
          where a.instrument_id = i.instrument_id and a.traded_at >= p_from
          order by a.traded_at, a.agg_id limit 1),
         (select a.first_trade_seq - 1 from market.agg_trades a
          where a.instrument_id = i.instrument_id and a.traded_at >= p_to
          order by a.traded_at, a.agg_id limit 1)
  from market.instruments i
  where i.venue = p_venue and i.symbol = p_symbol
  order by i.instrument_id
  limit 1
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_book_snapshots_feed(p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint, p_upto_xid xid8, p_upto_id bigint, p_limit integer)
 RETURNS TABLE(sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer, taken_at text, update_id bigint, origin text, bid_prices text[], bid_sizes text[], ask_prices text[], ask_sizes text[], received_at text)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_pending(p_stream text)
 RETURNS TABLE(pending_rows bigint, oldest_pending_received_at timestamp with time zone)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_quotes_feed(p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint, p_upto_xid xid8, p_upto_id bigint, p_limit integer)
 RETURNS TABLE(sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer, quoted_at text, seq bigint, bid numeric, bid_size numeric, ask numeric, ask_size numeric, tradeable boolean, time_source text, received_at text, source text)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_trades_feed(p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint, p_upto_xid xid8, p_upto_id bigint, p_limit integer)
 RETURNS TABLE(sync_xid xid8, sync_id bigint, exact boolean, venue text, symbol text, instrument_id integer, traded_at text, trade_id text, seq bigint, price numeric, size numeric, side text, received_at text, source text)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_tsv(p_text text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select coalesce(replace(replace(replace(replace(p_text, '\', '\\'), E'\t', '\t'), E'\n', '\n'), E'\r', '\r'), '\N')
$function$
CREATE OR REPLACE FUNCTION ops.clickhouse_unshipped(p_xid xid8, p_id bigint, p_shipped pg_snapshot, p_target pg_snapshot, p_after_xid xid8, p_after_id bigint, p_upto_xid xid8, p_upto_id bigint)
 RETURNS boolean
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- A row (its sync key) a feed returns: committed between the two snapshots, after the cursor,
  -- up to a key when given. Inlined into the feeds, so the bounds on p_xid reach the sync index.
  select p_xid >= pg_snapshot_xmin(p_shipped)
     and p_xid < pg_snapshot_xmax(p_target)
     and (p_xid, p_id) > (p_after_xid, p_after_id)
     and (p_upto_xid is null or (p_xid, p_id) <= (p_upto_xid, p_upto_id))
     and pg_visible_in_snapshot(p_xid, p_target)
     and not pg_visible_in_snapshot(p_xid, p_shipped)
$function$
CREATE OR REPLACE FUNCTION ops.connection_events_over_time(p_from timestamp with time zone, p_to timestamp with time zone, p_interval_ms bigint, p_venue text DEFAULT NULL::text)
 RETURNS TABLE("time" timestamp with time zone, feed text, kind text, series text, events bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, e.at, p_from) as time, e.feed, e.kind, e.feed || ': ' || e.kind as series, count(*) as events
  from ops.session_events e, b
  where e.at >= p_from and e.at < p_to and (p_venue is null or e.venue = p_venue)
    and e.kind in ('connecting', 'disconnected', 'error_frame', 'stale', 'sequence_break', 'resync', 'circuit_open')
  group by 1, 2, 3, 4, b.width
  order by 1, 2, 3
$function$
CREATE OR REPLACE FUNCTION ops.create_time_table(p_ddl text, p_table text, p_time_column text, p_partition interval, p_chunk interval)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    execute p_ddl;
    execute format('select create_hypertable(%L, by_range(%L, %L::interval))', p_table, p_time_column, p_chunk);
    insert into ops.time_tables values (p_table::regclass, p_time_column, p_chunk, 'hypertable');
  else
    execute p_ddl || format(' partition by range (%I)', p_time_column);
    execute format('create table %s partition of %s default', p_table || '_default', p_table);
    insert into ops.time_tables values (p_table::regclass, p_time_column, p_partition, 'partitioned');
  end if;
end
$function$
CREATE OR REPLACE FUNCTION ops.dashboard_bucket(p_from timestamp with time zone, p_to timestamp with time zone, p_interval_ms bigint)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- Grafana's interval, but never under a second nor more than 2000 buckets in the range.
  select greatest(coalesce(p_interval_ms, 60000) * interval '1 millisecond', interval '1 second', (p_to - p_from) / 2000)
$function$
CREATE OR REPLACE FUNCTION ops.drop_partitions_before(p_table regclass, p_before timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_part record;
  v_dropped integer := 0;
begin
  for v_part in
    select c.oid::regclass as part, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = p_table and pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  loop
    if (regexp_match(v_part.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz <= p_before then
      execute format('drop table %s', v_part.part);
      v_dropped := v_dropped + 1;
    end if;
  end loop;
  return v_dropped;
end
$function$
CREATE OR REPLACE FUNCTION ops.end_job_lease(p_worker_id text, p_job_key text)
 RETURNS void
 LANGUAGE sql
AS $function$
  delete from ops.job_leases where worker_id = p_worker_id and job_key = p_job_key
$function$
CREATE OR REPLACE FUNCTION ops.enqueue_backfill_chunks(p_plan bigint)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_chunk record;
  v_done integer := 0;
  v_attempts integer := ops.setting('backfill.max_attempts', '5')::integer;
begin
  if not ops.graphile_worker_installed() then
    return 0; -- the first worker start enqueues them (ops.enqueue_pending_backfills)
  end if;
  for v_chunk in
    select c.chunk_id from ops.backfill_plan_chunks pc join ops.backfill_chunks c using (chunk_id)
    where pc.plan_id = p_plan and c.state = 'queued'
    order by c.chunk_from
  loop
    perform graphile_worker.add_job('backfill_chunk', json_build_object('chunkId', v_chunk.chunk_id),
                                    job_key := 'backfill_chunk:' || v_chunk.chunk_id, max_attempts := v_attempts,
                                    job_key_mode := 'preserve_run_at');
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$function$
CREATE OR REPLACE FUNCTION ops.enqueue_pending_backfills()
 RETURNS integer
 LANGUAGE sql
AS $function$
  -- Plans made before graphile-worker was installed, and chunks whose job is gone.
  select coalesce(sum(ops.enqueue_backfill_chunks(p.plan_id)), 0)::integer
  from ops.backfill_plans p
  where exists (select 1 from ops.backfill_plan_chunks pc join ops.backfill_chunks c using (chunk_id)
                where pc.plan_id = p.plan_id and c.state = 'queued')
$function$
CREATE OR REPLACE FUNCTION ops.ensure_all_partitions(p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
AS $function$
  select coalesce(sum(ops.ensure_partitions(table_name, p_from, p_to)), 0)::integer from ops.time_tables
$function$
CREATE OR REPLACE FUNCTION ops.ensure_partitions(p_table regclass, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_interval interval;
  v_form text;
  v_start timestamptz;
  v_end timestamptz;
  v_name text;
  v_created integer := 0;
begin
  select partition_interval, form into v_interval, v_form from ops.time_tables where table_name = p_table;
  if v_form is distinct from 'partitioned' then
    return 0;
  end if;
  v_start := ops.partition_start(p_from, v_interval);
  while v_start <= p_to loop
    v_end := case when v_interval >= interval '28 days' then v_start + interval '1 month' else v_start + v_interval end;
    v_name := ops.partition_name(p_table, v_start, v_interval);
    if to_regclass(v_name) is null then
      perform pg_advisory_xact_lock(hashtext(v_name));
      if to_regclass(v_name) is null then
        -- Rows that fell into the default partition for this range move into the new one.
        drop table if exists pg_temp._moved;
        execute format('create temp table _moved (like %s) on commit drop', p_table);
        execute format('with d as (delete from %s_default where %I >= %L and %I < %L returning *) insert into _moved select * from d',
                       p_table, (select time_column from ops.time_tables where table_name = p_table), v_start,
                       (select time_column from ops.time_tables where table_name = p_table), v_end);
        execute format('create table %s partition of %s for values from (%L) to (%L)', v_name, p_table, v_start, v_end);
        execute format('insert into %s select * from _moved', p_table);
        drop table pg_temp._moved;
        v_created := v_created + 1;
      end if;
    end if;
    v_start := v_end;
  end loop;
  return v_created;
end
$function$
CREATE OR REPLACE FUNCTION ops.graphile_worker_installed()
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
  select to_regprocedure('graphile_worker.add_job(text, json, text, timestamptz, integer, text, integer, text[], text)') is not null
$function$
CREATE OR REPLACE FUNCTION ops.ib_connectivity_gaps()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
  -- Runs inside the landing transaction (ops.record_events): it must never fail it.
  begin
    insert into quality.gaps (venue, feed, stream, instrument_id, gap_from, detected_by, session_id, detail)
    select n.venue, n.feed, ch.channel,
           (select i.instrument_id from market.instruments i where i.venue = n.venue and i.symbol = ins.symbol
            order by i.instrument_id limit 1),
           least(n.at, coalesce((n.detail->>'lastDataAt')::timestamptz, n.at)), 'disconnect', n.session_id,
           jsonb_build_object('code', 1100, 'reason', 'TWS lost its connection to IBKR (1100)', 'symbol', ins.symbol)
    from new_events n
    cross join lateral jsonb_array_elements_text(n.detail->'channels') ch(channel)
    cross join lateral jsonb_array_elements_text(n.detail->'instruments') ins(symbol)
    where n.venue = 'ib' and n.kind = 'error_frame' and n.detail->>'code' = '1100'
      and jsonb_typeof(n.detail->'channels') = 'array' and jsonb_typeof(n.detail->'instruments') = 'array'
      and not exists (select 1 from quality.gaps g
                      where g.venue = n.venue and g.feed = n.feed and g.stream = ch.channel and g.detail->>'symbol' = ins.symbol
                        and g.detail->>'code' = '1100' and g.gap_to is null);

    update quality.gaps g
       set gap_to = greatest(g.gap_from, n.at), updated_at = now(),
           detail = g.detail || jsonb_build_object('restored_by', (n.detail->>'code')::integer)
      from (select distinct on (feed) feed, venue, at, detail from new_events
            where venue = 'ib' and detail->>'code' in ('1101', '1102') order by feed, at) n
     where g.venue = n.venue and g.feed = n.feed and g.detected_by = 'disconnect' and g.gap_to is null
       and g.detail->>'code' = '1100' and g.gap_from <= n.at;
  exception when others then
    raise warning 'ops.ib_connectivity_gaps: % (the events are kept; no gap recorded)', sqlerrm;
  end;
  return null;
end
$function$
CREATE OR REPLACE FUNCTION ops.ingest_rate(p_from timestamp with time zone, p_to timestamp with time zone, p_interval_ms bigint, p_venue text DEFAULT NULL::text)
 RETURNS TABLE("time" timestamp with time zone, venue text, stream text, frames bigint, per_second numeric)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, f.received_at, p_from) as time, f.venue, f.stream, count(*) as frames,
         round(count(*) / extract(epoch from b.width), 3) as per_second
  from staging.frames f, b
  where f.received_at >= p_from and f.received_at < p_to and (p_venue is null or f.venue = p_venue)
  group by 1, 2, 3, b.width
  order by 1, 2, 3
$function$
CREATE OR REPLACE FUNCTION ops.landing_latency(p_from timestamp with time zone, p_to timestamp with time zone, p_interval_ms bigint)
 RETURNS TABLE("time" timestamp with time zone, batches bigint, frames bigint, mean_seconds numeric, max_seconds numeric)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
  -- landed_at is the start of the landing transaction, so this is the wait of the oldest frame of
  -- each batch before its COPY began; /metrics has the exact receive-to-commit histogram.
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width)
  select date_bin(b.width, x.landed_at, p_from) as time, count(*) as batches, sum(x.frames)::bigint as frames,
         round(avg(extract(epoch from x.landed_at - x.first_received_at)), 6) as mean_seconds,
         round(max(extract(epoch from x.landed_at - x.first_received_at)), 6) as max_seconds
  from ops.batches x, b
  where x.landed_at >= p_from and x.landed_at < p_to and x.frames > 0 and x.first_received_at is not null
  group by 1, b.width
  order by 1
$function$
CREATE OR REPLACE FUNCTION ops.missing_files(p_venue text, p_paths text[])
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
  -- Files a backfill still needs: not read whole yet, or read before their period ended.
  select p.path
  from unnest(p_paths) with ordinality p(path, n)
  where not exists (select 1 from market.venue_files f
                    where f.venue = p_venue and f.path = ltrim(p.path, '/') and f.complete)
  order by p.n
$function$
CREATE OR REPLACE FUNCTION ops.pacing_take(p_venue text, p_key text, p_request text, p_guard interval DEFAULT '00:00:00.25'::interval)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_now timestamptz;
  v_state ops.rate_state;
  v_rule ops.pacing_rules;
  v_nth timestamptz;
  v_wait interval := interval '0';
begin
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
  select * into v_state from ops.rate_state where venue = p_venue for update;
  v_now := clock_timestamp(); -- after the lock: the time the request goes out
  if v_state.banned_until > v_now or v_state.paused_until > v_now then
    return ceil(extract(epoch from greatest(v_state.banned_until, v_state.paused_until) - v_now) * 1000)::integer;
  end if;
  for v_rule in select * from ops.pacing_rules where venue = p_venue loop
    -- The max-th most recent request this rule counts: a new one may go once it is out of the
    -- window (plus a guard for the time the request takes to reach the venue).
    select r.at into v_nth
    from ops.paced_requests r
    where r.venue = p_venue and r.at > v_now - v_rule.window_length - p_guard
      and (v_rule.scope = 'venue' or r.key = p_key)
      and (v_rule.scope <> 'request' or r.request = p_request)
    order by r.at desc
    offset v_rule.max_per_window - 1 limit 1;
    if found then
      v_wait := greatest(v_wait, v_nth + v_rule.window_length + p_guard - v_now);
    end if;
  end loop;
  if v_wait > interval '0' then
    return greatest(1, ceil(extract(epoch from v_wait) * 1000))::integer;
  end if;
  insert into ops.paced_requests (venue, key, request, at) values (p_venue, p_key, p_request, v_now);
  delete from ops.paced_requests
  where venue = p_venue
    and at < v_now - coalesce((select max(window_length) from ops.pacing_rules where venue = p_venue), interval '0') - p_guard;
  update ops.rate_state set requests = requests + 1, updated_at = v_now where venue = p_venue;
  return 0;
end
$function$
CREATE OR REPLACE FUNCTION ops.partition_name(p_table regclass, p_start timestamp with time zone, p_interval interval)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select p_table::text || '_p' || case when p_interval >= interval '28 days'
                                    then to_char(p_start at time zone 'UTC', 'YYYYMM')
                                    else to_char(p_start at time zone 'UTC', 'YYYYMMDD') end
$function$
CREATE OR REPLACE FUNCTION ops.partition_start(p_at timestamp with time zone, p_interval interval)
 RETURNS timestamp with time zone
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select case when p_interval >= interval '28 days'
              then date_trunc('month', p_at at time zone 'UTC') at time zone 'UTC'
              else date_bin(p_interval, p_at, timestamptz '2000-01-01 00:00:00+00') end
$function$
CREATE OR REPLACE FUNCTION ops.plan_backfill(p_venue text, p_symbol text, p_kind text, p_timeframe text, p_from timestamp with time zone, p_to timestamp with time zone, p_requested_by text DEFAULT 'sql'::text)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
declare
  v_plan bigint;
  v_len interval;
  v_timeframe text := case when p_kind = 'candles' then p_timeframe end;
begin
  if p_venue is null or p_symbol is null or p_from is null or p_to is null then
    raise exception using errcode = '22004',
      message = 'ops.plan_backfill: expected venue, symbol, from and to, received a null';
  end if;
  if p_kind is null or p_kind not in ('candles', 'trades', 'ticks') then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected kind candles, trades or ticks, received %s', coalesce(quote_literal(p_kind), 'null'));
  end if;
  if p_kind = 'candles' and (p_timeframe is null or p_timeframe !~ '^[1-9][0-9]*(s|m|h|d)$') then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected a timeframe such as 1m or 1h for candles, received %s',
                       coalesce(quote_literal(p_timeframe), 'null'));
  end if;
  if p_to <= p_from then
    raise exception using errcode = '22023',
      message = format('ops.plan_backfill: expected from before to, received from %s, to %s', p_from, p_to);
  end if;
  v_len := ops.backfill_chunk_length(p_kind, v_timeframe);
  insert into ops.backfill_plans (venue, symbol, kind, timeframe, range_from, range_to, chunk_length, requested_by)
  values (p_venue, p_symbol, p_kind, v_timeframe, p_from, p_to, v_len, p_requested_by)
  returning plan_id into v_plan;
  -- Partitions for the whole range first (rows never pile up in a default partition).
  perform ops.ensure_partitions(case p_kind when 'candles' then 'market.candles' when 'ticks' then 'market.quotes'
                                  else 'market.trades' end::regclass, p_from, p_to);
  if p_kind = 'ticks' then
    perform ops.ensure_partitions('market.quote_blocks', p_from, p_to);
  end if;
  -- The grid cells of the range, clipped to it, less what finished chunks (of any earlier plan)
  -- already cover: each remaining piece is a chunk; the finished chunks it overlaps join the plan.
  insert into ops.backfill_chunks (venue, symbol, kind, timeframe, chunk_from, chunk_to)
  select p_venue, p_symbol, p_kind, v_timeframe, lower(r), upper(r)
  from generate_series(date_bin(v_len, p_from, timestamptz '2000-01-03 00:00:00+00'), p_to - interval '1 microsecond', v_len) g
  cross join lateral unnest(
    tstzmultirange(tstzrange(greatest(g, p_from), least(g + v_len, p_to)))
    - coalesce((select range_agg(tstzrange(d.chunk_from, d.chunk_to))
                from ops.backfill_chunks d
                where d.venue = p_venue and d.symbol = p_symbol and d.kind = p_kind
                  and d.timeframe is not distinct from v_timeframe and d.state = 'done'
                  and d.chunk_from < least(g + v_len, p_to) and d.chunk_to > greatest(g, p_from)),
               '{}'::tstzmultirange)) r
  on conflict on constraint backfill_chunks_key do nothing;
  insert into ops.backfill_plan_chunks (plan_id, chunk_id)
  select v_plan, c.chunk_id
  from ops.backfill_chunks c
  where c.venue = p_venue and c.symbol = p_symbol and c.kind = p_kind and c.timeframe is not distinct from v_timeframe
    and c.chunk_from < p_to and c.chunk_to > p_from
    -- finished chunks it overlaps, and the chunks of its own pieces (inside the range)
    and (c.state = 'done' or (c.chunk_from >= p_from and c.chunk_to <= p_to))
  on conflict do nothing;
  -- What an earlier run left unfinished is fetched again; what it finished is not.
  update ops.backfill_chunks c
     set state = 'queued', attempts = 0, last_error = null, queued_at = now(), updated_at = now()
    from ops.backfill_plan_chunks pc
   where pc.plan_id = v_plan and pc.chunk_id = c.chunk_id and c.state in ('failed', 'partial');
  perform ops.enqueue_backfill_chunks(v_plan);
  return v_plan;
end
$function$
CREATE OR REPLACE FUNCTION ops.rate_report(p_venue text, p_status integer, p_used_name text, p_used integer, p_retry_after_s numeric)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
declare
  v_now timestamptz := clock_timestamp();
  v_retry interval := coalesce(p_retry_after_s, 0) * interval '1 second';
begin
  -- The venue's count of the current window (X-MBX-USED-WEIGHT-1M) raises ours: other clients
  -- on the same address, or requests we counted in another window, use the same budget.
  if p_used is not null and p_used_name is not null then
    update ops.rate_limits l
       set used = greatest(case when l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
                                then l.used else 0 end, p_used),
           window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00'),
           updated_at = v_now
     where l.venue = p_venue and l.name = p_used_name;
  end if;
  update ops.rate_state s
     set last_status = p_status,
         last_used_reported = coalesce(p_used, s.last_used_reported),
         throttled = s.throttled + case when p_status = 429 then 1 else 0 end,
         bans = s.bans + case when p_status = 418 then 1 else 0 end,
         -- 429: every process waits for Retry-After (at least one window when the venue says
         -- nothing), then draws at half the budget (down to a tenth) until five windows pass.
         paused_until = case when p_status = 429
                             then greatest(s.paused_until, v_now + greatest(v_retry,
                                  coalesce((select max(window_length) from ops.rate_limits where venue = p_venue), interval '1 minute')
                                  * case when p_retry_after_s is null then 1 else 0 end))
                             else s.paused_until end,
         -- One halving per throttle event: the answers of requests already in flight when the
         -- first 429 came back (during its pause) are the same event.
         slow_factor = case when p_status = 429 and not coalesce(s.paused_until > v_now, false)
                            then greatest(0.1, case when s.slow_until > v_now then s.slow_factor else 1 end * 0.5)
                            when s.slow_until <= v_now then 1 else s.slow_factor end,
         slow_until = case when p_status = 429 and not coalesce(s.paused_until > v_now, false)
                           then v_now + 5 * coalesce((select max(window_length) from ops.rate_limits where venue = p_venue), interval '1 minute')
                           else s.slow_until end,
         -- 418: the address is banned; nothing goes out until the ban ends.
         banned_until = case when p_status = 418
                             then greatest(s.banned_until, v_now + greatest(v_retry, interval '2 minutes' * case when p_retry_after_s is null then 1 else 0 end))
                             else s.banned_until end,
         last_throttle_at = case when p_status in (429, 418) then v_now else s.last_throttle_at end,
         updated_at = v_now
   where s.venue = p_venue;
end
$function$
CREATE OR REPLACE FUNCTION ops.rate_take(p_venue text, p_weight integer, p_seen_limit text DEFAULT NULL::text, p_seen_used integer DEFAULT NULL::integer, p_seen_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_now timestamptz := clock_timestamp();
  v_state ops.rate_state;
  v_limit record;
  v_wait interval := interval '0';
  v_factor numeric;
  v_start timestamptz;
  v_used integer;
  v_cost integer;
begin
  -- Returns 0 when the request may go now (its weight is taken), or the milliseconds to wait
  -- before asking again (nothing is taken). The state row lock orders every process's takes.
  select * into v_state from ops.rate_state where venue = p_venue for update;
  if not found then
    return 0; -- a venue without a budget is not limited here
  end if;
  if v_state.banned_until > v_now then
    return ceil(extract(epoch from v_state.banned_until - v_now) * 1000)::integer;
  end if;
  if v_state.paused_until > v_now then
    return ceil(extract(epoch from v_state.paused_until - v_now) * 1000)::integer;
  end if;
  v_factor := case when v_state.slow_until > v_now then v_state.slow_factor else 1 end;
  -- What the venue said about the window of this process's last answer (its used-weight
  -- header) raises our count of that window: other clients on the same address use it too.
  if p_seen_used is not null then
    update ops.rate_limits l
       set used = greatest(l.used, p_seen_used), updated_at = v_now
     where l.venue = p_venue and l.name = p_seen_limit
       and l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
       and date_bin(l.window_length, p_seen_at, timestamptz '1970-01-01 00:00:00+00') = l.window_start;
  end if;
  for v_limit in select * from ops.rate_limits where venue = p_venue order by name for update loop
    v_start := date_bin(v_limit.window_length, v_now, timestamptz '1970-01-01 00:00:00+00');
    v_used := case when v_limit.window_start = v_start then v_limit.used else 0 end;
    v_cost := case when v_limit.unit = 'weight' then p_weight else 1 end;
    if v_start + v_limit.window_length - v_now < v_limit.edge_guard then
      -- Too close to the end of the window: the request could arrive in the next one.
      v_wait := greatest(v_wait, v_start + v_limit.window_length - v_now);
    elsif v_used + v_cost > floor(v_limit.max_per_window * v_factor) then
      v_wait := greatest(v_wait, v_start + v_limit.window_length - v_now);
    end if;
  end loop;
  if v_wait > interval '0' then
    return greatest(1, ceil(extract(epoch from v_wait) * 1000))::integer;
  end if;
  update ops.rate_limits l
     set used = case when l.window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00')
                     then l.used else 0 end + case when l.unit = 'weight' then p_weight else 1 end,
         window_start = date_bin(l.window_length, v_now, timestamptz '1970-01-01 00:00:00+00'),
         updated_at = v_now
   where l.venue = p_venue;
  update ops.rate_state set requests = requests + 1, updated_at = v_now where venue = p_venue;
  return 0;
end
$function$
CREATE OR REPLACE FUNCTION ops.record_events(p_events jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
declare
  v_orphans jsonb;
begin
  -- Sessions that a killed run of the feed left open (kill -9, power loss: the process never
  -- recorded their end). The first connection of the feed's next run closes them as disconnects
  -- at their last landed frame, so the window until the new run's first frame is a gap of the
  -- ledger like any other (closed by that first frame below, then recovered).
  select jsonb_agg(jsonb_build_object(
           'sessionId', s.session_id, 'feed', s.feed, 'venue', s.venue, 'at', e->>'at', 'kind', 'disconnected',
           'detail', jsonb_build_object(
             'reason', 'process ended without closing the session',
             'hadData', coalesce(d.last_frame_at, d.first_frame_at) is not null,
             'lastFrameAt', coalesce(d.last_frame_at, d.first_frame_at),
             'channels', e->'detail'->'channels', 'instruments', e->'detail'->'instruments')))
  into v_orphans
  from jsonb_array_elements(p_events) e
  join ops.sessions s on s.feed = e->>'feed' and s.venue = e->>'venue' and s.closed_at is null
                     and s.session_id <> (e->>'sessionId')::uuid
  cross join lateral (
    select (select (se.detail->>'firstFrameAt')::timestamptz from ops.session_events se
            where se.session_id = s.session_id and se.kind = 'subscribed' limit 1) as first_frame_at,
           ops.session_last_frame_at(s.session_id, s.opened_at, (e->>'at')::timestamptz) as last_frame_at
  ) d
  where e->>'kind' = 'connecting' and coalesce((e->'detail'->>'firstOfRun')::boolean, false);
  if v_orphans is not null then
    perform ops.record_events(v_orphans);
  end if;

  insert into ops.session_events (session_id, feed, venue, at, kind, detail)
  select (e->>'sessionId')::uuid, e->>'feed', e->>'venue', (e->>'at')::timestamptz, e->>'kind',
         coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e;

  insert into ops.sessions (session_id, feed, venue, url, opened_at)
  select (e->>'sessionId')::uuid, e->>'feed', e->>'venue', coalesce(e->>'url', ''), (e->>'at')::timestamptz
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'connecting'
  on conflict (session_id) do nothing;

  update ops.sessions s set connected_at = (e->>'at')::timestamptz
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'connected' and s.session_id = (e->>'sessionId')::uuid;

  update ops.sessions s set closed_at = (e->>'at')::timestamptz, close_reason = e->'detail'->>'reason'
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'disconnected' and s.session_id = (e->>'sessionId')::uuid;

  -- A disconnect opens a gap from the session's last frame, one per instrument and channel the
  -- feed carries (one for the whole feed when the event does not list them); the next session's
  -- first data closes it, and a closed gap queues its own recovery (quality.gaps_enqueue_recovery).
  insert into quality.gaps (venue, feed, stream, instrument_id, gap_from, detected_by, session_id, detail)
  select e->>'venue', e->>'feed', coalesce(ch.channel, e->>'feed'),
         (select i.instrument_id from market.instruments i
          where i.venue = e->>'venue' and i.symbol = ins.symbol order by i.instrument_id limit 1),
         coalesce((e->'detail'->>'lastFrameAt')::timestamptz, (e->>'at')::timestamptz),
         'disconnect', (e->>'sessionId')::uuid,
         (coalesce(e->'detail', '{}') - 'channels' - 'instruments')
           || case when ins.symbol is not null then jsonb_build_object('symbol', ins.symbol) else '{}' end
  from jsonb_array_elements(p_events) e
  left join lateral jsonb_array_elements_text(case when jsonb_typeof(e->'detail'->'channels') = 'array'
                                                   then e->'detail'->'channels' end) ch(channel) on true
  left join lateral jsonb_array_elements_text(case when jsonb_typeof(e->'detail'->'instruments') = 'array'
                                                   then e->'detail'->'instruments' end) ins(symbol) on true
  where e->>'kind' = 'disconnected' and coalesce((e->'detail'->>'hadData')::boolean, false)
    and coalesce(e->'detail'->>'reason', '') <> 'rotated' and coalesce(e->'detail'->>'reason', '') <> 'shutdown';

  -- A diff that does not continue the book: the ingester resynchronizes from a new snapshot.
  insert into quality.gaps (venue, feed, stream, gap_from, gap_to, detected_by, session_id, from_seq, to_seq, detail)
  select e->>'venue', e->>'feed', e->>'feed' || ':' || coalesce(e->'detail'->>'key', ''), (e->>'at')::timestamptz,
         (e->>'at')::timestamptz, 'sequence_break', (e->>'sessionId')::uuid,
         (e->'detail'->>'expectedFrom')::bigint, (e->'detail'->>'receivedFirst')::bigint - 1, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'sequence_break';

  update quality.gaps g set gap_to = (e->'detail'->>'firstFrameAt')::timestamptz, updated_at = now()
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'subscribed' and e->'detail' ? 'firstFrameAt'
    and g.venue = e->>'venue' and coalesce(g.feed, g.stream) = e->>'feed' and g.detected_by = 'disconnect' and g.gap_to is null
    and g.gap_from <= (e->'detail'->>'firstFrameAt')::timestamptz;
end
$function$
CREATE OR REPLACE FUNCTION ops.release_orphaned_jobs()
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_dead text[];
begin
  -- History jobs record the database session they hold (ops.job_leases). A worker (graphile-
  -- worker pool: one per process) none of whose leases has a live session died mid-job: its
  -- locks are released now (graphile-worker itself would wait four hours) and another worker
  -- resumes its jobs. A pool with one live lease is alive; its other jobs end by themselves.
  with dead as (
    delete from ops.job_leases l
    where not exists (select 1 from ops.job_leases a
                      join pg_stat_activity s on s.pid = a.backend_pid and s.backend_start = a.backend_start
                      where a.worker_id = l.worker_id)
    returning l.worker_id
  )
  select array_agg(distinct worker_id) into v_dead from dead;
  if v_dead is null then
    return 0;
  end if;
  if ops.graphile_worker_installed() then
    perform graphile_worker.force_unlock_workers(v_dead);
  end if;
  return cardinality(v_dead);
end
$function$
CREATE OR REPLACE FUNCTION ops.request_bars_refresh()
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
begin
  -- plpgsql, not sql: the job queue's schema is installed by the worker, possibly after this.
  perform graphile_worker.add_job('bars_refresh', '{}'::json, job_key := 'bars_refresh',
                                  run_at := now() + interval '1 second', job_key_mode := 'preserve_run_at');
end
$function$
CREATE OR REPLACE FUNCTION ops.run_maintenance()
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
declare
  v_created integer;
  v_dropped integer := 0;
  v_staging interval := ops.setting('retention.staging_days', '30')::integer * interval '1 day';
  v_ticks interval := ops.setting('retention.ticks_days', '365')::integer * interval '1 day';
begin
  v_created := ops.ensure_all_partitions(now() - interval '1 day', now() + interval '3 days');
  if exists (select 1 from ops.time_tables where form = 'partitioned') then
    v_dropped := v_dropped + ops.drop_partitions_before('staging.frames', now() - v_staging);
    v_dropped := v_dropped + ops.drop_partitions_before('staging.tick_columns', now() - v_staging);
    v_dropped := v_dropped + ops.drop_partitions_before('market.trades', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.quotes', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.quote_blocks', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.book_snapshots', now() - v_ticks);
    delete from staging.frames_default where received_at < now() - v_staging;
    delete from staging.tick_columns_default where landed_at < now() - v_staging;
  end if;
  delete from ops.batches where landed_at < now() - v_staging and normalized_at is not null;
  return jsonb_build_object('partitions_created', v_created, 'partitions_dropped', v_dropped);
end
$function$
CREATE OR REPLACE FUNCTION ops.session_last_frame_at(p_session uuid, p_opened_at timestamp with time zone, p_before timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_at timestamptz;
  v_hi timestamptz := p_before;
  v_lo timestamptz;
  v_span interval := interval '10 minutes';
begin
  -- staging.frames has no index by session: read back from p_before in windows of 10 minutes,
  -- 40, 160, ... (each a BRIN range), stopping at the first window with a frame of the session.
  -- The last frame is near the moment the run died, so what is read is about the frames landed
  -- since then, not the whole session (which may have run for days).
  loop
    v_lo := greatest(p_opened_at, v_hi - v_span);
    -- The first window is open above: frames stamped after p_before (a wall clock stepped
    -- back between the runs) are still the session's.
    select max(f.received_at) into v_at from staging.frames f
    where f.session_id = p_session and f.received_at >= v_lo
      and (v_hi = p_before or f.received_at < v_hi);
    exit when v_at is not null or v_lo <= p_opened_at;
    v_hi := v_lo;
    v_span := v_span * 4;
  end loop;
  return v_at;
end
$function$
CREATE OR REPLACE FUNCTION ops.set_pacing_rule(p_venue text, p_name text, p_scope text, p_window interval, p_max integer)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into ops.pacing_rules (venue, name, scope, window_length, max_per_window)
  values (p_venue, p_name, p_scope, p_window, p_max)
  on conflict (venue, name) do update
    set scope = excluded.scope, window_length = excluded.window_length, max_per_window = excluded.max_per_window, updated_at = now();
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
$function$
CREATE OR REPLACE FUNCTION ops.set_rate_limit(p_venue text, p_name text, p_unit text, p_window interval, p_max integer, p_edge_guard interval DEFAULT '00:00:00.25'::interval)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into ops.rate_limits (venue, name, unit, window_length, max_per_window, edge_guard)
  values (p_venue, p_name, p_unit, p_window, p_max, p_edge_guard)
  on conflict (venue, name) do update
    set unit = excluded.unit, window_length = excluded.window_length, max_per_window = excluded.max_per_window,
        edge_guard = excluded.edge_guard, window_start = null, used = 0, updated_at = now();
  insert into ops.rate_state (venue) values (p_venue) on conflict (venue) do nothing;
$function$
CREATE OR REPLACE FUNCTION ops.set_setting(p_key text, p_value text)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into ops.settings (key, value) values (p_key, p_value)
  on conflict (key) do update set value = excluded.value, updated_at = now()
$function$
CREATE OR REPLACE FUNCTION ops.setting(p_key text, p_default text)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
  select coalesce((select value from ops.settings where key = p_key), p_default)
$function$
CREATE OR REPLACE FUNCTION ops.take_job_lease(p_worker_id text, p_job_key text)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into ops.job_leases (worker_id, job_key, backend_pid, backend_start)
  select p_worker_id, p_job_key, a.pid, a.backend_start from pg_stat_activity a where a.pid = pg_backend_pid()
  on conflict (worker_id, job_key) do update
    set backend_pid = excluded.backend_pid, backend_start = excluded.backend_start, leased_at = now()
$function$
CREATE OR REPLACE FUNCTION quality.active_share(p_instrument_id integer, p_at timestamp with time zone)
 RETURNS double precision
 LANGUAGE sql
 STABLE
AS $function$
  -- The share of open minutes with data at this hour of the week; the instrument's overall share
  -- where the hour was sampled less than 30 minutes; null without a profile.
  select coalesce(
    (select p.active_minutes::float8 / p.open_minutes from quality.activity_profiles p
     where p.instrument_id = p_instrument_id and p.open_minutes >= 30
       and p.hour_of_week = quality.hour_of_week(p_at, (select c.time_zone from quality.calendars c
                                                        where c.calendar = quality.instrument_calendar(p_instrument_id)))),
    (select sum(p.active_minutes)::float8 / nullif(sum(p.open_minutes), 0) from quality.activity_profiles p
     where p.instrument_id = p_instrument_id))
$function$
CREATE OR REPLACE FUNCTION quality.alert_payload(p_finding quality.findings)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
  -- NOTIFY payloads are limited to 8000 bytes: detail is dropped from a payload that would not fit.
  select case when length(j::text) < 7900 then j else j - 'detail' || jsonb_build_object('detail_truncated', true) end
  from (
    select jsonb_build_object(
      'finding_id', p_finding.finding_id, 'kind', p_finding.kind, 'label', p_finding.label,
      'severity', p_finding.severity, 'instrument_id', p_finding.instrument_id,
      'venue', i.venue, 'symbol', i.symbol, 'source', p_finding.source,
      'window_from', p_finding.window_from, 'window_to', p_finding.window_to,
      'value', p_finding.value, 'baseline', p_finding.baseline, 'detail', p_finding.detail) as j
    from (select 1) one
    left join market.instruments i on i.instrument_id = p_finding.instrument_id
  ) x
$function$
CREATE OR REPLACE FUNCTION quality.alert_threshold(p_kind text)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
  select coalesce((select r.min_severity from quality.alert_rules r where r.kind = p_kind),
                  (select r.min_severity from quality.alert_rules r where r.kind = '*'),
                  'error')
$function$
CREATE OR REPLACE FUNCTION quality.bar_prices(p_instrument_id integer, p_series text, p_bucket timestamp with time zone, OUT extreme numeric, OUT reference numeric)
 RETURNS record
 LANGUAGE sql
 STABLE
AS $function$
  -- The reference of a bar is the previous bar's close (its own open for the first); its extreme is
  -- the one of its open, high, low and close furthest from the reference. Exact prices.
  with s as (
    select x.bucket, x.open, x.high, x.low, x.close
    from quality.series_1m(p_bucket - interval '1 day', p_bucket + interval '1 minute', array[p_instrument_id]) x
    where x.series = p_series
    order by x.bucket desc
    limit 2
  ), b as (
    select s.*, coalesce((select p.close from s p where p.bucket < p_bucket), s.open) as ref
    from s where s.bucket = p_bucket
  )
  select (select v from unnest(array[b.open, b.high, b.low, b.close]) v order by abs(v - b.ref) desc limit 1), b.ref
  from b
$function$
CREATE OR REPLACE FUNCTION quality.begin_gap_recovery(p_gap bigint)
 RETURNS TABLE(gap_id bigint, venue text, stream text, symbol text, instrument_id integer, gap_from timestamp with time zone, gap_to timestamp with time zone, from_ms bigint, to_ms bigint, from_seq bigint, to_seq bigint, timeframe text, attempts integer)
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.bound_gap_by_agg_trades(p_gap bigint)
 RETURNS TABLE(from_seq bigint, to_seq bigint, instrument_id integer)
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.calendar_periods(p_calendar text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE(period_from timestamp with time zone, period_to timestamp with time zone, state text, note text)
 LANGUAGE sql
 STABLE
AS $function$
  -- For people: the window cut into open, thin and closed periods (closed ones with the closure's note).
  with h as (
    select quality.open_hours(p_calendar, p_from, p_to) as open, quality.thin_hours(p_calendar, p_from, p_to) as thin
  ), parts as (
    select lower(r) as f, upper(r) as t, 'open' as state from h, unnest(h.open - h.thin) r
    union all
    select lower(r), upper(r), 'thin' from h, unnest(h.thin) r
    union all
    select lower(r), upper(r), 'closed' from h, unnest(tstzmultirange(tstzrange(p_from, p_to)) - h.open) r
  )
  select p.f, p.t, p.state,
         case when p.state = 'closed' then (
           select string_agg(x.note, '; ' order by x.closed_from)
           from quality.calendar_closures x join quality.calendars c using (calendar)
           where x.calendar = p_calendar
             and tstzrange(x.closed_from at time zone c.time_zone, x.closed_to at time zone c.time_zone) && tstzrange(p.f, p.t))
         end
  from parts p
  order by p.f
$function$
CREATE OR REPLACE FUNCTION quality.coverage_by_day(p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE("time" timestamp with time zone, venue text, symbol text, minutes_with_data bigint, minutes bigint, coverage numeric)
 LANGUAGE sql
 STABLE
AS $function$
  -- A minute is covered when the instrument has a bar in it: a trade bar, or a quote bar for
  -- quote-priced instruments. Days are UTC days; the range's first and last days count only
  -- their minutes inside the range.
  with covered as (
    select b.venue, b.symbol, b.bucket from market.bars_1m b where b.bucket >= p_from and b.bucket < p_to
    union
    select q.venue, q.symbol, q.bucket from market.quote_bars_1m q where q.bucket >= p_from and q.bucket < p_to
  ), days as (
    select c.venue, c.symbol, date_trunc('day', c.bucket, 'UTC') as day, count(*) as minutes_with_data
    from covered c
    group by 1, 2, 3
  )
  select d.day, d.venue, d.symbol, d.minutes_with_data, m.minutes, round(d.minutes_with_data::numeric / m.minutes, 4)
  from days d
  cross join lateral (select (extract(epoch from least(d.day + interval '1 day', p_to) - greatest(d.day, p_from)) / 60)::bigint as minutes) m
  order by 1, 2, 3
$function$
CREATE OR REPLACE FUNCTION quality.end_gap(p_gap bigint, p_state text, p_reason text)
 RETURNS void
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.enqueue_gap_recovery(p_gap bigint, p_delay interval DEFAULT NULL::interval)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.enqueue_pending_gaps()
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.expected_hours(p_calendar text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS tstzmultirange
 LANGUAGE sql
 STABLE
AS $function$
  select quality.open_hours(p_calendar, p_from, p_to) - quality.thin_hours(p_calendar, p_from, p_to)
$function$
CREATE OR REPLACE FUNCTION quality.find_bar_anomalies(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
 SET enable_mergejoin TO 'off'
AS $function$
  with usual as materialized (
    -- The usual 1-minute volume of each series: for bars from trades, the median over the
    -- window's hours of the mean minute volume of the hour (the 1-hour bars: a year of them is a
    -- few thousand rows); for other series, the median of the bars on the hour (1 in 60). A
    -- median is robust to the outlier it judges. A volume above quality.volume_factor (1000)
    -- times it, or above the operator's limit, is out of range.
    select x.instrument_id, x.series,
           coalesce(min(l.max_bar_volume), percentile_cont(0.5) within group (order by x.volume)::numeric
                                             * quality.setting_numeric('quality.volume_factor', 1000)) as max_volume,
           min(l.max_bar_volume) as operator_limit
    from (
      select h.instrument_id, 'trades'::text as series, (h.volume / 60)::float8 as volume
      from market.bars_1h_data h
      where h.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
        and h.bucket >= date_trunc('hour', p_from) and h.bucket < p_to and h.volume > 0 and h.volume < 'Infinity'
      union all
      select s.instrument_id, s.series, s.volume::float8
      from quality.series_1m(p_from, p_to, p_instruments) s
      where s.series <> 'trades' and extract(minute from s.bucket) = 0 and s.volume > 0 and s.volume < 'Infinity'
    ) x
    left join quality.instrument_limits l using (instrument_id)
    group by 1, 2
  ), suspect as (
    -- One pass with one cheap test per bar; only the bars that fail it are looked at closely.
    -- NaN sorts above every number and Infinity, so "high < Infinity" also refuses a NaN high,
    -- and a NaN anywhere else breaks an inequality with high or low.
    select s.*, u.max_volume, u.operator_limit
    from quality.series_1m(p_from, p_to, p_instruments) s
    left join usual u using (instrument_id, series)
    where not (s.low > 0 and s.low <= s.open and s.low <= s.close and s.high >= s.open and s.high >= s.close
               and s.high < 'Infinity')
       or s.volume < 0 or s.volume >= 'Infinity' or s.volume > u.max_volume
  ), bad as (
    select s.instrument_id, s.series, s.bucket, k.kind, k.value, k.baseline, k.detail
    from suspect s
    cross join lateral (
      select 'non_finite' as kind, null::numeric as value, null::numeric as baseline,
             jsonb_build_object('open', s.open::text, 'high', s.high::text, 'low', s.low::text, 'close', s.close::text,
                                'volume', s.volume::text) as detail
      where 'NaN' in (s.open, s.high, s.low, s.close, s.volume) or 'Infinity' in (s.open, s.high, s.low, s.close, s.volume)
         or '-Infinity' in (s.open, s.high, s.low, s.close, s.volume)
      union all
      select 'nonpositive_price', least(s.open, s.high, s.low, s.close), null,
             jsonb_build_object('open', s.open, 'high', s.high, 'low', s.low, 'close', s.close)
      where least(s.open, s.high, s.low, s.close) <= 0
      union all
      select 'ohlc_invalid', case when s.high < greatest(s.open, s.close, s.low) then s.high else s.low end,
             case when s.high < greatest(s.open, s.close, s.low) then greatest(s.open, s.close, s.low)
                  else least(s.open, s.close, s.high) end,
             jsonb_build_object('open', s.open, 'high', s.high, 'low', s.low, 'close', s.close,
                                'rule', case when s.high < greatest(s.open, s.close, s.low) then 'high below open, close or low'
                                             else 'low above open, close or high' end)
      where s.high < greatest(s.open, s.close, s.low) or s.low > least(s.open, s.close, s.high)
      union all
      select 'size_out_of_range', s.volume, s.max_volume,
             jsonb_build_object('limit', s.operator_limit)
      where s.volume < 0 or s.volume > s.max_volume
    ) k
    where k.kind = 'non_finite'
       or 'NaN' not in (s.open, s.high, s.low, s.close, coalesce(s.volume, 0))
  ), runs as (
    select b.*, sum(case when b.bucket - b.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by b.instrument_id, b.series, b.kind order by b.bucket) as run
    from (select b.*, lag(b.bucket) over (partition by b.instrument_id, b.series, b.kind order by b.bucket) as prev from bad b) b
  )
  select distinct on (r.instrument_id, r.series, r.kind, r.run)
         r.kind, case when r.series = 'trades' then 'bar' else 'candle' end,
         case when r.kind = 'size_out_of_range' then 'warning' else 'error' end,
         r.instrument_id, i.venue || ':' || r.series,
         min(r.bucket) over g, max(r.bucket) over g + interval '1 minute', r.value, r.baseline,
         r.detail || jsonb_build_object('bars', count(*) over g, 'at', r.bucket)
  from runs r
  join market.instruments i using (instrument_id)
  window g as (partition by r.instrument_id, r.series, r.kind, r.run)
  order by r.instrument_id, r.series, r.kind, r.run, r.bucket
$function$
CREATE OR REPLACE FUNCTION quality.find_gaps(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  with holes as (
    select s.instrument_id, range_intersect_agg(s.silence) as holes
    from quality.silences(p_from, p_to, p_instruments) s
    group by s.instrument_id
  ), inst as (
    select h.instrument_id, h.holes, i.venue, i.symbol, quality.instrument_calendar(i.instrument_id) as calendar
    from holes h
    join market.instruments i using (instrument_id)
    where not isempty(h.holes)
  ), cal as (
    select x.*, quality.open_hours(x.calendar, lower(x.holes), upper(x.holes)) as open,
           quality.thin_hours(x.calendar, lower(x.holes), upper(x.holes)) as thin,
           quality.expected_hours(x.calendar, date_trunc('minute', p_from), date_trunc('minute', p_to)) as expected_window
    from inst x
  ), window_share as (
    -- Without a profile: the share of this window's expected minutes that had data.
    select c.instrument_id,
           1 - quality.minutes_of(c.holes * c.expected_window) / nullif(quality.minutes_of(c.expected_window), 0) as share
    from cal c
  ), parts as (
    select c.instrument_id, c.venue, c.symbol, c.calendar, r, 'closed' as part
    from cal c, unnest(c.holes - c.open) r
    union all
    select c.instrument_id, c.venue, c.symbol, c.calendar, r, 'open'
    from cal c, unnest(c.holes * (c.open - c.thin)) r
  ), judged as (
    select p.*, quality.minutes_of(tstzmultirange(p.r)) as minutes,
           coalesce(quality.active_share(p.instrument_id, lower(p.r)), ws.share) as share,
           quality.messages_per_minute(p.instrument_id, lower(p.r)) as rate
    from parts p
    left join window_share ws using (instrument_id)
  ), gaps as (
    select j.*, quality.gap_threshold_minutes(j.share) as threshold
    from judged j
    where j.part = 'closed' or j.minutes >= quality.gap_threshold_minutes(j.share)
  ), evidence as (
    select g.*,
           (select mw.window_id from quality.maintenance_windows mw
            where mw.venue = g.venue and (mw.instrument_id is null or mw.instrument_id = g.instrument_id)
              and tstzrange(mw.window_from, mw.window_to) && g.r
            order by mw.window_from limit 1) as maintenance_id,
           (select jsonb_build_object('gap_id', l.gap_id, 'state', l.state, 'detected_by', l.detected_by, 'stream', l.stream)
            from quality.gaps l
            where l.venue = g.venue and (l.instrument_id is null or l.instrument_id = g.instrument_id)
              and tstzrange(l.gap_from, coalesce(l.gap_to, 'infinity')) && g.r
            order by (l.state = 'venue_outage') desc, (l.state = 'market_closed') desc, l.gap_from limit 1) as ledger,
           (select jsonb_build_object('sources', count(*), 'active', count(*) filter (where quality.has_activity(o.instrument_id, lower(g.r), upper(g.r))))
            from market.instruments o
            where o.symbol = g.symbol and o.instrument_id <> g.instrument_id) as others,
           -- Minutes of the hole inside empty venue files (market.venue_files, records 0): the
           -- venue's own record that it has no data for the period. Silence inside a file that
           -- had records is not counted: rows of it may have been lost after it was read.
           (select quality.minutes_of(tstzmultirange(g.r) * range_agg(tstzrange(vf.period_from, vf.period_to)))
            from market.venue_files vf
            where vf.instrument_id = g.instrument_id and vf.records = 0 and vf.complete
              and vf.period_from < upper(g.r) and vf.period_to > lower(g.r)) as file_minutes
    from gaps g
    where g.part = 'open'
  ), labelled as (
    select e.*,
           case when e.maintenance_id is not null then 'venue_outage'
                when e.file_minutes >= e.minutes then 'venue_outage'
                when e.ledger->>'state' = 'venue_outage' then 'venue_outage'
                when e.ledger->>'state' = 'market_closed' then 'market_closed'
                when e.ledger is not null then 'our_loss'
                when (e.others->>'sources')::integer > 0 and (e.others->>'active')::integer = 0 then 'venue_outage'
                else 'our_loss' end as label,
           case when e.maintenance_id is not null then 'maintenance_window'
                when e.file_minutes >= e.minutes then 'venue_files'
                when e.ledger is not null then 'ledger_' || (e.ledger->>'state')
                when (e.others->>'sources')::integer > 0 and (e.others->>'active')::integer = 0 then 'all_sources_silent'
                when (e.others->>'active')::integer > 0 then 'other_source_active'
                else 'unexplained' end as evidence
    from evidence e
  )
  select 'gap', 'market_closed', 'info', g.instrument_id, g.venue, lower(g.r), upper(g.r), g.minutes::numeric, null::numeric,
         jsonb_build_object('calendar', g.calendar, 'evidence', 'calendar')
  from gaps g
  where g.part = 'closed'
  union all
  select 'gap', l.label,
         case when l.label = 'market_closed' then 'info'
              when l.label = 'venue_outage' then 'warning'
              when l.minutes < 15 then 'warning'
              when l.minutes < 120 then 'error'
              else 'critical' end,
         l.instrument_id, l.venue, lower(l.r), upper(l.r), l.minutes::numeric, l.threshold::numeric,
         jsonb_strip_nulls(jsonb_build_object(
           'calendar', l.calendar, 'evidence', l.evidence, 'threshold_minutes', l.threshold,
           'active_share', round(l.share::numeric, 4), 'messages_per_minute', round(l.rate::numeric, 3),
           'expected_messages', round((l.rate * l.minutes)::numeric), 'maintenance_window_id', l.maintenance_id,
           'ledger', l.ledger, 'other_sources', l.others))
  from labelled l
$function$
CREATE OR REPLACE FUNCTION quality.find_payload_shape_changes(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE plpgsql
AS $function$
declare
  v_every integer := greatest(quality.setting_numeric('quality.shape_sample_every', 100)::integer, 1);
begin
  -- Records the shapes of sampled frames (every v_every-th frame id, and the last frame of each
  -- venue and stream in the window, so a quiet stream is sampled too; no sort of the window's
  -- frames), then reports each shape first seen in the window for a venue and stream that had
  -- another shape before, against the most common earlier one.
  insert into quality.payload_shapes as p (venue, stream, shape, keys, time_units, first_frame_id, first_seen_at,
                                           last_seen_at, frames)
  select x.venue, x.stream, md5(x.keys::text || x.time_units::text), x.keys, x.time_units,
         min(x.frame_id), min(x.received_at), max(x.received_at), count(*)
  from (
    select f.venue, f.stream, f.frame_id, f.received_at, sh.keys, sh.time_units
    from staging.frames f
    cross join lateral quality.payload_shape(f.payload, f.received_at) sh
    where f.received_at >= p_from and f.received_at < p_to
      and (f.frame_id % v_every = 0
           or f.frame_id in (select max(l.frame_id) from staging.frames l
                             where l.received_at >= p_from and l.received_at < p_to group by l.venue, l.stream))
  ) x
  group by x.venue, x.stream, x.keys, x.time_units
  on conflict (venue, stream, shape) do update
    set first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
        first_frame_id = case when excluded.first_seen_at < p.first_seen_at then excluded.first_frame_id else p.first_frame_id end,
        last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at),
        frames = p.frames + excluded.frames;

  return query
  with new_shapes as (
    select n.* from quality.payload_shapes n
    where n.first_seen_at >= p_from and n.first_seen_at < p_to
  ), compared as (
    select n.*, o.keys as old_keys, o.time_units as old_units, o.shape as old_shape
    from new_shapes n
    cross join lateral (
      select o.* from quality.payload_shapes o
      where o.venue = n.venue and o.stream = n.stream and o.first_seen_at < n.first_seen_at
      order by o.frames desc, o.first_seen_at
      limit 1
    ) o
  ), diffs as (
    select c.*,
           array(select k from unnest(c.keys) k except select k from unnest(c.old_keys) k order by 1) as added,
           array(select k from unnest(c.old_keys) k except select k from unnest(c.keys) k order by 1) as removed,
           coalesce((select jsonb_object_agg(k, jsonb_build_object('from', c.old_units->>k, 'to', c.time_units->>k))
                     from jsonb_object_keys(c.time_units) k
                     where c.old_units ? k and c.old_units->>k <> c.time_units->>k), '{}') as unit_changes
    from compared c
  )
  select 'payload_shape'::text,
         case when d.unit_changes <> '{}' then 'time_unit' else 'keys' end,
         case when d.unit_changes <> '{}' or cardinality(d.removed) > 0 then 'error' else 'warning' end,
         null::integer, d.venue || ':' || d.stream, d.first_seen_at, d.last_seen_at, d.frames::numeric, null::numeric,
         jsonb_build_object('added', to_jsonb(d.added), 'removed', to_jsonb(d.removed), 'unit_changes', d.unit_changes,
                            'shape', d.shape, 'previous_shape', d.old_shape, 'first_frame_id', d.first_frame_id,
                            'keys', to_jsonb(d.keys), 'time_units', d.time_units)
  from diffs d
  where cardinality(d.added) > 0 or cardinality(d.removed) > 0 or d.unit_changes <> '{}';
end
$function$
CREATE OR REPLACE FUNCTION quality.find_quarantine_anomalies(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  -- What the normalizers refused, by the reason they wrote (sql/venues): the data never reached
  -- market, and this makes it visible. Quarantined payloads name no instrument here (the venue
  -- and stream are the source); p_instruments does not narrow them.
  with q as (
    select q.quarantine_id, q.venue, q.stream, q.received_at, q.reason,
           case when q.reason like '%does not bound open and close%' then 'ohlc_invalid'
                when q.reason ~* '(nan|infinity)' or q.payload ~ '"(NaN|Infinity|-Infinity)"' and q.reason like '%not a positive%'
                  then 'non_finite'
                when q.reason like '%not positive%' or q.reason like '%not a positive%' or q.reason like '%is zero%'
                  then 'nonpositive_price'
                when q.reason like '%after it was received%' or q.reason like '%after the file was received%' then 'future_timestamp'
                when q.reason like '%is before 2009%' then 'stale_timestamp'
                else 'malformed' end as kind
    from staging.quarantine q
    where q.received_at >= p_from and q.received_at < p_to
  ), runs as (
    select q.*, sum(case when q.received_at - q.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by q.venue, q.stream, q.kind order by q.received_at, q.quarantine_id) as run
    from (select q.*, lag(q.received_at) over (partition by q.venue, q.stream, q.kind order by q.received_at, q.quarantine_id) as prev
          from q) q
  )
  select r.kind, 'quarantined', 'warning', null::integer, r.venue || ':' || r.stream,
         min(r.received_at), max(r.received_at) + interval '1 microsecond', count(*)::numeric, null::numeric,
         jsonb_build_object('quarantine_ids', (array_agg(r.quarantine_id order by r.quarantine_id))[1:20],
                            'reasons', (array_agg(distinct r.reason))[1:5])
  from runs r
  group by r.venue, r.stream, r.kind, r.run
$function$
CREATE OR REPLACE FUNCTION quality.find_quote_anomalies(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  with q as (
    select q.instrument_id, q.quoted_at, q.bid, q.ask, q.bid_size, q.ask_size, q.tradeable
    from market.quotes_between(p_from, p_to) q
    where p_instruments is null or q.instrument_id = any (p_instruments)
  ), usual as (
    select q.instrument_id,
           percentile_cont(0.5) within group (order by greatest(q.bid_size, q.ask_size)::float8)
             filter (where q.bid_size > 0 or q.ask_size > 0) as median_size
    from q group by 1
  ), bad as (
    select q.instrument_id, q.quoted_at as at, k.kind, k.value, k.baseline, q.tradeable
    from q
    join usual u using (instrument_id)
    left join quality.instrument_limits l using (instrument_id)
    cross join lateral (
      select 'crossed_quote' as kind, q.bid as value, q.ask as baseline where q.bid > q.ask
      union all
      select 'locked_quote', q.bid, q.ask where q.bid = q.ask
      union all
      select 'size_out_of_range', greatest(q.bid_size, q.ask_size),
             coalesce(l.max_quote_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
      where greatest(q.bid_size, q.ask_size) > coalesce(l.max_quote_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
    ) k
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, b.kind,
                                case when b.kind = 'size_out_of_range' then 'quote'
                                     when b.tradeable then 'tradeable' else 'indicative' end,
                                case when b.kind = 'crossed_quote' and b.tradeable then 'error' else 'warning' end,
                                'quotes', b.at, b.value, b.baseline)::quality.bad_row), '{}') from bad b))
$function$
CREATE OR REPLACE FUNCTION quality.find_silent_feeds(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  -- A session is connected from connected_at until closed_at (or still). Inside that, a stretch
  -- of at least quality.silent_feed_seconds (60) without a landed frame is a finding: the
  -- socket is alive (the watchdog counts pings and heartbeats) but no data comes. Feeds carry
  -- no instrument, so p_instruments does not narrow this detector.
  with s as (
    select s.session_id, s.feed, s.venue, greatest(s.connected_at, p_from - interval '1 hour') as live_from,
           least(coalesce(s.closed_at, 'infinity'), p_to, now()) as live_to
    from ops.sessions s
    where s.connected_at is not null and s.connected_at < p_to and coalesce(s.closed_at, 'infinity') > p_from
  ), f as (
    select f.session_id, f.received_at
    from staging.frames f
    join s using (session_id)
    where f.received_at >= p_from - interval '1 hour' and f.received_at < p_to
  ), marks as (
    -- The session's edges count as marks, so silence after connecting or before now is measured too.
    select s.session_id, s.live_from as at from s
    union all
    select s.session_id, s.live_to from s where s.live_to > s.live_from
    union all
    select f.session_id, f.received_at from f join s using (session_id) where f.received_at between s.live_from and s.live_to
  ), silences as (
    select m.session_id, m.at as silent_from, lead(m.at) over (partition by m.session_id order by m.at) as silent_to
    from marks m
  )
  select 'silent_feed', 'connected',
         case when x.silent_to - x.silent_from >= interval '5 minutes' then 'error' else 'warning' end,
         null::integer, s.feed, x.silent_from, x.silent_to,
         round(extract(epoch from x.silent_to - x.silent_from)::numeric, 3),
         quality.setting_numeric('quality.silent_feed_seconds', 60),
         jsonb_build_object('session_id', s.session_id, 'venue', s.venue)
  from silences x
  join s using (session_id)
  where x.silent_to - x.silent_from >= quality.setting_numeric('quality.silent_feed_seconds', 60) * interval '1 second'
    and x.silent_to > p_from
$function$
CREATE OR REPLACE FUNCTION quality.find_spikes(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
 SET enable_mergejoin TO 'off'
 SET work_mem TO '256MB'
AS $function$
  with params as (
    select quality.setting_numeric('quality.spike_z', 12)::float8 as z_min,
           quality.setting_numeric('quality.spike_warmup_bars', 30)::integer as warmup,
           quality.setting_numeric('quality.spike_min_scale', 0.00005)::float8 as min_scale
  ), stats as materialized (
    -- Per series and hour, in one pass over the moves (three days before p_from too: enough for
    -- the previous qualifying hour across a weekend): the median, the MAD and the extreme moves.
    -- One instrument at a time: its bars come in index order and are grouped in memory (a year
    -- of a hundred instruments at once is a sort of 40 million rows spilled to disk).
    select i.id as instrument_id, m.series, m.hour, m.n, m.med, m.mad, m.up, m.down
    from unnest(coalesce(p_instruments, array(select i.instrument_id from market.instruments i order by 1))) i(id)
    cross join lateral (
      select x.series, date_bin(interval '1 hour', x.bucket, timestamptz '2000-01-03 00:00:00+00') as hour, count(*) as n,
             percentile_cont(0.5) within group (order by x.move) as med,
             percentile_cont(0.5) within group (order by abs(x.move)) as mad,
             max(x.move) as up, min(x.move) as down
      from quality.instrument_moves(i.id, p_from - interval '3 days', p_to) x
      group by 1, 2
    ) m
  ), cur as materialized (
    -- Each hour and the series' previous hour that had enough bars.
    select s.*, max(case when s.n >= p.warmup then s.hour end)
                  over (partition by s.instrument_id, s.series order by s.hour
                        rows between unbounded preceding and 1 preceding) as base_hour
    from stats s, params p
  ), baseline as materialized (
    select cur.instrument_id, cur.series, cur.hour, cur.up, cur.down, b.med as base_med, b.n as base_n,
           1.4826 * greatest(b.mad, cur.mad) as mad_scale
    from cur
    join stats b on b.instrument_id = cur.instrument_id and b.series = cur.series and b.hour = cur.base_hour
  ), candidates as (
    -- Only the hours whose extreme move crosses the threshold are read again, bar by bar.
    select h.instrument_id, h.series, x.bucket, x.move, h.base_med, h.base_n, h.mad_scale
    from baseline h
    cross join params p
    cross join lateral quality.instrument_moves(h.instrument_id, greatest(h.hour, p_from), least(h.hour + interval '1 hour', p_to)) x
    where h.hour + interval '1 hour' > p_from and h.hour < p_to
      and greatest(h.up - h.base_med, h.base_med - h.down) >= p.z_min * h.mad_scale
      and x.series = h.series
      and abs(x.move - h.base_med) >= p.z_min * h.mad_scale
  ), judged as (
    -- The floor of the scale is relative to the price: read back for the candidates only.
    select c.instrument_id, c.series, c.bucket, c.move, c.base_med, c.base_n,
           greatest(c.mad_scale, p.min_scale * bp.reference::float8) as scale,
           (c.move - c.base_med) / greatest(c.mad_scale, p.min_scale * bp.reference::float8) as z,
           bp.reference
    from candidates c
    cross join params p
    cross join lateral quality.bar_prices(c.instrument_id, c.series, c.bucket) bp
    where abs(c.move - c.base_med) >= p.z_min * greatest(c.mad_scale, p.min_scale * bp.reference::float8)
  ), episodes as (
    select j.*, sum(case when j.bucket - j.prev_bucket <= interval '2 minutes' then 0 else 1 end)
                  over (partition by j.instrument_id, j.series order by j.bucket) as episode
    from (select j.*, lag(j.bucket) over (partition by j.instrument_id, j.series order by j.bucket) as prev_bucket
          from judged j) j
  ), spikes as (
    -- One finding per episode, described by its first bar (where the price left its reference),
    -- with the largest |z| of the episode.
    select distinct on (e.instrument_id, e.series, e.episode)
           e.instrument_id, e.series, e.episode, e.bucket, e.base_med, e.scale, e.base_n, e.z,
           max(abs(e.z)) over g as z_max,
           min(e.bucket) over g as window_from, max(e.bucket) over g + interval '1 minute' as window_to,
           count(*) over g as bars
    from episodes e
    window g as (partition by e.instrument_id, e.series, e.episode)
    order by e.instrument_id, e.series, e.episode, e.bucket
  ), checked as (
    select s.*, i.venue, i.symbol, bp.extreme, bp.reference,
           (select r.move from quality.relative_moves(s.window_from, s.window_from + interval '1 minute', array[s.instrument_id]) r
            where r.series = s.series) as move,
           (select coalesce(jsonb_agg(jsonb_build_object('instrument_id', o.instrument_id, 'series', o.series,
                                                         'move', round(o.move::numeric, 6))), '[]')
            from (
              select x.instrument_id, x.series,
                     case when s.z > 0 then max(x.move) else min(x.move) end as move
              from market.instruments oi
              cross join lateral quality.relative_moves(s.window_from - interval '1 minute', s.window_to + interval '1 minute',
                                                        array[oi.instrument_id]) x
              where oi.symbol = i.symbol
                and not (x.instrument_id = s.instrument_id and x.series = s.series)
              group by x.instrument_id, x.series
            ) o) as others
    from spikes s
    join market.instruments i using (instrument_id)
    cross join lateral quality.bar_prices(s.instrument_id, s.series, s.window_from) bp
  ), labelled as (
    select c.*,
           case when jsonb_array_length(c.others) = 0 then 'unconfirmed'
                when exists (select 1 from jsonb_array_elements(c.others) o
                             where (o->>'move')::float8 * sign(c.z) < 0.5 * abs(c.move)) then 'suspect'
                else 'confirmed' end as label
    from checked c
  )
  select 'spike', l.label,
         case when l.z_max >= 60 then 'critical' when l.z_max >= 25 then 'error' else 'warning' end,
         l.instrument_id, l.venue || ':' || l.series, l.window_from, l.window_to, l.extreme, l.reference,
         jsonb_build_object('z', round(l.z::numeric, 2), 'z_max', round(l.z_max::numeric, 2),
                            'move', round(l.move::numeric, 6), 'median', round(l.base_med::numeric, 8),
                            'scale', round(l.scale::numeric, 8), 'baseline_bars', l.base_n, 'bars', l.bars,
                            'other_sources', l.others)
  from labelled l
  where l.label <> 'confirmed'
$function$
CREATE OR REPLACE FUNCTION quality.find_timestamp_anomalies(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  -- Event times that carry the venue's clock (trades; quotes whose time_source is venue):
  --   future_timestamp  event time later than our receive time by more than
  --                     quality.future_tolerance_ms (1000): a skewed venue clock or a wrong unit;
  --   stale_timestamp   a live row (ws, stream, socket) whose event is older than
  --                     quality.stale_after_seconds (300) when received;
  --   latency           receive minus event time above the usual band of its source (venue and
  --                     series, live rows of the window and the hour before): more than
  --                     quality.latency_z (10) times 1.4826 MAD above the median and at least
  --                     quality.latency_min_excess_ms (250) above it.
  with rows as (
    select t.instrument_id, 'trades' as series, t.traded_at as at, t.received_at, t.source
    from market.trades t
    where t.traded_at >= p_from - interval '1 hour' and t.traded_at < p_to
      and (p_instruments is null or t.instrument_id = any (p_instruments))
    union all
    -- Rows only: the quotes of market.quote_blocks come from files, whose receive times say
    -- nothing of latency, and files are refused whole if they start after they were received.
    select q.instrument_id, 'quotes', q.quoted_at, q.received_at, q.source
    from market.quotes q
    where q.time_source = 'venue' and q.quoted_at >= p_from - interval '1 hour' and q.quoted_at < p_to
      and (p_instruments is null or q.instrument_id = any (p_instruments))
  ), lat as (
    select r.*, i.venue, extract(epoch from r.received_at - r.at) * 1000 as ms,
           r.source in ('ws', 'stream', 'socket') as live
    from rows r join market.instruments i using (instrument_id)
  ), band as (
    select l.venue, l.series, percentile_cont(0.5) within group (order by l.ms) as med, count(*) as n
    from lat l where l.live group by 1, 2
  ), band_mad as (
    select b.venue, b.series, b.med, b.n, percentile_cont(0.5) within group (order by abs(l.ms - b.med)) as mad
    from lat l join band b using (venue, series)
    where l.live
    group by 1, 2, 3, 4
  ), bad as (
    select l.instrument_id, l.series, l.at, l.venue,
           case when l.ms < -quality.setting_numeric('quality.future_tolerance_ms', 1000) then 'future_timestamp'
                when l.live and l.ms > quality.setting_numeric('quality.stale_after_seconds', 300) * 1000 then 'stale_timestamp'
                else 'latency' end as kind,
           round(l.ms::numeric, 3) as value, round(b.med::numeric, 3) as baseline
    from lat l
    left join band_mad b using (venue, series)
    where l.at >= p_from
      and (l.ms < -quality.setting_numeric('quality.future_tolerance_ms', 1000)
           or (l.live and l.ms > quality.setting_numeric('quality.stale_after_seconds', 300) * 1000)
           or (l.live and b.n >= 30
               and l.ms - b.med > greatest(quality.setting_numeric('quality.latency_z', 10) * 1.4826 * b.mad,
                                           quality.setting_numeric('quality.latency_min_excess_ms', 250))))
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, b.kind, case when b.kind = 'latency' then 'ms' else 'event_time' end,
                                case when b.kind = 'latency' and b.value - b.baseline < 10000 then 'warning' else 'error' end,
                                b.series, b.at, b.value, b.baseline)::quality.bad_row), '{}')
     from bad b))
$function$
CREATE OR REPLACE FUNCTION quality.find_trade_anomalies(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  with t as (
    select t.instrument_id, t.traded_at, t.size
    from market.trades t
    where t.traded_at >= p_from and t.traded_at < p_to and (p_instruments is null or t.instrument_id = any (p_instruments))
  ), usual as (
    select t.instrument_id, percentile_cont(0.5) within group (order by t.size::float8) as median_size from t group by 1
  ), bad as (
    select t.instrument_id, t.traded_at as at, t.size as value,
           coalesce(l.max_trade_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000)) as baseline
    from t
    join usual u using (instrument_id)
    left join quality.instrument_limits l using (instrument_id)
    where t.size > coalesce(l.max_trade_size, u.median_size::numeric * quality.setting_numeric('quality.size_factor', 10000))
  )
  select * from quality.runs_of(
    (select coalesce(array_agg((b.instrument_id, 'size_out_of_range', 'trade', 'warning', 'trades', b.at, b.value,
                                b.baseline)::quality.bad_row), '{}')
     from bad b))
$function$
CREATE OR REPLACE FUNCTION quality.finish_candle_gap(p_gap bigint, p_rows bigint)
 RETURNS TABLE(state text, missing bigint)
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.finish_gap_recovery(p_gap bigint, p_rows bigint)
 RETURNS TABLE(state text, missing bigint, window_from timestamp with time zone, window_to timestamp with time zone, instrument_id integer)
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.gap_missing_pages(p_gap bigint, p_page integer)
 RETURNS TABLE(from_id bigint, to_id bigint)
 LANGUAGE sql
 STABLE
AS $function$
  -- Pages (first id, last id wanted) covering every id of the gap's range not stored yet.
  select m.from_id, m.to_id
  from quality.gaps g
  cross join lateral market.missing_id_pages(g.stream, g.instrument_id, g.from_seq, g.to_seq, p_page) m
  where g.gap_id = p_gap and g.from_seq is not null and g.to_seq is not null
$function$
CREATE OR REPLACE FUNCTION quality.gap_threshold_minutes(p_active_share double precision)
 RETURNS integer
 LANGUAGE sql
 STABLE
AS $function$
  select greatest(quality.setting_numeric('quality.gap_min_minutes', 2)::integer,
                  ceil(ln(quality.setting_numeric('quality.gap_alpha', 0.000001)::float8)
                       / ln(1 - least(greatest(coalesce(p_active_share, 0.5), 0.001), 0.999)) - 1e-9)::integer)
$function$
CREATE OR REPLACE FUNCTION quality.gaps_enqueue_recovery()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.gaps_over_time(p_from timestamp with time zone, p_to timestamp with time zone, p_interval_ms bigint)
 RETURNS TABLE("time" timestamp with time zone, label text, gaps bigint)
 LANGUAGE sql
 STABLE
AS $function$
  with b as (select ops.dashboard_bucket(p_from, p_to, p_interval_ms) as width),
  buckets as (
    select t as bucket_from, t + b.width as bucket_to
    from b, generate_series(date_bin(b.width, p_from, p_from), p_to, b.width) t
  )
  select k.bucket_from as time, g.label, count(*) as gaps
  from buckets k
  join quality.gaps_labelled g on g.gap_from < k.bucket_to and coalesce(g.gap_to, now()) >= k.bucket_from
  where g.gap_from < p_to and coalesce(g.gap_to, 'infinity') >= p_from
  group by 1, 2
  order by 1, 2
$function$
CREATE OR REPLACE FUNCTION quality.has_activity(p_instrument_id integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
  select exists (select 1 from market.bars_1m_data b
                 where b.instrument_id = p_instrument_id and b.bucket >= date_trunc('minute', p_from) and b.bucket < p_to)
      or exists (select 1 from market.quotes_between(p_from, p_to) q where q.instrument_id = p_instrument_id)
      or exists (select 1 from market.candles c
                 where c.instrument_id = p_instrument_id and c.timeframe = '1m' and c.bucket >= date_trunc('minute', p_from)
                   and c.bucket < p_to and c.volume is distinct from 0)
$function$
CREATE OR REPLACE FUNCTION quality.hour_of_week(p_at timestamp with time zone, p_time_zone text)
 RETURNS smallint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- 0 = Sunday 00:00-01:00 local time.
  select (extract(dow from p_at at time zone p_time_zone) * 24 + extract(hour from p_at at time zone p_time_zone))::smallint
$function$
CREATE OR REPLACE FUNCTION quality.instrument_calendar(p_instrument_id integer)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
  select coalesce((select ic.calendar from quality.instrument_calendars ic where ic.instrument_id = p_instrument_id),
                  (select ac.calendar from market.instruments i
                   join quality.asset_class_calendars ac on ac.asset_class = i.asset_class
                   where i.instrument_id = p_instrument_id),
                  'crypto')
$function$
CREATE OR REPLACE FUNCTION quality.instrument_moves(p_instrument_id integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS TABLE(series text, bucket timestamp with time zone, move double precision)
 LANGUAGE sql
 STABLE
AS $function$
  -- quality.series_moves for one instrument, each series read through its (instrument, time)
  -- index in time order (inlined into the caller: the instrument is a plain equality there). The
  -- two differences are taken once each.
  select 'trades'::text, b.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.bars_1m_data b
  cross join lateral (select b.high - b.open as up, b.open - b.low as down) d
  where b.instrument_id = p_instrument_id and b.bucket >= p_from and b.bucket < p_to
  union all
  select 'quotes:mid', q.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.quote_bars_1m_data q
  cross join lateral (select q.high - q.open as up, q.open - q.low as down) d
  where q.instrument_id = p_instrument_id and q.bucket >= p_from and q.bucket < p_to
  union all
  select 'candles:' || c.price_side, c.bucket, (case when d.up >= d.down then d.up else -d.down end)::float8
  from market.candles c
  cross join lateral (select c.high - c.open as up, c.open - c.low as down) d
  where c.instrument_id = p_instrument_id and c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to
    and c.volume is distinct from 0
$function$
CREATE OR REPLACE FUNCTION quality.lost_minutes(p_instrument_id integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS numeric
 LANGUAGE sql
 STABLE
AS $function$
  -- Minutes of [p_from, p_to) inside open gap findings (venue outage or our loss) of the instrument.
  select quality.minutes_of(coalesce(range_agg(tstzrange(f.window_from, f.window_to)), '{}')
                            * tstzmultirange(tstzrange(p_from, p_to)))
  from quality.findings f
  where f.instrument_id = p_instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
    and f.resolved_at is null and f.window_from < p_to and f.window_to > p_from
$function$
CREATE OR REPLACE FUNCTION quality.market_closed_throughout(p_instrument_id integer, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
  -- The instrument's calendar (quality.instrument_calendar) has no open minute in [p_from, p_to):
  -- a forex pair's weekend, an equity's night or holiday. Thin hours count as open.
  select p_instrument_id is not null and p_from is not null and p_to is not null and p_to > p_from
         and isempty(quality.open_hours(quality.instrument_calendar(p_instrument_id), p_from, p_to))
$function$
CREATE OR REPLACE FUNCTION quality.messages_per_minute(p_instrument_id integer, p_at timestamp with time zone)
 RETURNS double precision
 LANGUAGE sql
 STABLE
AS $function$
  select coalesce(
    (select p.messages::float8 / p.open_minutes from quality.activity_profiles p
     where p.instrument_id = p_instrument_id and p.open_minutes >= 30
       and p.hour_of_week = quality.hour_of_week(p_at, (select c.time_zone from quality.calendars c
                                                        where c.calendar = quality.instrument_calendar(p_instrument_id)))),
    (select sum(p.messages)::float8 / nullif(sum(p.open_minutes), 0) from quality.activity_profiles p
     where p.instrument_id = p_instrument_id))
$function$
CREATE OR REPLACE FUNCTION quality.minute_activity(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS TABLE(instrument_id integer, bucket timestamp with time zone, messages bigint, series text[])
 LANGUAGE sql
 STABLE
AS $function$
  -- Minutes with data: trades (from 1-minute bars), quotes, and venue 1-minute candles that are
  -- not fillers (a candle counts its tick count where the venue gives one, else one message).
  select a.instrument_id, a.bucket, sum(a.messages)::bigint, array_agg(distinct a.series order by a.series)
  from (
    select b.instrument_id, b.bucket, b.trades::bigint as messages, 'trades' as series
    from market.bars_1m_data b
    where b.bucket >= p_from and b.bucket < p_to and (p_instruments is null or b.instrument_id = any (p_instruments))
    union all
    select q.instrument_id, date_trunc('minute', q.quoted_at), count(*), 'quotes'
    from market.quotes_between(p_from, p_to) q
    where p_instruments is null or q.instrument_id = any (p_instruments)
    group by 1, 2
    union all
    select c.instrument_id, c.bucket,
           coalesce(c.trade_count, case when c.volume_kind = 'tick_count' then c.volume::bigint end, 1), 'candles:' || c.price_side
    from market.candles c
    where c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
      and (p_instruments is null or c.instrument_id = any (p_instruments))
  ) a
  group by a.instrument_id, a.bucket
$function$
CREATE OR REPLACE FUNCTION quality.minutes_of(p_hours tstzmultirange)
 RETURNS numeric
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select trim_scale(coalesce(sum(extract(epoch from upper(r) - lower(r)) / 60), 0))
  from unnest(p_hours) r
  where not isempty(r) and not upper_inf(r) and not lower_inf(r)
$function$
CREATE OR REPLACE FUNCTION quality.note_gap_error(p_gap bigint, p_error text)
 RETURNS void
 LANGUAGE sql
AS $function$
  update quality.gaps set last_error = left(p_error, 2000), state = 'queued', updated_at = now()
  where gap_id = p_gap and state = 'recovering'
$function$
CREATE OR REPLACE FUNCTION quality.open_hours(p_calendar text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS tstzmultirange
 LANGUAGE sql
 STABLE
AS $function$
  with cal as (
    select c.* from quality.calendars c where c.calendar = p_calendar
  ), days as (
    -- Local dates around the window (a week before: a session may open days before p_from).
    select (p_from at time zone c.time_zone)::date - 7 as d0, (p_to at time zone c.time_zone)::date + 1 as d1 from cal c
  ), weeks as (
    -- Integer steps over dates: no timestamp (and so no session time zone) is involved.
    select d.d0 - extract(dow from d.d0)::integer + 7 * k as sunday
    from days d, generate_series(0, (d.d1 - d.d0) / 7 + 1) k
  ), sessions as (
    select tstzrange(((w.sunday + s.opens_dow) + s.opens_at) at time zone c.time_zone,
                     ((w.sunday + s.closes_dow
                       + case when (s.closes_dow, s.closes_at) <= (s.opens_dow, s.opens_at) then 7 else 0 end)
                      + s.closes_at) at time zone c.time_zone) as r
    from cal c
    join quality.calendar_sessions s on s.calendar = c.calendar
    cross join weeks w
  ), closures as (
    select tstzrange(x.closed_from at time zone c.time_zone, x.closed_to at time zone c.time_zone) as r
    from cal c
    join quality.calendar_closures x on x.calendar = c.calendar
    where x.closed_from <= (p_to at time zone c.time_zone) + interval '1 day'
      and x.closed_to >= (p_from at time zone c.time_zone) - interval '1 day'
  )
  select case
           when p_to <= p_from then '{}'::tstzmultirange
           when c.always_open then tstzmultirange(tstzrange(p_from, p_to))
           else (coalesce((select range_agg(s.r) from sessions s), '{}')
                 - coalesce((select range_agg(x.r) from closures x), '{}'))
                * tstzmultirange(tstzrange(p_from, p_to))
         end
  from cal c
$function$
CREATE OR REPLACE FUNCTION quality.payload_shape(p_payload text, p_received_at timestamp with time zone)
 RETURNS TABLE(keys text[], time_units jsonb)
 LANGUAGE sql
 STABLE
AS $function$
  -- Keys of the payload's object (of its first element for an array), one level of nested objects
  -- as parent.key; and for every integer field that reads as a time within five years of
  -- p_received_at in seconds, milliseconds, microseconds or nanoseconds, that unit. Ids and
  -- counters are far from any such time, so they never count as timestamps.
  with j as (
    select case when pg_input_is_valid(p_payload, 'jsonb') then p_payload::jsonb end as d
  ), root as (
    select case when jsonb_typeof(j.d) = 'array' then j.d->0 else j.d end as o, jsonb_typeof(j.d) = 'array' as arr from j
  ), fields as (
    select case when root.arr then '[].' else '' end || e.key as key, e.value
    from root, jsonb_each(case when jsonb_typeof(root.o) = 'object' then root.o else '{}' end) e
    union all
    select case when root.arr then '[].' else '' end || e.key || '.' || n.key, n.value
    from root, jsonb_each(case when jsonb_typeof(root.o) = 'object' then root.o else '{}' end) e,
         jsonb_each(case when jsonb_typeof(e.value) = 'object' then e.value else '{}' end) n
  ), units as (
    select f.key, u.unit
    from fields f
    cross join lateral (
      select u.unit from (values ('s', 1e0), ('ms', 1e3), ('us', 1e6), ('ns', 1e9)) u(unit, per_second)
      where jsonb_typeof(f.value) = 'number' and (f.value)::text ~ '^[0-9]{9,20}$'
        and abs((f.value)::text::numeric / u.per_second - extract(epoch from p_received_at)) < 5 * 366 * 86400
      limit 1
    ) u
  )
  select case when (select d from j) is null then array['(not json)']
              else coalesce((select array_agg(f.key order by f.key) from fields f), '{}') end,
         coalesce((select jsonb_object_agg(u.key, u.unit) from units u), '{}')
$function$
CREATE OR REPLACE FUNCTION quality.raise_alerts(p_finding_ids bigint[])
 RETURNS SETOF jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_finding quality.findings;
  v_payload jsonb;
begin
  -- A finding alerts once per severity it reaches: again only if it escalates.
  for v_finding in
    update quality.findings f
       set alerted_at = now(), alerted_severity = f.severity
     where f.finding_id = any (p_finding_ids)
       and f.resolved_at is null
       and quality.severity_rank(f.severity) >= quality.severity_rank(quality.alert_threshold(f.kind))
       and (f.alerted_severity is null or quality.severity_rank(f.severity) > quality.severity_rank(f.alerted_severity))
    returning f.*
  loop
    v_payload := quality.alert_payload(v_finding);
    perform pg_notify('tickflow_alerts', v_payload::text);
    return next v_payload;
  end loop;
end
$function$
CREATE OR REPLACE FUNCTION quality.refresh_activity_profiles(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS integer
 LANGUAGE sql
AS $function$
  -- The usual activity by hour of the week, learnt from [p_from, p_to) (the job uses the last
  -- four weeks): expected minutes from the calendar (less those inside open gap findings), minutes
  -- with data and messages in them.
  with inst as (
    select i.instrument_id, quality.instrument_calendar(i.instrument_id) as calendar
    from market.instruments i
    where p_instruments is null or i.instrument_id = any (p_instruments)
  ), cal as (
    select c.calendar, c.time_zone, quality.expected_hours(c.calendar, p_from, p_to) as expected
    from quality.calendars c where c.calendar in (select calendar from inst)
  ), open_minutes as (
    select cal.calendar, quality.hour_of_week(m, cal.time_zone) as how, count(*)::integer as minutes
    from cal, unnest(cal.expected) r, generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
    group by 1, 2
  ), lost as (
    -- Open minutes inside known gaps (venue outage, our loss) are not learnt as usual silence.
    select inst.instrument_id, quality.hour_of_week(m, cal.time_zone) as how, count(*)::integer as minutes
    from inst
    join cal using (calendar)
    cross join lateral (
      select coalesce(range_agg(tstzrange(f.window_from, f.window_to)), '{}'::tstzmultirange) as hours
      from quality.findings f
      where f.instrument_id = inst.instrument_id and f.kind = 'gap' and f.label in ('our_loss', 'venue_outage')
        and f.resolved_at is null and f.window_from < p_to and f.window_to > p_from
    ) g
    cross join lateral unnest(g.hours * cal.expected) r
    cross join lateral generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
    group by 1, 2
  ), active as (
    select a.instrument_id, quality.hour_of_week(a.bucket, cal.time_zone) as how, count(*)::integer as minutes,
           sum(a.messages)::bigint as messages
    from quality.minute_activity(p_from, p_to, p_instruments) a
    join inst using (instrument_id)
    join cal using (calendar)
    where cal.expected @> a.bucket
    group by 1, 2
  ), rows as (
    select inst.instrument_id, o.how, o.minutes - coalesce(l.minutes, 0) as open_minutes,
           least(coalesce(a.minutes, 0), o.minutes - coalesce(l.minutes, 0)) as active_minutes, coalesce(a.messages, 0) as messages
    from inst
    join open_minutes o using (calendar)
    left join active a on a.instrument_id = inst.instrument_id and a.how = o.how
    left join lost l on l.instrument_id = inst.instrument_id and l.how = o.how
    where exists (select 1 from active x where x.instrument_id = inst.instrument_id)
  ), up as (
    insert into quality.activity_profiles as p (instrument_id, hour_of_week, open_minutes, active_minutes, messages,
                                                sampled_from, sampled_to, updated_at)
    select r.instrument_id, r.how, r.open_minutes, r.active_minutes, r.messages, p_from, p_to, now()
    from rows r
    on conflict (instrument_id, hour_of_week) do update
      set open_minutes = excluded.open_minutes, active_minutes = excluded.active_minutes, messages = excluded.messages,
          sampled_from = excluded.sampled_from, sampled_to = excluded.sampled_to, updated_at = excluded.updated_at
    returning 1
  )
  select count(*)::integer from up
$function$
CREATE OR REPLACE FUNCTION quality.refresh_daily_coverage(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS integer
 LANGUAGE sql
AS $function$
  -- Whole UTC days touching [p_from, p_to), for instruments with data in them or a row already.
  with days as (
    select (d at time zone 'UTC')::date as day
    from generate_series(date_trunc('day', p_from, 'UTC'), p_to - interval '1 microsecond', interval '1 day') d
  ), span as (
    select min(day)::timestamp at time zone 'UTC' as f, (max(day) + 1)::timestamp at time zone 'UTC' as t from days
  ), act as (
    select a.instrument_id, (a.bucket at time zone 'UTC')::date as day, a.bucket, a.messages
    from span, quality.minute_activity(span.f, span.t, p_instruments) a
  ), inst as (
    select i.instrument_id, quality.instrument_calendar(i.instrument_id) as calendar
    from market.instruments i
    where (p_instruments is null or i.instrument_id = any (p_instruments))
      and (exists (select 1 from act a where a.instrument_id = i.instrument_id)
           or exists (select 1 from quality.daily_coverage c, days d where c.instrument_id = i.instrument_id and c.day = d.day))
  ), cal as (
    select c.calendar, c.time_zone, d.day,
           quality.expected_hours(c.calendar, d.day::timestamp at time zone 'UTC', (d.day + 1)::timestamp at time zone 'UTC') as expected
    from quality.calendars c, days d
    where c.calendar in (select calendar from inst)
  ), expected_messages as (
    -- Sum over the day's expected minutes of the usual rate at their hour of the week.
    select inst.instrument_id, cal.day, sum(p.messages::float8 / nullif(p.open_minutes, 0) * h.minutes) as messages
    from inst
    join cal using (calendar)
    cross join lateral (
      select quality.hour_of_week(m, cal.time_zone) as how, count(*) as minutes
      from unnest(cal.expected) r, generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') m
      group by 1
    ) h
    join quality.activity_profiles p on p.instrument_id = inst.instrument_id and p.hour_of_week = h.how
    group by 1, 2
  ), rows as (
    select inst.instrument_id, cal.day, quality.minutes_of(cal.expected)::integer as expected_minutes,
           (select count(*) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day)::integer as active_minutes,
           (select count(*) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day
              and cal.expected @> a.bucket)::integer as active_open_minutes,
           (select coalesce(sum(a.messages), 0) from act a where a.instrument_id = inst.instrument_id and a.day = cal.day)::bigint
             as messages,
           round(e.messages::numeric) as expected_messages
    from inst
    join cal using (calendar)
    left join expected_messages e on e.instrument_id = inst.instrument_id and e.day = cal.day
  ), up as (
    insert into quality.daily_coverage as c (instrument_id, day, expected_minutes, active_minutes, active_open_minutes,
                                             messages, expected_messages, computed_at)
    select r.instrument_id, r.day, r.expected_minutes, r.active_minutes, r.active_open_minutes, r.messages,
           r.expected_messages, now()
    from rows r
    on conflict (instrument_id, day) do update
      set expected_minutes = excluded.expected_minutes, active_minutes = excluded.active_minutes,
          active_open_minutes = excluded.active_open_minutes, messages = excluded.messages,
          expected_messages = excluded.expected_messages, computed_at = excluded.computed_at
    returning 1
  )
  select count(*)::integer from up
$function$
CREATE OR REPLACE FUNCTION quality.relative_moves(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[])
 RETURNS TABLE(instrument_id integer, series text, bucket timestamp with time zone, move double precision)
 LANGUAGE sql
 STABLE
AS $function$
  -- The same move as a log return against the open, for the few bars a spike is compared on.
  select s.instrument_id, s.series, s.bucket,
         case when s.high - s.open >= s.open - s.low then ln(s.high::float8 / s.open::float8)
              else ln(s.low::float8 / s.open::float8) end
  from quality.series_1m(p_from, p_to, p_instruments) s
  where s.open > 0 and s.low > 0
$function$
CREATE OR REPLACE FUNCTION quality.run_detector(p_detector text, p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_det quality.detectors;
  v_run timestamptz := clock_timestamp();
  v_ids bigint[];
  v_new bigint;
  v_updated bigint;
  v_resolved bigint;
  v_alerts jsonb;
  v_started timestamptz := clock_timestamp();
begin
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception using errcode = '22023',
      message = format('quality.run_detector: expected p_from < p_to, received [%s, %s)', p_from, p_to);
  end if;
  select * into v_det from quality.detectors d where d.detector = p_detector;
  if not found then
    raise exception using errcode = '22023',
      message = format('quality.run_detector: unknown detector %s', coalesce(quote_literal(p_detector), 'null')),
      hint = 'The detectors are listed in quality.detectors.';
  end if;
  -- One statement: the detector's rows, one per key (the most severe), upserted.
  execute format($q$
    with found as (
      select distinct on (f.kind, f.instrument_id, f.source, f.window_from) f.*
      from %s($1, $2, $3) f
      order by f.kind, f.instrument_id, f.source, f.window_from, quality.severity_rank(f.severity) desc
    ), up as (
      insert into quality.findings as q (kind, label, severity, instrument_id, source, window_from, window_to, value,
                                         baseline, detail, detector, first_seen_at, last_seen_at)
      select f.kind, coalesce(f.label, ''), f.severity, f.instrument_id, f.source, f.window_from, f.window_to, f.value,
             f.baseline, coalesce(f.detail, '{}'), $4, $5, $5
      from found f
      on conflict on constraint findings_key do update
        set label = excluded.label, severity = excluded.severity, window_to = excluded.window_to,
            value = excluded.value, baseline = excluded.baseline, detail = excluded.detail,
            detector = excluded.detector, last_seen_at = excluded.last_seen_at, resolved_at = null
      returning q.finding_id, (q.xmax = 0) as inserted
    )
    select coalesce(array_agg(finding_id), '{}'), count(*) filter (where inserted), count(*) filter (where not inserted)
    from up$q$, v_det.fn::regproc)
  into v_ids, v_new, v_updated
  using p_from, p_to, p_instruments, p_detector, v_run;

  -- What this detector found before in this window and not now is resolved (kept, not deleted).
  update quality.findings f set resolved_at = v_run
  where f.detector = p_detector and f.resolved_at is null and f.last_seen_at < v_run
    and f.window_from >= p_from and f.window_from < p_to
    and (p_instruments is null or f.instrument_id = any (p_instruments));
  get diagnostics v_resolved = row_count;

  select coalesce(jsonb_agg(a), '[]') into v_alerts from quality.raise_alerts(v_ids) a;
  return jsonb_build_object('detector', p_detector, 'found', cardinality(v_ids), 'new', v_new, 'updated', v_updated,
                            'resolved', v_resolved, 'alerts', v_alerts,
                            'ms', round(extract(epoch from clock_timestamp() - v_started) * 1000));
end
$function$
CREATE OR REPLACE FUNCTION quality.runs_of(p_rows quality.bad_row[])
 RETURNS SETOF quality.finding_row
 LANGUAGE sql
 STABLE
AS $function$
  -- Rows of one instrument, kind, label and series less than a minute apart make one finding:
  -- window = [first row, last row + 1 microsecond), value and baseline of the row furthest from
  -- its baseline.
  with r as (
    select x.*, sum(case when x.at - x.prev <= interval '1 minute' then 0 else 1 end)
                  over (partition by x.instrument_id, x.kind, x.label, x.series order by x.at) as run
    from (select u.*, lag(u.at) over (partition by u.instrument_id, u.kind, u.label, u.series order by u.at) as prev
          from unnest(p_rows) u) x
  )
  select distinct on (r.instrument_id, r.kind, r.label, r.series, r.run)
         r.kind, r.label, (array['info', 'warning', 'error', 'critical'])[max(quality.severity_rank(r.severity)) over g + 1],
         r.instrument_id, i.venue || ':' || r.series,
         min(r.at) over g, max(r.at) over g + interval '1 microsecond', r.value, r.baseline,
         jsonb_build_object('rows', count(*) over g, 'at', r.at)
  from r
  join market.instruments i using (instrument_id)
  window g as (partition by r.instrument_id, r.kind, r.label, r.series, r.run)
  order by r.instrument_id, r.kind, r.label, r.series, r.run, abs(r.value - coalesce(r.baseline, 0)) desc nulls last, r.at
$function$
CREATE OR REPLACE FUNCTION quality.scan_candle_gaps(p_venue text, p_symbol text, p_timeframe text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.scan_recent_candle_gaps()
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.scan_recent_trade_gaps()
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.scan_trade_gaps(p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION quality.series_1m(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS TABLE(instrument_id integer, series text, bucket timestamp with time zone, open numeric, high numeric, low numeric, close numeric, volume numeric)
 LANGUAGE sql
 STABLE
AS $function$
  select b.instrument_id, 'trades'::text, b.bucket, b.open, b.high, b.low, b.close, b.volume
  from market.bars_1m_data b
  where b.bucket >= p_from and b.bucket < p_to and (p_instruments is null or b.instrument_id = any (p_instruments))
  union all
  select q.instrument_id, 'quotes:mid', q.bucket, q.open, q.high, q.low, q.close, null::numeric
  from market.quote_bars_1m_data q
  where q.bucket >= p_from and q.bucket < p_to and (p_instruments is null or q.instrument_id = any (p_instruments))
  union all
  select c.instrument_id, 'candles:' || c.price_side, c.bucket, c.open, c.high, c.low, c.close, c.volume
  from market.candles c
  where c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
    and (p_instruments is null or c.instrument_id = any (p_instruments))
$function$
CREATE OR REPLACE FUNCTION quality.series_moves(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS TABLE(instrument_id integer, series text, bucket timestamp with time zone, move double precision)
 LANGUAGE sql
 STABLE
AS $function$
  -- Per bar: high - open or low - open, whichever is further, in price units. No window and no
  -- sort: one pass over each series in the window.
  select b.instrument_id, 'trades'::text, b.bucket,
         (case when b.high - b.open >= b.open - b.low then b.high - b.open else b.low - b.open end)::float8
  from market.bars_1m_data b
  where b.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and b.bucket >= p_from and b.bucket < p_to
  union all
  select q.instrument_id, 'quotes:mid', q.bucket,
         (case when q.high - q.open >= q.open - q.low then q.high - q.open else q.low - q.open end)::float8
  from market.quote_bars_1m_data q
  where q.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and q.bucket >= p_from and q.bucket < p_to
  union all
  select c.instrument_id, 'candles:' || c.price_side, c.bucket,
         (case when c.high - c.open >= c.open - c.low then c.high - c.open else c.low - c.open end)::float8
  from market.candles c
  where c.instrument_id = any (coalesce(p_instruments, array(select i.instrument_id from market.instruments i)))
    and c.timeframe = '1m' and c.bucket >= p_from and c.bucket < p_to and c.volume is distinct from 0
$function$
CREATE OR REPLACE FUNCTION quality.setting_numeric(p_key text, p_default numeric)
 RETURNS numeric
 LANGUAGE sql
 STABLE
AS $function$
  select coalesce((select value::numeric from ops.settings where key = p_key), p_default)
$function$
CREATE OR REPLACE FUNCTION quality.severity_rank(p_severity text)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case p_severity when 'info' then 0 when 'warning' then 1 when 'error' then 2 when 'critical' then 3 end
$function$
CREATE OR REPLACE FUNCTION quality.silences(p_from timestamp with time zone, p_to timestamp with time zone, p_instruments integer[] DEFAULT NULL::integer[])
 RETURNS TABLE(instrument_id integer, series text, silence tstzmultirange)
 LANGUAGE sql
 STABLE
AS $function$
  -- Per instrument and series, the whole minutes of [start, p_to) without data, where start is
  -- the series' last minute with data before p_from (one index probe, so a silence that began
  -- earlier keeps its start from one run to the next). A series with nothing before p_from
  -- starts with its first row: what came before it is not a silence of the series. Minute m has
  -- data when a row falls in [m, m + 1 minute). Each series is read in the order of its
  -- (instrument, time) index (quotes of both stores are sorted: blocks are unnested), and only
  -- the rows that start a silence reach the aggregate.
  with w as materialized (
    select date_trunc('minute', p_from) as f, greatest(date_trunc('minute', p_to), date_trunc('minute', p_from)) as t,
           coalesce(p_instruments, array(select i.instrument_id from market.instruments i)) as ids
  ), steps as (
    select b.instrument_id, 'trades'::text as series, b.bucket as m,
           lead(b.bucket) over (partition by b.instrument_id order by b.bucket) as next_m
    from market.bars_1m_data b
    where b.instrument_id = any ((select ids from w)::integer[]) and b.bucket >= (select f from w) and b.bucket < (select t from w)
    union all
    select q.instrument_id, 'quotes', date_trunc('minute', q.quoted_at),
           date_trunc('minute', lead(q.quoted_at) over (partition by q.instrument_id order by q.quoted_at))
    from w cross join lateral market.quotes_between(w.f, w.t) q
    where q.instrument_id = any (w.ids)
    union all
    select c.instrument_id, 'candles:' || c.price_side, c.bucket,
           lead(c.bucket) over (partition by c.instrument_id, c.price_side order by c.bucket)
    from market.candles c
    where c.instrument_id = any ((select ids from w)::integer[]) and c.timeframe = '1m' and c.bucket >= (select f from w)
      and c.bucket < (select t from w) and c.volume is distinct from 0
  ), inside as (
    select s.instrument_id, s.series,
           range_agg(tstzrange(s.m + interval '1 minute', coalesce(s.next_m, w.t))) as sil
    from steps s, w
    where coalesce(s.next_m, w.t) > s.m + interval '1 minute'
    group by s.instrument_id, s.series
  ), edges as (
    -- Per instrument and series: the last minute with data before the window and the first in it.
    select x.instrument_id, x.series, x.prev_m, x.first_m
    from (
      select i.id as instrument_id, 'trades'::text as series,
             (select max(b.bucket) from market.bars_1m_data b where b.instrument_id = i.id and b.bucket < w.f) as prev_m,
             (select min(b.bucket) from market.bars_1m_data b where b.instrument_id = i.id and b.bucket >= w.f and b.bucket < w.t) as first_m
      from w, unnest(w.ids) i(id)
      union all
      select i.id, 'quotes',
             date_trunc('minute', market.last_quote_time_before(i.id, w.f)),
             date_trunc('minute', market.first_quote_time_in(i.id, w.f, w.t))
      from w, unnest(w.ids) i(id)
      union all
      select i.id, 'candles:' || s.side,
             (select max(c.bucket) from market.candles c
              where c.instrument_id = i.id and c.timeframe = '1m' and c.price_side = s.side and c.bucket < w.f
                and c.volume is distinct from 0),
             (select min(c.bucket) from market.candles c
              where c.instrument_id = i.id and c.timeframe = '1m' and c.price_side = s.side and c.bucket >= w.f
                and c.bucket < w.t and c.volume is distinct from 0)
      from w, unnest(w.ids) i(id), (values ('bid'), ('ask'), ('mid'), ('trade')) s(side)
    ) x
    where x.prev_m is not null or x.first_m is not null
  )
  select e.instrument_id, e.series,
         coalesce(i.sil, '{}'::tstzmultirange)
         + case when e.first_m is null then tstzmultirange(tstzrange(least(e.prev_m + interval '1 minute', w.t), w.t))
                when e.prev_m + interval '1 minute' < e.first_m
                  then tstzmultirange(tstzrange(e.prev_m + interval '1 minute', e.first_m))
                else '{}'::tstzmultirange end
  from edges e
  cross join w
  left join inside i using (instrument_id, series)
$function$
CREATE OR REPLACE FUNCTION quality.thin_hours(p_calendar text, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS tstzmultirange
 LANGUAGE sql
 STABLE
AS $function$
  -- Daily thin windows (the forex rollover) that fall in open hours.
  select coalesce((
    select range_agg(tstzrange((d.day + t.starts_at) at time zone c.time_zone, (d.day + t.ends_at) at time zone c.time_zone))
    from quality.calendars c
    join quality.calendar_thin_hours t on t.calendar = c.calendar
    cross join lateral (select (p_from at time zone c.time_zone)::date - 1 + k as day
                        from generate_series(0, (p_to at time zone c.time_zone)::date - (p_from at time zone c.time_zone)::date + 2) k) d
    where c.calendar = p_calendar), '{}'::tstzmultirange)
    * coalesce(quality.open_hours(p_calendar, p_from, p_to), '{}'::tstzmultirange)
$function$
CREATE OR REPLACE FUNCTION staging.binance_frames(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_stream text, p_careful boolean DEFAULT true)
 RETURNS TABLE(frame_id bigint, batch_id uuid, venue text, stream text, received_at timestamp with time zone, source text, payload text, d jsonb)
 LANGUAGE sql
 STABLE
AS $function$
  -- Each payload is parsed once (materialized), however often d is used.
  with j as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when not p_careful or pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = p_stream
      and f.received_at >= p_from and f.received_at < p_to
  )
  select frame_id, batch_id, venue, stream, received_at, source, payload, coalesce(j -> 'data', j) from j
$function$
CREATE OR REPLACE FUNCTION staging.binance_instruments(p_symbols text[])
 RETURNS TABLE(instrument_id integer, venue_symbol text)
 LANGUAGE sql
AS $function$
  -- Venue symbols seen for the first time become instruments (canonical form from the symbol),
  -- for live frames and REST pages alike. Two batches or backfill chunks may meet a new symbol at
  -- once: "do update" waits for the other's insert and returns its row, where "do nothing" would
  -- return nothing and the page would be refused.
  with existing as (
    select i.instrument_id, i.venue_symbol from market.instruments i
    where i.venue = 'binance' and i.venue_symbol = any (p_symbols)
  ), registered as (
    insert into market.instruments as i (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'binance', n.s, c.symbol, c.base, c.quote, 'crypto'
    from (select distinct unnest(p_symbols) as s) n
    cross join lateral market.binance_symbol(n.s) c
    where n.s ~ '^[A-Z0-9]{2,30}$' and not exists (select 1 from existing e where e.venue_symbol = n.s)
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning i.instrument_id, i.venue_symbol
  )
  select e.instrument_id, e.venue_symbol from existing e
  union all
  select r.instrument_id, r.venue_symbol from registered r
$function$
CREATE OR REPLACE FUNCTION staging.binance_interval(p_interval text)
 RETURNS TABLE(timeframe text, width interval)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- Fixed-width kline intervals; 1w and 1M (calendar weeks and months) are not taken here.
  select p_interval, v.width
  from (values ('1s', interval '1 second'), ('1m', interval '1 minute'), ('3m', interval '3 minutes'),
               ('5m', interval '5 minutes'), ('15m', interval '15 minutes'), ('30m', interval '30 minutes'),
               ('1h', interval '1 hour'), ('2h', interval '2 hours'), ('4h', interval '4 hours'),
               ('6h', interval '6 hours'), ('8h', interval '8 hours'), ('12h', interval '12 hours'),
               ('1d', interval '1 day'), ('3d', interval '3 days')) v(name, width)
  where v.name = p_interval
$function$
CREATE OR REPLACE FUNCTION staging.binance_kline_refused(p_frame_id bigint, p_kline jsonb)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
begin
  -- Raised by the fast way for a kline or page it cannot take as it is; the careful way then
  -- does the batch again and names the problem.
  raise exception 'kline of frame % is not taken by the fast way: %', p_frame_id, coalesce(left(p_kline::text, 120), '(the page)')
    using errcode = 'data_exception';
end
$function$
CREATE OR REPLACE FUNCTION staging.binance_klines_careful(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- Every value is tested before it is used (a bad kline is quarantined with its reason, the
  -- rest of its page is kept) and candles are upserted. A kline is complete when it closed
  -- before the page was received; an incomplete one is replaced by a later complete one, never
  -- the reverse.
  with pages as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.payload, p.request, p.symbol, p.status,
           substring(p.request from '[?&]interval=([0-9]+[smhdwM])') as interval,
           case when pg_input_is_valid(p.payload, 'jsonb') then p.payload::jsonb end as d
    from (select f.frame_id, f.batch_id, f.received_at, f.source, f.payload, f.request,
                 upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
                 substring(f.request from ' ([0-9]{3})$') as status
          from staging.frames f
          where f.batch_id = p_batch and f.venue = 'binance' and f.stream = 'klines'
            and f.received_at >= p_from and f.received_at < p_to) p
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where symbol is not null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id, tf.timeframe, tf.width, (extract(epoch from tf.width) * 1000)::bigint as width_ms,
           case
             when p.d is not null and jsonb_typeof(p.d) = 'object' and (p.d->>'code') is not null
               then 'venue error ' || (p.d->>'code') || coalesce(' (HTTP ' || p.status || ')', '') || ': '
                    || left(coalesce(p.d->>'msg', ''), 200)
             when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ': ' || left(p.payload, 200)
             when p.d is null then 'payload is not valid JSON (a cut response?): ' || left(p.payload, 80)
             when jsonb_typeof(p.d) <> 'array' then 'expected a JSON array, received ' || jsonb_typeof(p.d)
             when p.symbol is null then 'request names no symbol: ' || coalesce(p.request, '(none)')
             when tf.timeframe is null then 'unsupported or missing kline interval: ' || coalesce(p.interval, '(none)')
             when i.instrument_id is null then 'unknown symbol ' || p.symbol
           end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.symbol
    left join lateral staging.binance_interval(p.interval) tf on true
  ), valued as materialized (
    -- The klines and their values, each tested before it is cast.
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.timeframe, p.width_ms, (e.n - 1)::integer as item, e.r,
           k.shape_ok, t.ints_ok, t.strings_ok,
           case when k.shape_ok and staging.is_int_text(e.r->>0) then (e.r->>0)::bigint end as open_ms,
           case when k.shape_ok and staging.is_int_text(e.r->>6) then (e.r->>6)::bigint end as close_ms,
           case when k.shape_ok and staging.is_int_text(e.r->>8) then (e.r->>8)::bigint end as trades,
           case when k.shape_ok then staging.numeric_or_null(e.r->>1) end as o,
           case when k.shape_ok then staging.numeric_or_null(e.r->>2) end as h,
           case when k.shape_ok then staging.numeric_or_null(e.r->>3) end as l,
           case when k.shape_ok then staging.numeric_or_null(e.r->>4) end as c,
           case when k.shape_ok then staging.numeric_or_null(e.r->>5) end as v
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    cross join lateral (select jsonb_typeof(e.r) = 'array' and jsonb_array_length(e.r) >= 9 as shape_ok) k
    cross join lateral (
      select k.shape_ok and jsonb_typeof(e.r->0) = 'number' and jsonb_typeof(e.r->6) = 'number' and jsonb_typeof(e.r->8) = 'number'
             as ints_ok,
             k.shape_ok and jsonb_typeof(e.r->1) = 'string' and jsonb_typeof(e.r->2) = 'string' and jsonb_typeof(e.r->3) = 'string'
             and jsonb_typeof(e.r->4) = 'string' and jsonb_typeof(e.r->5) = 'string' as strings_ok
    ) t
    where p.problem is null
  ), judged as materialized (
    -- The first problem of each kline; its text is kept only when it is refused.
    select v.frame_id, v.received_at, v.source, v.instrument_id, v.timeframe, v.item, v.open_ms, v.close_ms, v.trades,
           v.o, v.h, v.l, v.c, v.v, staging.epoch_ms(v.open_ms) as bucket, x.problem,
           case when x.problem is not null then v.r::text end as bad_text
    from valued v
    cross join lateral (select case
        when not v.shape_ok
          then 'expected a kline array [openTime, o, h, l, c, v, closeTime, quoteVolume, trades, ...], received ' || left(v.r::text, 80)
        when not v.ints_ok or v.open_ms is null or v.close_ms is null or v.trades is null
          then 'open time, close time or trade count is not an integer: ' || left(v.r::text, 120)
        when not v.strings_ok then 'open, high, low, close and volume must be decimal strings: ' || left(v.r::text, 120)
        when v.open_ms % v.width_ms <> 0 then 'open time ' || v.open_ms || ' is not on a ' || v.timeframe || ' boundary'
        when v.close_ms <> v.open_ms + v.width_ms - 1 then 'close time ' || v.close_ms || ' does not end the ' || v.timeframe || ' bucket'
        when coalesce(not (v.o > 0 and v.h > 0 and v.l > 0 and v.c > 0 and v.h < 'Infinity' and v.o <> 'NaN'
                                         and v.c <> 'NaN'), true)
          then 'open, high, low or close is not a positive finite decimal: ' || left(v.r::text, 120)
        when (v.l > least(v.o, v.c) or v.h < greatest(v.o, v.c))
          then 'low or high does not bound open and close: ' || left(v.r::text, 120)
        when coalesce(not (v.v >= 0 and v.v < 'Infinity'), true)
          then 'volume is not a non-negative decimal: ' || coalesce((v.r->5)::text, '(none)')
        when v.trades < 0 then 'trade count is negative: ' || (v.r->8)::text
        else staging.time_problem(staging.epoch_ms(v.open_ms), v.received_at)
      end as problem) x
  ), good as materialized (
    -- One row per candle key (the same kline on two pages of a batch: the later one), and
    -- whether it replaces an incomplete stored candle (an update, not an insert).
    select distinct on (g.instrument_id, g.timeframe, g.bucket) g.*,
           exists (select 1 from market.candles c
                   where c.instrument_id = g.instrument_id and c.timeframe = g.timeframe
                     and c.price_side = 'trade' and c.bucket = g.bucket and not c.complete) as replaces
    from judged g
    where g.problem is null
    order by g.instrument_id, g.timeframe, g.bucket, g.received_at desc, g.frame_id desc
  ), ups as (
    insert into market.candles as c (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, 'trade', g.o, g.h, g.l, g.c, g.v, 'base', g.trades,
           staging.epoch_ms(g.close_ms) < g.received_at, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at,
          frame_id = excluded.frame_id
      where not c.complete
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, bad_text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'klines', p.received_at, b.payload, b.problem, 'normalize_binance_klines_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'klines', (select count(*) from judged),
    'candles', (select count(*) from ups) - (select count(*) from good where replaces),
    'candles_updated', (select count(*) from good where replaces),
    'candles_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.binance_klines_fast(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- The careful way's checks, in one pass that raises instead of explaining: casts without a
  -- test first (bad text raises), a plain insert (a candle already stored raises), the JSON type
  -- of every value read and the kline's place in time tested per kline (a failure raises), and
  -- what market.candles enforces itself (positive, finite, ordered prices; non-negative volume
  -- and trade count; no NaN or Infinity) left to its check constraints, which raise. Nothing is
  -- materialized per kline, and each value is read once.
  with pages as materialized (
    select f.frame_id, f.received_at, f.source,
           upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
           substring(f.request from '[?&]interval=([0-9]+[smhdwM])') as interval,
           substring(f.request from ' ([0-9]{3})$') as status,
           f.payload::jsonb as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = 'klines'
      and f.received_at >= p_from and f.received_at < p_to
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where symbol is not null))
  ), checked_pages as materialized (
    select p.frame_id, p.received_at, p.source, p.d, i.instrument_id, tf.timeframe,
           (extract(epoch from tf.width) * 1000)::bigint as width_ms,
           -- staging.time_problem's bounds in epoch milliseconds: 2009-01-01, a day after receipt
           1230768000000 as earliest_ms,
           (extract(epoch from greatest(p.received_at, now()) + interval '1 day') * 1000)::bigint as latest_ms
    from pages p
    left join instruments i on i.venue_symbol = p.symbol
    left join lateral staging.binance_interval(p.interval) tf on true
    where case when p.status = '200' and jsonb_typeof(p.d) = 'array' and tf.timeframe is not null and i.instrument_id is not null
               then true else staging.binance_kline_refused(p.frame_id, null) is null end
  ), ins as (
    insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                volume_kind, trade_count, complete, source, received_at, frame_id)
    select p.instrument_id, p.timeframe,
           case when k.typed and k.open_ms % p.width_ms = 0 and k.close_ms = k.open_ms + p.width_ms - 1
                     and k.open_ms >= p.earliest_ms and k.open_ms <= p.latest_ms
                then staging.epoch_ms(k.open_ms) else staging.binance_kline_refused(p.frame_id, k.r) end,
           'trade', (k.r->>1)::numeric, (k.r->>2)::numeric, (k.r->>3)::numeric, (k.r->>4)::numeric, (k.r->>5)::numeric,
           'base', k.trades, staging.epoch_ms(k.close_ms) < p.received_at, p.source, p.received_at, p.frame_id
    from checked_pages p
    cross join lateral (
      -- "offset 0" keeps the integers computed once each (the planner would otherwise repeat
      -- the casts wherever they are used).
      select e.r, (e.r->>0)::bigint as open_ms, (e.r->>6)::bigint as close_ms, (e.r->>8)::bigint as trades,
             -- a kline is an array of at least nine: times and trade count numbers, prices and volume strings
             jsonb_typeof(e.r->0) = 'number' and jsonb_typeof(e.r->6) = 'number' and jsonb_typeof(e.r->8) = 'number'
             and jsonb_typeof(e.r->1) = 'string' and jsonb_typeof(e.r->2) = 'string' and jsonb_typeof(e.r->3) = 'string'
             and jsonb_typeof(e.r->4) = 'string' and jsonb_typeof(e.r->5) = 'string' as typed
      from jsonb_array_elements(p.d) e(r)
      offset 0) k
    returning 1
  )
  select jsonb_build_object('rest_pages', (select count(*) from pages), 'pages_quarantined', 0,
                            'klines', (select count(*) from ins), 'candles', (select count(*) from ins),
                            'candles_updated', 0, 'candles_duplicate', 0, 'quarantined', 0)
$function$
CREATE OR REPLACE FUNCTION staging.binance_live_streams(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_streams text[], p_careful boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
begin
  if 'trade' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_trades_v1(p_batch, p_from, p_to, p_careful));
  end if;
  if 'aggTrade' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_agg_trades_v1(p_batch, p_from, p_to, p_careful));
  end if;
  if 'bookTicker' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_quotes_v1(p_batch, p_from, p_to, p_careful));
  end if;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.binance_rest_pages(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_stream text)
 RETURNS TABLE(frame_id bigint, batch_id uuid, stream text, received_at timestamp with time zone, source text, payload text, request text, symbol text, status text, d jsonb, problem text)
 LANGUAGE sql
 STABLE
AS $function$
  -- Page-level reading shared by the REST normalizers: the symbol and status from the request,
  -- the body parsed once, and the reason a whole page cannot be used.
  with f as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload, f.request,
           upper(substring(f.request from '[?&]symbol=([A-Za-z0-9]{2,30})')) as symbol,
           substring(f.request from ' ([0-9]{3})$') as status,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = p_stream
      and f.received_at >= p_from and f.received_at < p_to
  )
  select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload, f.request, f.symbol, f.status, f.d,
         case
           when f.d is not null and jsonb_typeof(f.d) = 'object' and f.d ? 'code'
             then 'venue error ' || coalesce(f.d->>'code', '?') || coalesce(' (HTTP ' || f.status || ')', '') || ': '
                  || left(coalesce(f.d->>'msg', ''), 200)
           when f.status is distinct from '200'
             then 'HTTP ' || coalesce(f.status, '(no status)') || ': ' || left(f.payload, 200)
           when f.d is null then 'payload is not valid JSON (a cut response?): ' || left(f.payload, 80)
           when jsonb_typeof(f.d) <> 'array' then 'expected a JSON array, received ' || jsonb_typeof(f.d)
           when f.symbol is null then 'request names no symbol: ' || coalesce(f.request, '(none)')
         end
  from f
$function$
CREATE OR REPLACE FUNCTION staging.dukascopy_check_empty_hours(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.dukascopy_files(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_streams text[])
 RETURNS TABLE(frame_id bigint, batch_id uuid, stream text, received_at timestamp with time zone, source text, payload text, d jsonb, path text, instrument_id integer, start_at timestamp with time zone, unit numeric, problem text)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.dukascopy_json_files(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_streams text[])
 RETURNS TABLE(frame_id bigint, batch_id uuid, stream text, received_at timestamp with time zone, source text, payload text, d jsonb, path text, instrument_id integer, start_at timestamp with time zone, period interval, point numeric, scale integer, n integer, problem text)
 LANGUAGE sql
 STABLE
AS $function$
  -- Frame-level checks: the request names the period and instrument, the body agrees with it.
  with f as materialized (
    select f.*, case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           regexp_match(f.request, '^(?:GET /)?(v1/(ticks|candles/minute|candles/hour|candles/day)/([A-Z0-9]{2,20})-([A-Z0-9]{2,20})'
                                    '(?:/(BID|ASK))?/([0-9]{4})(?:/([0-9]{1,2}))?(?:/([0-9]{1,2}))?(?:/([0-9]{1,2}))?)(?: [0-9]{3})?$') as m
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.stream = any (p_streams)
      and f.received_at >= p_from and f.received_at < p_to
  ), r as materialized (
    select f.*,
           case f.m[2] when 'ticks' then 'ticks' when 'candles/minute' then 'candles_m1' when 'candles/hour' then 'candles_h1'
                       when 'candles/day' then 'candles_d1' end as want_stream,
           -- The parts the path must have: ticks to the hour, minute candles to the day, hour ones to the month.
           case f.m[2] when 'ticks' then 3 when 'candles/minute' then 2 when 'candles/hour' then 1 else 0 end as parts,
           (f.m[7] is not null)::int + (f.m[8] is not null)::int + (f.m[9] is not null)::int as got_parts,
           case f.m[2] when 'ticks' then interval '1 hour' when 'candles/minute' then interval '1 day'
                       when 'candles/hour' then interval '1 month' else interval '1 year' end as period,
           case when f.m is not null
                 and pg_input_is_valid(format('%s-%s-%s %s:00:00+00', f.m[6], coalesce(f.m[7], '1'), coalesce(f.m[8], '1'),
                                              coalesce(f.m[9], '0')), 'timestamptz')
                then format('%s-%s-%s %s:00:00+00', f.m[6], coalesce(f.m[7], '1'), coalesce(f.m[8], '1'),
                            coalesce(f.m[9], '0'))::timestamptz end as start_at,
           case when staging.is_int(f.d->'timestamp') then staging.epoch_ms((f.d->>'timestamp')::bigint) end as stamp,
           -- multiplier 1.0E-5 -> point 100000 (only exact inverse powers of ten are accepted)
           case when jsonb_typeof(f.d->'multiplier') = 'number' and (f.d->>'multiplier')::numeric > 0
                 and (f.d->>'multiplier')::numeric <= 1
                then round(1 / (f.d->>'multiplier')::numeric) end as point,
           jsonb_array_length(case when jsonb_typeof(f.d->'times') = 'array' then f.d->'times' else '[]' end) as n
    from f
  )
  select r.frame_id, r.batch_id, r.stream, r.received_at, r.source, r.payload, r.d, r.m[1], i.instrument_id, r.start_at,
         r.period, r.point, length(r.point::text) - 1, r.n,
         case
           when r.m is null then 'request ' || coalesce(r.request, '(none)') || ' is not a JSON API path (v1/ticks/EUR-USD/2026/7/13/12, '
                                 || 'v1/candles/minute|hour|day/EUR-USD/BID|ASK/...)'
           when r.want_stream is distinct from r.stream then 'request ' || r.request || ' does not fit stream ' || r.stream
           when (r.m[5] is null) <> (r.stream = 'ticks') then 'request ' || r.request || ': candles name a side (BID or ASK), ticks none'
           when r.got_parts <> r.parts or r.start_at is null
             then 'request ' || r.request || ': expected a year' || case r.parts when 3 then ', month, day and hour'
                                                                           when 2 then ', month and day' when 1 then ' and month' else '' end
                  || ' (month 1-based)'
           when r.d is null then 'payload is not valid JSON'
           when jsonb_typeof(r.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(r.d)
           when i.instrument_id is null then 'unknown instrument ' || r.m[3] || '-' || r.m[4]
           when r.stamp is distinct from r.start_at
             then 'timestamp ' || coalesce(r.d->>'timestamp', '(none)') || ' is not the start of the period of ' || r.request
           when r.point is null or r.point::text !~ '^10{0,9}$' or r.point * (r.d->>'multiplier')::numeric <> 1
             then 'multiplier is not 1 / a power of ten up to 1e9: ' || coalesce((r.d->'multiplier')::text, '(none)')
           when r.start_at > r.received_at then 'the period starts after the answer was received'
           when r.stream = 'ticks' and exists (select 1 from unnest(array['times', 'asks', 'bids', 'askVolumes', 'bidVolumes']) c
                                               where jsonb_typeof(r.d->c) is distinct from 'array' or jsonb_array_length(r.d->c) <> r.n)
             then 'times, asks, bids, askVolumes and bidVolumes are not arrays of one length'
           when r.stream <> 'ticks' and exists (select 1 from unnest(array['times', 'opens', 'highs', 'lows', 'closes', 'volumes']) c
                                                where jsonb_typeof(r.d->c) is distinct from 'array' or jsonb_array_length(r.d->c) <> r.n)
             then 'times, opens, highs, lows, closes and volumes are not arrays of one length'
           when r.stream <> 'ticks' and r.n > 0 and (not staging.is_int(r.d->'shift') or (r.d->>'shift')::bigint <= 0)
             then 'shift is not a positive integer: ' || coalesce((r.d->'shift')::text, '(none)')
           when r.n > 0 and exists (select 1 from unnest(case when r.stream = 'ticks' then array['ask', 'bid']
                                                              else array['open', 'high', 'low', 'close'] end) c
                                    where jsonb_typeof(r.d->c) is distinct from 'number' or (r.d->>c)::numeric <= 0
                                       or (r.d->>c)::numeric * r.point <> round((r.d->>c)::numeric * r.point))
             then 'a base price is not a positive number of points: ' || left(r.payload, 120)
         end
  from r
  left join market.instruments i on i.venue = 'dukascopy' and i.venue_symbol = r.m[3] || r.m[4]
$function$
CREATE OR REPLACE FUNCTION staging.dukascopy_path(p_instrument text, p_stream text, p_side text, p_start timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.epoch_ms(p_ms bigint)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- Integer milliseconds times an exact interval: exact for every date before the year 2255.
  -- Null where timestamptz ends (before 4713 BC, after the year 287,000; the caller quarantines
  -- it), never an overflow error that would fail the whole batch.
  select case when p_ms between -210000000000000 and 9000000000000000
              then timestamptz '1970-01-01 00:00:00+00' + p_ms * interval '1 millisecond' end
$function$
CREATE OR REPLACE FUNCTION staging.epoch_us(p_us bigint)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select timestamptz '1970-01-01 00:00:00+00' + p_us * interval '1 microsecond'
$function$
CREATE OR REPLACE FUNCTION staging.epoch_us_of(p_at timestamp with time zone)
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select (extract(epoch from p_at) * 1000000)::bigint
$function$
CREATE OR REPLACE FUNCTION staging.ib_bar_length(p_timeframe text)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- The bar sizes IBKR history serves: seconds, minutes, hours, days (1s ... 1d).
  select left(p_timeframe, -1)::integer * case right(p_timeframe, 1) when 's' then interval '1 second'
           when 'm' then interval '1 minute' when 'h' then interval '1 hour' when 'd' then interval '1 day' end
$function$
CREATE OR REPLACE FUNCTION staging.ib_epoch_seconds(p_text text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when p_text ~ '^[0-9]{9,11}$' then timestamptz '1970-01-01 00:00:00+00' + p_text::bigint * interval '1 second' end
$function$
CREATE OR REPLACE FUNCTION staging.ib_register_instruments(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
  select distinct on (j->>'conId') 'ib', j->>'conId', j->>'symbol', market.ib_asset_class(j->>'secType'),
         case when j->>'secType' = 'CASH' then split_part(j->>'symbol', '/', 1) end,
         case when j->>'secType' = 'CASH' then split_part(j->>'symbol', '/', 2) end
  from staging.frames f
  cross join lateral (select case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j) p
  where f.batch_id = p_batch and f.venue = 'ib' and f.received_at >= p_from and f.received_at < p_to
    and jsonb_typeof(j) = 'object' and j->>'conId' ~ '^[0-9]{1,12}$' and j->>'symbol' ~ '^[A-Z0-9.]+(/[A-Z0-9.]+)?$'
    and market.ib_asset_class(j->>'secType') is not null
    and not exists (select 1 from market.instruments i where i.venue = 'ib' and i.venue_symbol = j->>'conId')
  order by j->>'conId', f.frame_id
  on conflict (venue, venue_symbol) do nothing
$function$
CREATE OR REPLACE FUNCTION staging.is_decimal(p_text text)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- A plain non-negative decimal string: no sign, exponent, NaN or Infinity.
  select p_text ~ '^[0-9]{1,30}(\.[0-9]{1,30})?$'
$function$
CREATE OR REPLACE FUNCTION staging.is_int(p_value jsonb)
 RETURNS boolean
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select jsonb_typeof(p_value) = 'number' and pg_input_is_valid(p_value::text, 'bigint')
$function$
CREATE OR REPLACE FUNCTION staging.is_int_text(p_text text)
 RETURNS boolean
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select pg_input_is_valid(p_text, 'bigint')
$function$
CREATE OR REPLACE FUNCTION staging.json_nonnegative(p_value jsonb)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when jsonb_typeof(p_value) = 'number' then staging.nonnegative_decimal(p_value #>> '{}') end
$function$
CREATE OR REPLACE FUNCTION staging.json_positive(p_value jsonb)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when jsonb_typeof(p_value) = 'number' then staging.positive_decimal(p_value #>> '{}') end
$function$
CREATE OR REPLACE FUNCTION staging.levels_valid(p_levels jsonb)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select jsonb_typeof(p_levels) = 'array'
     and not exists (select 1 from jsonb_array_elements(p_levels) l
                     where jsonb_typeof(l) <> 'array' or not staging.is_decimal(l->>0) or not staging.is_decimal(l->>1)
                        or (l->>0)::numeric = 0)
$function$
CREATE OR REPLACE FUNCTION staging.merge_counts(p_a jsonb, p_b jsonb)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select coalesce(jsonb_object_agg(k, coalesce((p_a->>k)::bigint, 0) + coalesce((p_b->>k)::bigint, 0)), '{}')
  from (select jsonb_object_keys(coalesce(p_a, '{}') || coalesce(p_b, '{}')) as k) keys
$function$
CREATE OR REPLACE FUNCTION staging.nonnegative_decimal(p_text text)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- As positive_decimal, but zero is allowed (an empty side of a book has size 0).
  select case when pg_input_is_valid(p_text, 'numeric') and p_text::numeric >= 0 and p_text::numeric < 'Infinity'
              then p_text::numeric end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_batch(p_batch uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
declare
  v_norm record;
  v_counts jsonb := '{}';
  v_part jsonb;
  v_oversize integer;
  v_lo timestamptz;
  v_hi timestamptz;
  v_frames integer;
begin
  -- The batch's receive times bound every read of staging.frames, so only the partitions that
  -- hold it are read, not each of a month of daily partitions probed by batch id. A batch whose
  -- bounds do not hold all of its frames (one written by hand, say) is read whole.
  select b.first_received_at, b.last_received_at + interval '1 microsecond', b.frames into v_lo, v_hi, v_frames
  from ops.batches b where b.batch_id = p_batch;
  if v_lo is null or v_hi is null or v_frames is distinct from
     (select count(*) from staging.frames f where f.batch_id = p_batch and f.received_at >= v_lo and f.received_at < v_hi) then
    v_lo := '-infinity';
    v_hi := 'infinity';
  end if;
  -- A frame over the runtime's payload limit lands as a stand-in written by tickflow
  -- ({"bytes":N,"limit":M,"head":"..."}): quarantined first, so no venue normalizer reads it.
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'frame of ' || coalesce(substring(f.payload from '^\{"bytes":([0-9]+)'), '?') || ' bytes is over the payload limit of '
             || coalesce(substring(f.payload from '^\{"bytes":[0-9]+,"limit":([0-9]+)'), '?') || ' bytes (its first bytes are kept)',
           'normalize_batch'
    from staging.frames f
    where f.batch_id = p_batch and f.stream = 'oversize' and f.received_at >= v_lo and f.received_at < v_hi
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select count(*) into v_oversize from q;
  if v_oversize > 0 then v_counts := jsonb_build_object('quarantined', v_oversize); end if;
  for v_norm in
    select n.fn, n.valid_from, n.valid_to
    from staging.normalizers n
    where exists (select 1 from staging.frames f
                  where f.batch_id = p_batch and f.venue = n.venue
                    and f.received_at >= greatest(n.valid_from, v_lo) and f.received_at < least(n.valid_to, v_hi))
    order by n.venue, n.valid_from
  loop
    execute format('select %s($1, $2, $3)', v_norm.fn::regproc) into v_part
      using p_batch, greatest(v_norm.valid_from, v_lo), least(v_norm.valid_to, v_hi);
    v_counts := staging.merge_counts(v_counts, v_part);
  end loop;
  -- Frames of a venue that no normalizer covers are kept and quarantined, never dropped.
  perform staging.quarantine(f.frame_id, -1, 'no normalizer for venue ' || f.venue || ' at ' || f.received_at, 'normalize_batch')
  from staging.frames f
  where f.batch_id = p_batch and f.received_at >= v_lo and f.received_at < v_hi
    and not exists (select 1 from staging.normalizers n where n.venue = f.venue
                    and f.received_at >= n.valid_from and f.received_at < n.valid_to);
  update ops.batches set normalized_at = now(), normalize_error = null, counts = v_counts where batch_id = p_batch;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_agg_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_careful boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'a', p_careful) as agg_id,
           staging.read_bigint(f.d->'f', p_careful) as first_id,
           staging.read_bigint(f.d->'l', p_careful) as last_id,
           case when staging.is_decimal(f.d->>'p') then (f.d->>'p')::numeric end as price,
           case when staging.is_decimal(f.d->>'q') then (f.d->>'q')::numeric end as size
    from staging.binance_frames(p_batch, p_from, p_to, 'aggTrade', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.*, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'aggTrade' then 'expected event e=aggTrade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.agg_id is null or s.first_id is null or s.last_id is null then 'ids a, f, l are not integers that fit 64 bits'
        when coalesce(s.price = 0, true) then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when coalesce(s.size = 0, true) then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when s.event_at is null then 'trade time T is not an integer of milliseconds'
        when jsonb_typeof(s.d->'m') is distinct from 'boolean' then 'maker flag m is not a boolean'
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source, frame_id)
    select c.instrument_id, c.event_at, c.agg_id, c.first_id, c.last_id, c.price, c.size,
           case when (c.d->>'m')::boolean then 'sell' else 'buy' end, c.received_at, c.source, c.frame_id
    from checked c where c.problem is null
    on conflict do nothing
    returning 1
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_agg_trades_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'agg_trades', (select count(*) from ins),
    'agg_trades_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_book_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_frame record;
  v_state market.book_state;
  v_inst integer;
  v_problem text;
  v_last bigint;
  v_applied integer := 0;
  v_skipped integer := 0;
  v_breaks integer := 0;
  v_snapshots integer := 0;
  v_quarantined integer := 0;
  v_touched integer[] := '{}';
  v_snapshot_every interval := coalesce((select value from ops.settings where key = 'book.snapshot_interval'), '1 second')::interval;
begin
  for v_frame in
    select s.*, coalesce(substring(f.request from '[?&]symbol=([A-Za-z0-9]+)'), s.d->>'s') as symbol
    from (select * from staging.binance_frames(p_batch, p_from, p_to, 'depth')
          union all select * from staging.binance_frames(p_batch, p_from, p_to, 'depth_snapshot')) s
    join staging.frames f on f.frame_id = s.frame_id and f.batch_id = p_batch
    order by s.frame_id
  loop
    select instrument_id into v_inst from market.instruments where venue = 'binance' and venue_symbol = upper(v_frame.symbol);
    if v_inst is null and upper(v_frame.symbol) ~ '^[A-Z0-9]{2,30}$' then
      insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
      select 'binance', upper(v_frame.symbol), c.symbol, c.base, c.quote, 'crypto'
      from market.binance_symbol(upper(v_frame.symbol)) c
      on conflict (venue, venue_symbol) do nothing
      returning instrument_id into v_inst;
    end if;
    v_problem := case
      when v_frame.d is null then 'payload is not valid JSON'
      when v_inst is null then 'missing or unknown symbol ' || coalesce(v_frame.symbol, '(none)')
      when v_frame.stream = 'depth_snapshot' and not staging.is_int(v_frame.d->'lastUpdateId') then 'snapshot lastUpdateId is not an integer'
      when v_frame.stream = 'depth_snapshot' and not (staging.levels_valid(v_frame.d->'bids') and staging.levels_valid(v_frame.d->'asks'))
        then 'snapshot bids or asks are not [price, size] decimal string pairs'
      when v_frame.stream = 'depth' and v_frame.d->>'e' is distinct from 'depthUpdate' then 'expected e=depthUpdate, received e=' || coalesce(v_frame.d->>'e', '(none)')
      when v_frame.stream = 'depth' and not (staging.is_int(v_frame.d->'U') and staging.is_int(v_frame.d->'u')) then 'update ids U, u are not integers'
      when v_frame.stream = 'depth' and (v_frame.d->>'U')::bigint > (v_frame.d->>'u')::bigint then 'first update id U is after final update id u'
      when v_frame.stream = 'depth' and not (staging.levels_valid(v_frame.d->'b') and staging.levels_valid(v_frame.d->'a'))
        then 'diff b or a is not [price, size] decimal string pairs'
    end;
    if v_problem is not null then
      perform staging.quarantine(v_frame.frame_id, -1, v_problem, 'normalize_binance_book_v1');
      v_quarantined := v_quarantined + 1;
      continue;
    end if;
    select * into v_state from market.book_state where instrument_id = v_inst;
    if v_frame.stream = 'depth_snapshot' then
      v_last := (v_frame.d->>'lastUpdateId')::bigint;
      insert into market.book_snapshots (instrument_id, taken_at, update_id, origin, bid_prices, bid_sizes,
                                         ask_prices, ask_sizes, received_at)
      select v_inst, v_frame.received_at, v_last, 'venue',
             coalesce((select array_agg((l->>0)::numeric order by o) from jsonb_array_elements(v_frame.d->'bids') with ordinality b(l, o)), '{}'),
             coalesce((select array_agg((l->>1)::numeric order by o) from jsonb_array_elements(v_frame.d->'bids') with ordinality b(l, o)), '{}'),
             coalesce((select array_agg((l->>0)::numeric order by o) from jsonb_array_elements(v_frame.d->'asks') with ordinality a(l, o)), '{}'),
             coalesce((select array_agg((l->>1)::numeric order by o) from jsonb_array_elements(v_frame.d->'asks') with ordinality a(l, o)), '{}'),
             v_frame.received_at
      on conflict do nothing;
      if v_state is null or not v_state.in_sync or v_last > v_state.last_update_id then
        perform market.book_reset(v_inst, v_last, v_frame.d->'bids', v_frame.d->'asks', v_frame.received_at);
        v_snapshots := v_snapshots + 1;
        v_touched := v_touched || v_inst;
      end if;
      continue;
    end if;
    if v_state is null or not v_state.in_sync or (v_frame.d->>'u')::bigint <= v_state.last_update_id then
      v_skipped := v_skipped + 1;
      update market.book_state set diffs_skipped = diffs_skipped + 1 where instrument_id = v_inst;
      continue;
    end if;
    if (case when v_frame.d ? 'pu' and v_state.last_update_id <> v_state.snapshot_update_id
             then (v_frame.d->>'pu')::bigint = v_state.last_update_id
             else (v_frame.d->>'U')::bigint <= v_state.last_update_id + 1 end) then
      perform market.book_apply(v_inst, (v_frame.d->>'u')::bigint, v_frame.d->'b', v_frame.d->'a', v_frame.received_at);
      v_applied := v_applied + 1;
      v_touched := v_touched || v_inst;
    else
      update market.book_state set in_sync = false, breaks = breaks + 1, updated_at = v_frame.received_at
      where instrument_id = v_inst;
      insert into quality.gaps (venue, stream, instrument_id, gap_from, gap_to, from_seq, to_seq, detected_by, detail)
      values ('binance', 'depth', v_inst, v_state.updated_at, v_frame.received_at, v_state.last_update_id + 1,
              (v_frame.d->>'U')::bigint - 1, 'book_break',
              jsonb_build_object('frame_id', v_frame.frame_id, 'expected_from', v_state.last_update_id + 1,
                                 'received_U', (v_frame.d->>'U')::bigint));
      v_breaks := v_breaks + 1;
    end if;
  end loop;
  -- Derived top-of-book snapshots, at most one per instrument per snapshot interval.
  perform market.book_snapshot_derived(s.instrument_id, s.last_update_id, s.updated_at)
  from market.book_state s
  where s.instrument_id = any (v_touched) and s.in_sync
    and not exists (select 1 from market.book_snapshots b
                    where b.instrument_id = s.instrument_id and b.origin = 'derived'
                      and b.taken_at > s.updated_at - v_snapshot_every and b.taken_at <= s.updated_at);
  return jsonb_build_object('book_diffs', v_applied, 'book_diffs_skipped', v_skipped, 'book_breaks', v_breaks,
                            'book_snapshots', v_snapshots, 'quarantined', v_quarantined);
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_klines_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
begin
  -- A backfill lands a million klines, almost all well-formed and new: the fast way first.
  -- Anything it cannot take (bad text, a candle already stored, a page landed twice) undoes
  -- it, and the careful way does the batch again with a reason for every refusal.
  begin
    return staging.binance_klines_fast(p_batch, p_from, p_to);
  exception when data_exception or integrity_constraint_violation then
    return staging.binance_klines_careful(p_batch, p_from, p_to);
  end;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_other_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- Frames the venue file could not route (unknown event types): kept and quarantined.
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           case when not pg_input_is_valid(f.payload, 'jsonb') then 'payload is not valid JSON'
                else 'unknown event type: ' || left(f.payload, 80) end,
           'normalize_binance_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('trade', 'aggTrade', 'bookTicker', 'depth', 'depth_snapshot',
                           'klines', 'aggTrades', 'historicalTrades') -- REST pages: binance_040_rest_v1.sql
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_quotes_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_careful boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- Spot bookTicker carries no event time, so quoted_at is the receive time and the update id u
  -- is the identity: a quote seen by two overlapping connections is kept once.
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'u', p_careful) as u,
           case when jsonb_typeof(f.d->'b') = 'string' then staging.read_numeric(f.d->>'b', p_careful) end as bid,
           case when jsonb_typeof(f.d->'a') = 'string' then staging.read_numeric(f.d->>'a', p_careful) end as ask,
           case when jsonb_typeof(f.d->'B') = 'string' then staging.read_numeric(f.d->>'B', p_careful) end as bid_size,
           case when jsonb_typeof(f.d->'A') = 'string' then staging.read_numeric(f.d->>'A', p_careful) end as ask_size
    from staging.binance_frames(p_batch, p_from, p_to, 'bookTicker', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.frame_id, s.batch_id, s.venue, s.stream, s.received_at, s.source, s.payload, s.u, s.bid, s.ask,
           s.bid_size, s.ask_size, i.instrument_id,
           coalesce(s.event_at, s.received_at) as quoted_at,
           case when s.event_at is null then 'received' else 'venue' end as time_source,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d ? 'e' and s.d->>'e' <> 'bookTicker' then 'expected a bookTicker, received e=' || (s.d->>'e')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.u is null then 'update id u is not an integer that fits 64 bits: ' || coalesce((s.d->'u')::text, '(none)')
        when coalesce(not (s.bid > 0 and s.bid < 'Infinity' and s.ask > 0 and s.ask < 'Infinity'), true)
          then 'bid b or ask a is not a positive decimal string'
        when coalesce(not (s.bid_size >= 0 and s.bid_size < 'Infinity' and s.ask_size >= 0 and s.ask_size < 'Infinity'), true)
          then 'bid size B or ask size A is not a decimal string'
        when s.d ? 'T' and s.event_at is null then 'transaction time T is not an integer of milliseconds'
        when s.event_at is not null then staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), stored as (
    -- Receive-time quotes an overlapping connection already stored (one probe of the key each).
    select s.instrument_id, s.seq
    from (select array_agg(instrument_id) as i, array_agg(u) as u, array_agg(quoted_at) as t
          from checked where problem is null and time_source = 'received') a
    cross join lateral staging.received_quotes_stored(a.i, a.u, a.t) s
    where a.i is not null
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select distinct on (n.instrument_id, n.u)
           n.instrument_id, n.quoted_at, n.u, n.bid, n.bid_size, n.ask, n.ask_size, n.time_source, n.received_at,
           n.source, n.frame_id
    from checked n
    where n.problem is null
      and not exists (select 1 from stored s where s.instrument_id = n.instrument_id and s.seq = n.u)
    order by n.instrument_id, n.u, n.frame_id
    on conflict do nothing
    returning 1
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_quotes_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'quotes', (select count(*) from ins),
    'quotes_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_rest_agg_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- aggTrades pages: the same fields as the live aggTrade event, without e/E/s.
  with pages as materialized (
    select * from staging.binance_rest_pages(p_batch, p_from, p_to, 'aggTrades')
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where problem is null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
           coalesce(p.problem, case when i.instrument_id is null then 'unknown symbol ' || p.symbol end) as page_problem
    from pages p left join instruments i on i.venue_symbol = p.symbol
  ), items as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.instrument_id, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'T') then staging.epoch_ms((e.r->>'T')::bigint) end as traded_at,
           case when jsonb_typeof(e.r->'p') = 'string' then staging.positive_decimal(e.r->>'p') end as price,
           case when jsonb_typeof(e.r->'q') = 'string' then staging.positive_decimal(e.r->>'q') end as size
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    where p.page_problem is null
  ), judged as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected an aggTrade object, received ' || left(i.r::text, 80)
        when not (staging.is_int(i.r->'a') and staging.is_int(i.r->'f') and staging.is_int(i.r->'l'))
          then 'ids a, f, l are not integers that fit 64 bits: ' || left(i.r::text, 120)
        when (i.r->>'f')::bigint > (i.r->>'l')::bigint then 'first trade id f is after last trade id l: ' || left(i.r::text, 120)
        when i.price is null then 'price p is not a positive decimal string: ' || coalesce((i.r->'p')::text, '(none)')
        when i.size is null then 'size q is not a positive decimal string: ' || coalesce((i.r->'q')::text, '(none)')
        when i.traded_at is null then 'trade time T is not an integer of milliseconds: ' || coalesce((i.r->'T')::text, '(none)')
        when jsonb_typeof(i.r->'m') is distinct from 'boolean' then 'maker flag m is not a boolean: ' || coalesce((i.r->'m')::text, '(none)')
        else staging.time_problem(i.traded_at, i.received_at)
      end as problem
    from items i
  ), ins as (
    insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source, frame_id)
    select j.instrument_id, j.traded_at, (j.r->>'a')::bigint, (j.r->>'f')::bigint, (j.r->>'l')::bigint, j.price, j.size,
           case when (j.r->>'m')::boolean then 'sell' else 'buy' end, j.received_at, j.source, j.frame_id
    from judged j
    where j.problem is null
    on conflict do nothing
    returning 1
  ), bad as (
    select frame_id, -1 as item, page_problem as problem, payload from checked_pages where page_problem is not null
    union all
    select frame_id, item, problem, r::text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'aggTrades', p.received_at, b.payload, b.problem,
           'normalize_binance_rest_agg_trades_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where page_problem is not null),
    'agg_trades', (select count(*) from ins),
    'agg_trades_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_rest_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- historicalTrades (and the recent-trades endpoint, same shape): one row per trade id, the
  -- same row the live trade stream produces for that id (isBuyerMaker = the live m flag).
  with pages as materialized (
    select * from staging.binance_rest_pages(p_batch, p_from, p_to, 'historicalTrades')
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct symbol from pages where problem is null))
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
           coalesce(p.problem, case when i.instrument_id is null then 'unknown symbol ' || p.symbol end) as page_problem
    from pages p left join instruments i on i.venue_symbol = p.symbol
  ), items as materialized (
    select p.frame_id, p.batch_id, p.received_at, p.source, p.instrument_id, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'time') then staging.epoch_ms((e.r->>'time')::bigint) end as traded_at,
           case when jsonb_typeof(e.r->'price') = 'string' then staging.positive_decimal(e.r->>'price') end as price,
           case when jsonb_typeof(e.r->'qty') = 'string' then staging.positive_decimal(e.r->>'qty') end as size
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d) with ordinality e(r, n)
    where p.page_problem is null
  ), judged as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected a trade object, received ' || left(i.r::text, 80)
        when not staging.is_int(i.r->'id') then 'trade id is not an integer that fits 64 bits: ' || coalesce((i.r->'id')::text, '(none)')
        when i.price is null then 'price is not a positive decimal string: ' || coalesce((i.r->'price')::text, '(none)')
        when i.size is null then 'qty is not a positive decimal string: ' || coalesce((i.r->'qty')::text, '(none)')
        when i.traded_at is null then 'time is not an integer of milliseconds: ' || coalesce((i.r->'time')::text, '(none)')
        when jsonb_typeof(i.r->'isBuyerMaker') is distinct from 'boolean'
          then 'isBuyerMaker is not a boolean: ' || coalesce((i.r->'isBuyerMaker')::text, '(none)')
        else staging.time_problem(i.traded_at, i.received_at)
      end as problem
    from items i
  ), ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select j.instrument_id, j.traded_at, j.r->>'id', (j.r->>'id')::bigint, j.price, j.size,
           case when (j.r->>'isBuyerMaker')::boolean then 'sell' else 'buy' end, j.received_at, j.source, j.frame_id
    from judged j
    where j.problem is null
    on conflict do nothing
    returning instrument_id, traded_at
  ), inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), bad as (
    select frame_id, -1 as item, page_problem as problem, payload from checked_pages where page_problem is not null
    union all
    select frame_id, item, problem, r::text from judged where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'binance', 'historicalTrades', p.received_at, b.payload, b.problem,
           'normalize_binance_rest_trades_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'rest_pages', (select count(*) from pages),
    'pages_quarantined', (select count(*) from checked_pages where page_problem is not null),
    'trades', (select count(*) from ins),
    'trades_duplicate', (select count(*) from judged where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_rest_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
  v_streams text[];
begin
  -- Most batches carry no REST page, and a batch of REST pages one stream: one cheap probe,
  -- then only the normalizers of the streams present.
  select array_agg(distinct f.stream) into v_streams
  from staging.frames f
  where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to
    and f.stream in ('klines', 'aggTrades', 'historicalTrades');
  if 'klines' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_klines_v1(p_batch, p_from, p_to));
  end if;
  if 'historicalTrades' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_rest_trades_v1(p_batch, p_from, p_to));
  end if;
  if 'aggTrades' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_rest_agg_trades_v1(p_batch, p_from, p_to));
  end if;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_careful boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with src as materialized (
    select f.*, staging.epoch_ms(staging.read_bigint(f.d->'T', p_careful)) as event_at,
           staging.read_bigint(f.d->'t', p_careful) as trade_id,
           case when jsonb_typeof(f.d->'p') = 'string' then staging.read_numeric(f.d->>'p', p_careful) end as price,
           case when jsonb_typeof(f.d->'q') = 'string' then staging.read_numeric(f.d->>'q', p_careful) end as size,
           case when jsonb_typeof(f.d->'m') = 'boolean' then (f.d->>'m')::boolean end as buyer_maker
    from staging.binance_frames(p_batch, p_from, p_to, 'trade', p_careful) f
  ), instruments as materialized (
    select * from staging.binance_instruments(array(select distinct src.d->>'s' from src where src.d->>'s' is not null))
  ), checked as materialized (
    select s.frame_id, s.batch_id, s.venue, s.stream, s.received_at, s.source, s.payload, s.event_at, s.trade_id,
           s.price, s.size, s.buyer_maker, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'trade' then 'expected event e=trade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when s.trade_id is null then 'trade id t is not an integer that fits 64 bits: ' || coalesce((s.d->'t')::text, '(none)')
        when coalesce(not (s.price > 0 and s.price < 'Infinity'), true)
          then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when coalesce(not (s.size > 0 and s.size < 'Infinity'), true)
          then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when s.event_at is null then 'trade time T is not an integer of milliseconds: ' || coalesce((s.d->'T')::text, '(none)')
        when s.buyer_maker is null then 'maker flag m is not a boolean: ' || coalesce((s.d->'m')::text, '(none)')
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select c.instrument_id, c.event_at, c.trade_id::text, c.trade_id, c.price, c.size,
           case when c.buyer_maker then 'sell' else 'buy' end,
           c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null
    on conflict do nothing
    returning instrument_id, traded_at
  ), inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_binance_trades_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object(
    'trades', (select count(*) from ins),
    'trades_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
  v_streams text[];
begin
  -- Only the normalizers for streams present in the batch run: small live batches stay cheap.
  select array_agg(distinct f.stream) into v_streams
  from staging.frames f
  where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to;
  -- Trades and quotes the fast way; a batch with a payload or value it cannot read is done
  -- again the careful way, which quarantines that frame with its reason (binance_020).
  begin
    v_counts := staging.binance_live_streams(p_batch, p_from, p_to, v_streams, false);
  exception when data_exception then
    v_counts := staging.binance_live_streams(p_batch, p_from, p_to, v_streams, true);
  end;
  if v_streams && array['depth', 'depth_snapshot'] then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_book_v1(p_batch, p_from, p_to));
  end if;
  if not (v_streams <@ array['trade', 'aggTrade', 'bookTicker', 'depth', 'depth_snapshot']) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_other_v1(p_batch, p_from, p_to));
  end if;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_candles_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_json_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with files as materialized (
    select * from staging.dukascopy_json_files(p_batch, p_from, p_to, array['ticks', 'candles_m1', 'candles_h1', 'candles_d1'])
  ), tick_cols as materialized (
    -- The columns side by side (set-returning functions in one select list run in lockstep).
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source,
           round((f.d->>'ask')::numeric * f.point) as ask0, round((f.d->>'bid')::numeric * f.point) as bid0,
           jsonb_array_elements(f.d->'times') as t, jsonb_array_elements(f.d->'asks') as a,
           jsonb_array_elements(f.d->'bids') as b, jsonb_array_elements(f.d->'askVolumes') as av,
           jsonb_array_elements(f.d->'bidVolumes') as bv, generate_series(0, f.n - 1) as item
    from files f
    where f.problem is null and f.stream = 'ticks' and f.n > 0
  ), tick_items as materialized (
    select c.*,
           case
             when not (staging.is_int(c.t) and staging.is_int(c.a) and staging.is_int(c.b)) or (c.t #>> '{}')::bigint < 0
               then 'time step, ask or bid step is not an integer (time steps not negative): '
                    || jsonb_build_array(c.t, c.a, c.b)::text
             when jsonb_typeof(c.av) <> 'number' or (c.av #>> '{}')::numeric < 0 or jsonb_typeof(c.bv) <> 'number' or (c.bv #>> '{}')::numeric < 0
               then 'a volume is not a non-negative number: ' || jsonb_build_array(c.av, c.bv)::text
           end as problem
    from tick_cols c
  ), ticks as materialized (
    -- Running sums; once an element is bad the rest of its file cannot be placed (they are deltas).
    select x.*, bool_or(x.problem is not null) over w as broken,
           sum(case when x.problem is null then (x.t #>> '{}')::bigint end) over w as ms,
           x.ask0 + sum(case when x.problem is null then (x.a #>> '{}')::bigint end) over w as ask,
           x.bid0 + sum(case when x.problem is null then (x.b #>> '{}')::bigint end) over w as bid
    from tick_items x
    window w as (partition by x.frame_id order by x.item)
  ), tick_ranked as materialized (
    select t.*, row_number() over (partition by t.frame_id, t.ms order by t.item) - 1 as k,
           case when t.ms >= 3600000 then 'time ' || t.ms || ' ms is outside the hour'
                when t.ask <= 0 or t.bid <= 0 then 'ask ' || t.ask || ' or bid ' || t.bid || ' points is not positive' end as late_problem
    from ticks t
    where not t.broken
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select r.instrument_id, r.start_at + r.ms * interval '1 millisecond', staging.epoch_us_of(r.start_at) + r.ms * 1000 + r.k,
           round(r.bid / r.point, r.scale), trim_scale((r.bv #>> '{}')::numeric),
           round(r.ask / r.point, r.scale), trim_scale((r.av #>> '{}')::numeric),
           'venue', r.received_at, r.source, r.frame_id
    from tick_ranked r
    where r.late_problem is null and r.k < 1000
      -- an hour kept as a block (a .bi5 file of format v2) is not stored again as rows
      and not exists (select 1 from market.quote_blocks b
                      where b.instrument_id = r.instrument_id and b.hour_start = r.start_at)
    on conflict do nothing
    returning 1
  ), candle_cols as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source, f.stream, f.period,
           case f.stream when 'candles_m1' then '1m' when 'candles_h1' then '1h' else '1d' end as timeframe,
           case f.stream when 'candles_m1' then 60000 when 'candles_h1' then 3600000 else 86400000 end as step_ms,
           lower(substring(f.path from '/(BID|ASK)/')) as side, (f.d->>'shift')::bigint as shift,
           round((f.d->>'open')::numeric * f.point) as o0, round((f.d->>'high')::numeric * f.point) as h0,
           round((f.d->>'low')::numeric * f.point) as l0, round((f.d->>'close')::numeric * f.point) as c0,
           jsonb_array_elements(f.d->'times') as t, jsonb_array_elements(f.d->'opens') as o,
           jsonb_array_elements(f.d->'highs') as h, jsonb_array_elements(f.d->'lows') as l,
           jsonb_array_elements(f.d->'closes') as c, jsonb_array_elements(f.d->'volumes') as v,
           generate_series(0, f.n - 1) as item
    from files f
    where f.problem is null and f.stream <> 'ticks' and f.n > 0
  ), candle_items as materialized (
    select c.*,
           case
             when not (staging.is_int(c.t) and staging.is_int(c.o) and staging.is_int(c.h) and staging.is_int(c.l)
                       and staging.is_int(c.c)) or (c.t #>> '{}')::bigint < 0
               then 'time step or a price step is not an integer (time steps not negative): '
                    || jsonb_build_array(c.t, c.o, c.h, c.l, c.c)::text
             when jsonb_typeof(c.v) <> 'number' or (c.v #>> '{}')::numeric < 0
               then 'volume is not a non-negative number: ' || c.v::text
           end as problem
    from candle_cols c
  ), candles as materialized (
    select x.*, bool_or(x.problem is not null) over w as broken,
           x.start_at + sum(case when x.problem is null then (x.t #>> '{}')::bigint end) over w * x.shift * interval '1 millisecond' as bucket,
           x.o0 + sum(case when x.problem is null then (x.o #>> '{}')::bigint end) over w as open,
           x.h0 + sum(case when x.problem is null then (x.h #>> '{}')::bigint end) over w as high,
           x.l0 + sum(case when x.problem is null then (x.l #>> '{}')::bigint end) over w as low,
           x.c0 + sum(case when x.problem is null then (x.c #>> '{}')::bigint end) over w as close
    from candle_items x
    window w as (partition by x.frame_id order by x.item)
  ), candle_checked as materialized (
    select c.*,
           case
             when c.bucket >= c.start_at + c.period then 'candle at ' || c.bucket || ' is outside the period of its answer'
             when date_bin(c.step_ms * interval '1 millisecond', c.bucket, timestamptz '2000-01-03 00:00:00+00') <> c.bucket
               then 'candle at ' || c.bucket || ' is not on a ' || c.timeframe || ' boundary'
             when least(c.open, c.high, c.low, c.close) <= 0 then 'a price is not positive (points): ' || c.open || ' ' || c.high
                  || ' ' || c.low || ' ' || c.close
             when c.low > least(c.open, c.close) or c.high < greatest(c.open, c.close)
               then 'low or high does not bound open and close (points): ' || c.open || ' ' || c.high || ' ' || c.low || ' ' || c.close
           end as late_problem
    from candles c
    where not c.broken
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.side, g.bucket) g.*,
           exists (select 1 from market.candles k
                   where k.instrument_id = g.instrument_id and k.timeframe = g.timeframe
                     and k.price_side = g.side and k.bucket = g.bucket) as existed
    from candle_checked g
    where g.late_problem is null
    order by g.instrument_id, g.timeframe, g.side, g.bucket, g.received_at desc, g.frame_id desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, g.side,
           round(g.open / g.point, g.scale), round(g.high / g.point, g.scale), round(g.low / g.point, g.scale),
           round(g.close / g.point, g.scale), trim_scale((g.v #>> '{}')::numeric * 1000000), 'quoted_size',
           g.bucket + g.step_ms * interval '1 millisecond' <= g.received_at, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from files where problem is not null
    union all
    -- The first bad element of a file, and every element after it (deltas cannot be placed past it).
    select frame_id, item, coalesce(problem, 'follows a bad element of the same answer'), jsonb_build_array(t, a, b, av, bv)::text
    from ticks where broken
    union all
    select frame_id, item, late_problem, jsonb_build_array(t, a, b, av, bv)::text from tick_ranked where late_problem is not null
    union all
    select frame_id, item, 'more than 1000 ticks in millisecond ' || ms || ' of the hour', jsonb_build_array(t, a, b, av, bv)::text
    from tick_ranked where late_problem is null and k >= 1000
    union all
    select frame_id, item, coalesce(problem, 'follows a bad element of the same answer'), jsonb_build_array(t, o, h, l, c, v)::text
    from candles where broken
    union all
    select frame_id, item, late_problem, jsonb_build_array(t, o, h, l, c, v)::text from candle_checked where late_problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'dukascopy-json', f.stream, f.received_at, b.payload, b.problem,
           'normalize_dukascopy_json_v1'
    from bad b join files f using (frame_id)
    on conflict (frame_id, item) do nothing
  ), whole as (
    insert into market.venue_files as v (venue, path, instrument_id, stream, period_from, period_to, records, complete,
                                         frame_id, received_at)
    select distinct on (f.path) 'dukascopy-json', f.path, f.instrument_id, f.stream, f.start_at, f.start_at + f.period, f.n,
           f.start_at + f.period <= f.received_at, f.frame_id, f.received_at
    from files f
    where f.problem is null
    order by f.path, f.received_at desc, f.frame_id desc
    on conflict (venue, path) do update
      set records = excluded.records, complete = excluded.complete, frame_id = excluded.frame_id,
          received_at = excluded.received_at
      where excluded.received_at >= v.received_at
  )
  select jsonb_build_object(
    'files', (select count(*) from files where problem is null),
    'files_empty', (select count(*) from files where problem is null and n = 0),
    'rows_received', (select count(*) from tick_cols) + (select count(*) from candle_cols),
    'rows_new', (select count(*) from quotes_ins) + (select count(*) from good where not existed),
    'quotes', (select count(*) from quotes_ins),
    'quotes_duplicate', (select count(*) from tick_ranked where late_problem is null and k < 1000) - (select count(*) from quotes_ins),
    'candles', (select count(*) from good where not existed),
    'candles_updated', (select count(*) from ups) - (select count(*) from good where not existed),
    'candles_duplicate', (select count(*) from candle_checked where late_problem is null) - (select count(*) from ups),
    'pages_quarantined', (select count(*) from files where problem is not null),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_json_v1_batch(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb;
begin
  -- Instruments first (EUR-USD in the request is the files' EURUSD), then the answers, then the
  -- empty hours against the calendar (shared with the .bi5 files).
  insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
  select distinct 'dukascopy', x.s, c.symbol, c.base, c.quote, c.asset_class
  from (
    select replace(substring(f.request from '^(?:GET /)?v1/(?:ticks|candles/[a-z]+)/([A-Z0-9]{2,20}-[A-Z0-9]{2,20})/'), '-', '') as s
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.received_at >= p_from and f.received_at < p_to
  ) x
  cross join lateral market.dukascopy_symbol(x.s) c
  where x.s is not null
    and not exists (select 1 from market.instruments i where i.venue = 'dukascopy' and i.venue_symbol = x.s)
  on conflict (venue, venue_symbol) do nothing;
  perform market.lock_quote_hours(array_agg(f.instrument_id), array_agg(f.start_at))
  from staging.dukascopy_json_files(p_batch, p_from, p_to, array['ticks']) f;
  v_counts := staging.normalize_dukascopy_json_v1(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.dukascopy_check_empty_hours(p_batch, p_from, p_to));
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown dukascopy-json stream ' || f.stream, 'normalize_dukascopy_json_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy-json' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('ticks', 'candles_m1', 'candles_h1', 'candles_d1')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select staging.merge_counts(v_counts, jsonb_build_object('quarantined', count(*))) into v_counts from q;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_other_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_tick_blocks_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_ticks_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 SET work_mem TO '128MB'
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.normalize_ib_history_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with pages as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.stream = 'historicalData'
      and f.received_at >= p_from and f.received_at < p_to
  ), checked_pages as materialized (
    select p.*, i.instrument_id,
      case
        when p.j is null then 'payload is not valid JSON'
        when jsonb_typeof(p.j) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.j)
        when p.j ? 'error' then 'TWS refused the request: ' || left(p.j->>'error', 300)
        when i.instrument_id is null then 'unknown or malformed contract: conId ' || coalesce(p.j->>'conId', '(none)')
        when coalesce(p.j->>'timeframe', '') !~ '^[1-9][0-9]*(s|m|h|d)$' then 'timeframe is missing or malformed'
        when coalesce(p.j->>'what', '') not in ('TRADES', 'MIDPOINT', 'BID', 'ASK') then 'what ' || coalesce(p.j->>'what', '(none)') || ' is not read'
        when jsonb_typeof(p.j->'bars') is distinct from 'array' then 'bars is not an array'
      end as problem
    from pages p
    left join market.instruments i on i.venue = 'ib' and i.venue_symbol = p.j->>'conId'
  ), items as materialized (
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.j->>'timeframe' as timeframe, p.j->>'what' as what,
           sv.v as server_version, (e.n - 1)::integer as item, e.b,
           case when e.b->>'date' ~ '^[0-9]{9,11}$' then staging.ib_epoch_seconds(e.b->>'date')
                when e.b->>'date' ~ '^[0-9]{8}$' and pg_input_is_valid(e.b->>'date', 'date')
                  then ((e.b->>'date')::date)::timestamp at time zone 'UTC' end as bucket,
           staging.positive_decimal(e.b->>'open') as o, staging.positive_decimal(e.b->>'high') as h,
           staging.positive_decimal(e.b->>'low') as l, staging.positive_decimal(e.b->>'close') as c,
           case when p.j->>'what' = 'TRADES' and sv.v >= 175 then staging.nonnegative_decimal(e.b->>'volume') end as volume
    from checked_pages p
    cross join lateral (select case when pg_input_is_valid(p.j->>'serverVersion', 'integer') then (p.j->>'serverVersion')::integer end as v) sv
    cross join lateral jsonb_array_elements(p.j->'bars') with ordinality e(b, n)
    where p.problem is null
  ), checked as materialized (
    select i.*,
      case
        when jsonb_typeof(i.b) <> 'object' then 'expected a bar object, received ' || left(i.b::text, 80)
        when i.bucket is null then 'bar date is neither epoch seconds nor yyyymmdd: ' || coalesce(i.b->>'date', '(none)')
        when i.o is null or i.h is null or i.l is null or i.c is null then 'open, high, low, close are not positive numbers: ' || left(i.b::text, 160)
        when i.l > least(i.o, i.c) or i.h < greatest(i.o, i.c) then 'low or high does not bound open and close'
        when i.what = 'TRADES' and i.server_version >= 175 and i.volume is null then 'volume is not a number'
        when i.bucket > i.received_at then 'bar starts after the page was received'
        else staging.time_problem(i.bucket, i.received_at)
      end as problem
    from items i
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.what, g.bucket) g.*
    from checked g where g.problem is null
    order by g.instrument_id, g.timeframe, g.what, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket,
           case g.what when 'TRADES' then 'trade' when 'MIDPOINT' then 'mid' when 'BID' then 'bid' else 'ask' end,
           g.o, g.h, g.l, g.c, g.volume, case when g.volume is not null then 'base' end,
           case when g.what = 'TRADES' and g.b->>'count' ~ '^[0-9]{1,18}$' then (g.b->>'count')::bigint end,
           g.bucket + staging.ib_bar_length(g.timeframe) <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, b::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'ib', p.stream, p.received_at, b.payload, b.problem, 'normalize_ib_history_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'history_pages', (select count(*) from checked_pages where problem is null),
    'rows_received', (select count(*) from items),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'candles', (select count(*) from ups),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_ib_live_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with frames as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.stream in ('AllLast', 'BidAsk', 'RealTimeBars')
      and f.received_at >= p_from and f.received_at < p_to
  ), parsed as materialized (
    select f.*, i.instrument_id, i.asset_class, staging.ib_epoch_seconds(f.j->>'time') as at,
           staging.positive_decimal(f.j->>'price') as price, staging.positive_decimal(f.j->>'size') as size,
           staging.positive_decimal(f.j->>'bidPrice') as bid, staging.positive_decimal(f.j->>'askPrice') as ask,
           staging.nonnegative_decimal(f.j->>'bidSize') as bid_size, staging.nonnegative_decimal(f.j->>'askSize') as ask_size,
           staging.positive_decimal(f.j->>'open') as o, staging.positive_decimal(f.j->>'high') as h,
           staging.positive_decimal(f.j->>'low') as l, staging.positive_decimal(f.j->>'close') as c,
           case when f.j->>'what' = 'TRADES' and sv.v >= 175 then staging.nonnegative_decimal(f.j->>'volume') end as volume,
           sv.v as server_version
    from frames f
    cross join lateral (select case when pg_input_is_valid(f.j->>'serverVersion', 'integer') then (f.j->>'serverVersion')::integer end as v) sv
    left join market.instruments i on i.venue = 'ib' and i.venue_symbol = f.j->>'conId'
  ), checked as materialized (
    select p.*,
      case
        when p.j is null then 'payload is not valid JSON'
        when jsonb_typeof(p.j) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.j)
        when p.instrument_id is null then 'unknown or malformed contract: conId ' || coalesce(p.j->>'conId', '(none)')
                                          || ', symbol ' || coalesce(p.j->>'symbol', '(none)') || ', secType ' || coalesce(p.j->>'secType', '(none)')
        when p.at is null then 'time is not whole epoch seconds: ' || coalesce(p.j->>'time', '(none)')
        when p.stream = 'AllLast' and coalesce(p.j->>'tickType', '') not in ('1', '2')
          then 'tickType ' || coalesce(p.j->>'tickType', '(none)') || ' is not a trade (1 Last, 2 AllLast)'
        when p.stream = 'AllLast' and (p.price is null or p.size is null)
          then 'price or size is not a positive number: ' || left(p.payload, 200)
        when p.stream = 'BidAsk' and coalesce(p.j->>'tickType', '') <> '3' then 'tickType ' || coalesce(p.j->>'tickType', '(none)') || ' is not BidAsk (3)'
        when p.stream = 'BidAsk' and (p.bid is null or p.ask is null or p.bid_size is null or p.ask_size is null)
          then 'bid, ask or a size is not a number: ' || left(p.payload, 200)
        when p.stream = 'RealTimeBars' and (p.o is null or p.h is null or p.l is null or p.c is null)
          then 'open, high, low, close are not positive numbers: ' || left(p.payload, 200)
        when p.stream = 'RealTimeBars' and (p.l > least(p.o, p.c) or p.h < greatest(p.o, p.c))
          then 'low or high does not bound open and close'
        when p.stream = 'RealTimeBars' and coalesce(p.j->>'what', '') not in ('TRADES', 'MIDPOINT', 'BID', 'ASK')
          then 'what ' || coalesce(p.j->>'what', '(none)') || ' is not TRADES, MIDPOINT, BID or ASK'
        when p.stream = 'RealTimeBars' and p.j->>'what' = 'TRADES' and p.server_version >= 175 and p.volume is null
          then 'volume is not a number: ' || coalesce(p.j->>'volume', '(none)')
        else staging.time_problem(p.at, p.received_at)
      end as problem
    from parsed p
  ), new_trades as materialized (
    select c.* from checked c
    where c.problem is null and c.stream = 'AllLast'
      and not exists (select 1 from market.trades t where t.instrument_id = c.instrument_id and t.traded_at = c.at and t.frame_id = c.frame_id)
  ), trades_ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select n.instrument_id, n.at,
           (n.j->>'time') || '-' || ((select count(*) from market.trades t where t.instrument_id = n.instrument_id and t.traded_at = n.at)
                                     + row_number() over (partition by n.instrument_id, n.at order by n.frame_id) - 1),
           null, n.price, n.size, null, n.received_at, n.source, n.frame_id
    from new_trades n
    on conflict do nothing
    returning instrument_id, traded_at
  ), trade_inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from trades_ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), new_quotes as materialized (
    select c.* from checked c
    where c.problem is null and c.stream = 'BidAsk'
      and not exists (select 1 from market.quotes q where q.instrument_id = c.instrument_id and q.quoted_at = c.at and q.frame_id = c.frame_id)
  ), keyed as (
    select n.*, (select count(*) from market.quotes q where q.instrument_id = n.instrument_id and q.quoted_at = n.at)
                + row_number() over (partition by n.instrument_id, n.at order by n.frame_id) - 1 as k
    from new_quotes n
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select k.instrument_id, k.at, staging.epoch_us_of(k.at) + k.k, k.bid, k.bid_size, k.ask, k.ask_size, 'venue',
           k.received_at, k.source, k.frame_id
    from keyed k
    where k.k < 1000000
    on conflict do nothing
    returning instrument_id, quoted_at
  ), quote_inv as (
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from quotes_ins n join market.instruments i on i.instrument_id = n.instrument_id
    where i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), bars as materialized (
    select distinct on (c.instrument_id, c.j->>'what', c.at) c.*,
           case c.j->>'what' when 'TRADES' then 'trade' when 'MIDPOINT' then 'mid' when 'BID' then 'bid' else 'ask' end as side
    from checked c
    where c.problem is null and c.stream = 'RealTimeBars'
    order by c.instrument_id, c.j->>'what', c.at, c.received_at desc, c.frame_id desc
  ), bars_ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select b.instrument_id, '5s', b.at, b.side, b.o, b.h, b.l, b.c, b.volume, case when b.volume is not null then 'base' end,
           case when b.j->>'what' = 'TRADES' and b.j->>'count' ~ '^[0-9]{1,18}$' then (b.j->>'count')::bigint end,
           b.at + interval '5 seconds' <= b.received_at, b.source, b.received_at, b.frame_id
    from bars b
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, problem from checked where problem is not null
    union all
    select frame_id, 'more than a million quotes in second ' || at from keyed where k >= 1000000
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, -1, f.batch_id, 'ib', f.stream, f.received_at, f.payload, b.problem, 'normalize_ib_live_v1'
    from bad b join frames f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'trades', (select count(*) from trades_ins),
    'trades_duplicate', (select count(*) from checked where problem is null and stream = 'AllLast') - (select count(*) from trades_ins),
    'quotes', (select count(*) from quotes_ins),
    'bar_quotes', (select count(*) from quotes_ins n join market.instruments i on i.instrument_id = n.instrument_id
                   where i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null and stream = 'BidAsk') - (select count(*) from quotes_ins),
    'candles', (select count(*) from bars_ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_ib_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
  v_unknown integer;
begin
  perform staging.ib_register_instruments(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.normalize_ib_live_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_ib_history_v1(p_batch, p_from, p_to));
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload, 'unknown ib stream ' || f.stream, 'normalize_ib_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'ib' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('AllLast', 'BidAsk', 'RealTimeBars', 'historicalData')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select count(*) into v_unknown from q;
  return staging.merge_counts(v_counts, jsonb_build_object('quarantined', v_unknown));
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_oanda_candles_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- GET /v3/instruments/<I>/candles: {"instrument","granularity","candles":[{"time","volume",
  -- "complete","mid"|"bid"|"ask":{"o","h","l","c"}}]}. One market.candles row per candle and
  -- price side present; volume is OANDA's tick count. The instrument is the one the request
  -- named, and the payload must agree. A candle served while its bucket was open (complete false)
  -- is kept as incomplete and replaced by a later landing (the complete one).
  with pages as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload, f.request,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           substring(f.request from '^GET /v3/instruments/([A-Za-z0-9_]+)/candles') as req_instrument,
           substring(f.request from ' ([0-9]{3})$') as status
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.stream = 'candles'
      and f.received_at >= p_from and f.received_at < p_to
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'oanda', n.s, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.req_instrument as s from pages p where p.req_instrument ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$') n
    cross join lateral market.oanda_symbol(n.s) c
    where not exists (select 1 from market.instruments i where i.venue = 'oanda' and i.venue_symbol = n.s)
    -- Two backfill chunks may meet a new instrument at once: "do update" waits for the other's
    -- insert and returns its row, where "do nothing" would return nothing and refuse the page.
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning instrument_id, venue_symbol
  ), instruments as (
    select instrument_id, venue_symbol from market.instruments where venue = 'oanda'
    union all
    select instrument_id, venue_symbol from registered
  ), checked_pages as materialized (
    select p.*, i.instrument_id, staging.oanda_granularity(p.d->>'granularity') as timeframe,
      case
        when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ' response: ' || left(p.payload, 200)
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when i.instrument_id is null then 'request does not name an instrument: ' || coalesce(p.request, '(none)')
        when p.d->>'instrument' is distinct from p.req_instrument
          then 'instrument ' || coalesce((p.d->'instrument')::text, '(none)') || ' is not the requested ' || p.req_instrument
        when staging.oanda_granularity(p.d->>'granularity') is null
          then 'unknown granularity: ' || coalesce((p.d->'granularity')::text, '(none)')
        when jsonb_typeof(p.d->'candles') is distinct from 'array' then 'candles is not an array'
      end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.req_instrument
  ), items as materialized (
    select p.frame_id, p.batch_id, p.stream, p.received_at, p.source, p.instrument_id, p.timeframe,
           (e.n - 1)::integer as item, e.c,
           case when jsonb_typeof(e.c->'time') = 'string' then staging.oanda_time(e.c->>'time') end as bucket
    from checked_pages p
    cross join lateral jsonb_array_elements(p.d->'candles') with ordinality e(c, n)
    where p.problem is null
  ), sides as materialized (
    -- One row per candle and price side it carries.
    select i.*, s.side, i.c->(s.key) as ohlc,
           case when jsonb_typeof(i.c->(s.key)->'o') = 'string' then staging.positive_decimal(i.c->(s.key)->>'o') end as o,
           case when jsonb_typeof(i.c->(s.key)->'h') = 'string' then staging.positive_decimal(i.c->(s.key)->>'h') end as h,
           case when jsonb_typeof(i.c->(s.key)->'l') = 'string' then staging.positive_decimal(i.c->(s.key)->>'l') end as l,
           case when jsonb_typeof(i.c->(s.key)->'c') = 'string' then staging.positive_decimal(i.c->(s.key)->>'c') end as cl
    from items i
    cross join (values ('mid', 'mid'), ('bid', 'bid'), ('ask', 'ask')) s(key, side)
    where i.c ? s.key
  ), checked as materialized (
    select s.*,
      case
        when jsonb_typeof(s.c) <> 'object' then 'expected a candle object, received ' || left(s.c::text, 80)
        when s.bucket is null then 'time is not an RFC 3339 or UNIX time: ' || coalesce((s.c->'time')::text, '(none)')
        when jsonb_typeof(s.c->'complete') is distinct from 'boolean' then 'complete is not a boolean'
        when case when staging.is_int(s.c->'volume') then (s.c->>'volume')::bigint < 0 else true end
          then 'volume is not a non-negative integer'
        when s.o is null or s.h is null or s.l is null or s.cl is null
          then s.side || ' o, h, l, c are not positive decimal strings: ' || left(s.ohlc::text, 80)
        when s.l > least(s.o, s.cl) or s.h < greatest(s.o, s.cl) then s.side || ' low or high does not bound open and close'
        when s.bucket > s.received_at then 'candle time ' || (s.c->>'time') || ' is after the page was received'
        else staging.time_problem(s.bucket, s.received_at)
      end as problem
    from sides s
  ), candle_less as (
    -- A candle with no price side at all is malformed (the request asked for some).
    select i.frame_id, i.item, 'candle has none of mid, bid, ask: ' || left(i.c::text, 80) as problem, i.c::text as payload
    from items i
    where not (jsonb_typeof(i.c) = 'object' and (i.c ? 'mid' or i.c ? 'bid' or i.c ? 'ask'))
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.side, g.bucket) g.*,
           exists (select 1 from market.candles c
                   where c.instrument_id = g.instrument_id and c.timeframe = g.timeframe
                     and c.price_side = g.side and c.bucket = g.bucket) as existed
    from checked g
    where g.problem is null
    order by g.instrument_id, g.timeframe, g.side, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as c (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket, g.side, g.o, g.h, g.l, g.cl, (g.c->>'volume')::numeric, 'tick_count',
           (g.c->>'complete')::boolean, g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not c.complete and (excluded.complete or excluded.received_at >= c.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, payload from candle_less
    union all
    select distinct on (frame_id, item) frame_id, item, problem, c::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'oanda', p.stream, p.received_at, b.payload, b.problem, 'normalize_oanda_candles_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'candle_pages', (select count(*) from checked_pages where problem is null),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'rows_received', (select count(*) from checked),
    -- A key that was not stored is inserted; every other row the upsert wrote replaced an
    -- incomplete candle (counted without joining the upsert's rows back: that join is quadratic).
    'candles', (select count(*) from good where not existed),
    'candles_updated', (select count(*) from ups) - (select count(*) from good where not existed),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_oanda_other_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown oanda stream ' || f.stream, 'normalize_oanda_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('pricing', 'candles')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_oanda_prices_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with src as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'oanda' and f.stream = 'pricing'
      and f.received_at >= p_from and f.received_at < p_to
  ), parsed as materialized (
    select s.*, s.d->>'instrument' as sym,
           case when jsonb_typeof(s.d->'time') = 'string' then staging.oanda_time(s.d->>'time') end as quoted_at,
           case when jsonb_typeof(s.d->'tradeable') = 'boolean' then (s.d->>'tradeable')::boolean
                when s.d->>'status' in ('tradeable', 'non-tradeable', 'invalid') then s.d->>'status' = 'tradeable' end as tradeable,
           b.n as bid_levels, b.bad as bid_bad, b.best as bid, b.size as bid_size,
           a.n as ask_levels, a.bad as ask_bad, a.best as ask, a.size as ask_size
    from src s
    cross join lateral (
      select count(*) as n, count(*) filter (where x.p is null or x.l is null) as bad, max(x.p) as best,
             (array_agg(x.l order by x.p desc nulls last))[1] as size
      from (select case when jsonb_typeof(e->'price') = 'string' then staging.positive_decimal(e->>'price') end as p,
                   case when jsonb_typeof(e->'liquidity') = 'number' then staging.nonnegative_decimal(e->>'liquidity') end as l
            from jsonb_array_elements(case when jsonb_typeof(s.d->'bids') = 'array' then s.d->'bids' else '[]' end) e) x
    ) b
    cross join lateral (
      select count(*) as n, count(*) filter (where x.p is null or x.l is null) as bad, min(x.p) as best,
             (array_agg(x.l order by x.p asc nulls last))[1] as size
      from (select case when jsonb_typeof(e->'price') = 'string' then staging.positive_decimal(e->>'price') end as p,
                   case when jsonb_typeof(e->'liquidity') = 'number' then staging.nonnegative_decimal(e->>'liquidity') end as l
            from jsonb_array_elements(case when jsonb_typeof(s.d->'asks') = 'array' then s.d->'asks' else '[]' end) e) x
    ) a
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'oanda', n.sym, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.sym from parsed p where p.sym ~ '^[A-Z0-9]{2,12}_[A-Z]{3}$') n
    cross join lateral market.oanda_symbol(n.sym) c
    where not exists (select 1 from market.instruments i where i.venue = 'oanda' and i.venue_symbol = n.sym)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'oanda'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), checked as materialized (
    select p.*, i.instrument_id, i.asset_class,
      case
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when p.d->>'type' is distinct from 'PRICE' then 'expected type PRICE, received type=' || coalesce(p.d->>'type', '(none)')
        when i.instrument_id is null then 'missing or malformed instrument: ' || coalesce((p.d->'instrument')::text, '(none)')
        when p.quoted_at is null then 'time is not an RFC 3339 UTC time: ' || coalesce((p.d->'time')::text, '(none)')
        when jsonb_typeof(p.d->'bids') is distinct from 'array' or jsonb_typeof(p.d->'asks') is distinct from 'array'
          then 'bids or asks is not an array'
        when p.bid_bad > 0 or p.ask_bad > 0 then 'a price level is not {price: positive decimal string, liquidity: number}'
        when p.bid_levels = 0 and p.ask_levels = 0 then 'no bid and no ask'
        when p.tradeable is null then 'neither a tradeable flag nor a known status: ' || coalesce((p.d->'status')::text, '(none)')
        else staging.time_problem(p.quoted_at, p.received_at)
      end as problem
    from parsed p
    left join instruments i on i.venue_symbol = p.sym
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, tradeable, time_source,
                               received_at, source, frame_id)
    select c.instrument_id, c.quoted_at, staging.epoch_us_of(c.quoted_at), c.bid, c.bid_size, c.ask, c.ask_size,
           c.tradeable, 'venue', c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null
    on conflict do nothing
    returning instrument_id, quoted_at, tradeable, bid, ask
  ), inv as (
    -- Tradeable two-sided quotes of quote-priced instruments make bars (sql/market/quote_bars*.sql).
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from ins n
    join instruments i on i.instrument_id = n.instrument_id
    where n.tradeable and n.bid is not null and n.ask is not null and i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select frame_id, -1, batch_id, venue, stream, received_at, payload, problem, 'normalize_oanda_prices_v1'
    from checked where problem is not null
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'quotes', (select count(*) from ins),
    'quotes_non_tradeable', (select count(*) from ins where not tradeable),
    'bar_quotes', (select count(*) from ins n join instruments i on i.instrument_id = n.instrument_id
                   where n.tradeable and n.bid is not null and n.ask is not null and i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ins),
    'quarantined', (select count(*) from checked where problem is not null))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_oanda_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
begin
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_prices_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_candles_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_oanda_other_v1(p_batch, p_from, p_to));
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_pending(p_limit integer DEFAULT 100)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
declare
  v_batch uuid;
  v_done integer := 0;
begin
  for v_batch in
    select batch_id from ops.batches where normalized_at is null order by landed_at limit p_limit
    for update skip locked
  loop
    begin
      perform staging.normalize_batch(v_batch);
    exception when others then
      update ops.batches set normalize_error = sqlerrm where batch_id = v_batch;
      continue;
    end;
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_polygon_aggs_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- GET /v2/aggs/ticker/<T>/range/<n>/<timespan>/<from>/<to> (and its next_url pages):
  -- {"ticker","adjusted","results":[{"o","h","l","c","v","vw","n","t"}],"next_url"?}. Bars start at
  -- t (ms). Price side: bid for forex (the venue builds forex aggregates from the bid), value for
  -- indices, trade otherwise. Volume: tick count for forex, base units (shares, coins) for stocks
  -- and crypto, none for indices; n is a trade count except for forex. Stock aggregates adjusted for
  -- splits change after every split, so only unadjusted ones (adjusted false, stated in the page)
  -- are stored: prices as traded, like the live trades; an adjusted stock page is quarantined.
  with pages as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload, f.request,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as d,
           r.m[1] as req_ticker, r.m[2]::integer as multiplier, r.m[3] as timespan,
           substring(f.request from ' ([0-9]{3})$') as status
    from staging.frames f
    left join lateral (select regexp_match(f.request,
                         '^GET /v2/aggs/ticker/([A-Za-z0-9:.]+)/range/([1-9][0-9]{0,5})/(second|minute|hour|day|week|month|quarter|year)/') as m) r
      on true
    where f.batch_id = p_batch and f.venue = 'polygon' and f.stream = 'aggs'
      and f.received_at >= p_from and f.received_at < p_to
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'polygon', n.t, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct p.req_ticker as t from pages p
          where p.req_ticker ~ '^(C:[A-Z]{6}|X:[A-Z0-9]{4,20}|I:[A-Z0-9.]{1,20}|[A-Z][A-Z0-9.]{0,11})$') n
    cross join lateral market.polygon_symbol(n.t) c
    where not exists (select 1 from market.instruments i where i.venue = 'polygon' and i.venue_symbol = n.t)
    -- Two backfill chunks may meet a new ticker at once: "do update" waits for the other's
    -- insert and returns its row, where "do nothing" would return nothing and refuse the page.
    on conflict (venue, venue_symbol) do update set venue_symbol = excluded.venue_symbol
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'polygon'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), checked_pages as materialized (
    select p.*, i.instrument_id, i.asset_class,
           case p.timespan when 'second' then p.multiplier || 's' when 'minute' then p.multiplier || 'm'
                           when 'hour' then p.multiplier || 'h' when 'day' then p.multiplier || 'd'
                           when 'week' then p.multiplier || 'w' when 'month' then p.multiplier || 'mo'
                           when 'quarter' then p.multiplier * 3 || 'mo' when 'year' then p.multiplier * 12 || 'mo' end
             as timeframe,
      case
        when p.status is distinct from '200' then 'HTTP ' || coalesce(p.status, '(no status)') || ' response: ' || left(p.payload, 200)
        when p.d is null then 'payload is not valid JSON'
        when jsonb_typeof(p.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(p.d)
        when p.req_ticker is null then 'request is not an aggregates request: ' || coalesce(p.request, '(none)')
        when i.instrument_id is null then 'malformed ticker in the request: ' || p.req_ticker
        when p.d->>'ticker' is distinct from p.req_ticker
          then 'ticker ' || coalesce((p.d->'ticker')::text, '(none)') || ' is not the requested ' || p.req_ticker
        when i.asset_class = 'equity' and jsonb_typeof(p.d->'adjusted') is distinct from 'boolean'
          then 'a stock aggregates page must state adjusted'
        when i.asset_class = 'equity' and (p.d->>'adjusted')::boolean
          then 'adjusted stock aggregates are not stored (market.candles keeps prices as traded: request adjusted=false)'
        when p.d ? 'results' and jsonb_typeof(p.d->'results') <> 'array' then 'results is not an array'
      end as problem
    from pages p
    left join instruments i on i.venue_symbol = p.req_ticker
  ), items as materialized (
    select p.frame_id, p.received_at, p.source, p.instrument_id, p.asset_class, p.timeframe, (e.n - 1)::integer as item, e.r,
           case when staging.is_int(e.r->'t') then staging.epoch_ms((e.r->>'t')::bigint) end as bucket,
           staging.json_positive(e.r->'o') as o, staging.json_positive(e.r->'h') as h,
           staging.json_positive(e.r->'l') as l, staging.json_positive(e.r->'c') as c,
           case when p.asset_class <> 'index' then staging.json_nonnegative(e.r->'v') end as volume
    from checked_pages p
    cross join lateral jsonb_array_elements(coalesce(p.d->'results', '[]')) with ordinality e(r, n)
    where p.problem is null
  ), checked as materialized (
    select i.*,
      case
        when jsonb_typeof(i.r) <> 'object' then 'expected a bar object, received ' || left(i.r::text, 80)
        when i.bucket is null then 'bar start t is not an integer of milliseconds'
        when i.o is null or i.h is null or i.l is null or i.c is null then 'o, h, l, c are not positive numbers: ' || left(i.r::text, 120)
        when i.l > least(i.o, i.c) or i.h < greatest(i.o, i.c) then 'low or high does not bound open and close'
        when i.asset_class <> 'index' and i.volume is null then 'volume v is not a number'
        when i.r ? 'n' and not staging.is_int(i.r->'n') then 'transactions n is not an integer'
        when i.bucket > i.received_at then 'bar start is after the page was received'
        else staging.time_problem(i.bucket, i.received_at)
      end as problem
    from items i
  ), good as materialized (
    select distinct on (g.instrument_id, g.timeframe, g.bucket) g.*
    from checked g where g.problem is null
    order by g.instrument_id, g.timeframe, g.bucket, g.received_at desc, g.frame_id desc, g.item desc
  ), ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, trade_count, complete, source, received_at, frame_id)
    select g.instrument_id, g.timeframe, g.bucket,
           case g.asset_class when 'forex' then 'bid' when 'index' then 'value' else 'trade' end,
           g.o, g.h, g.l, g.c, g.volume,
           case g.asset_class when 'forex' then 'tick_count' when 'index' then null else 'base' end,
           case when g.asset_class in ('equity', 'crypto') and g.r ? 'n' then (g.r->>'n')::bigint end,
           (g.bucket at time zone 'UTC' + staging.timeframe_interval(g.timeframe)) at time zone 'UTC' <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, trade_count = excluded.trade_count,
          complete = excluded.complete, source = excluded.source, received_at = excluded.received_at,
          frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from checked_pages where problem is not null
    union all
    select frame_id, item, problem, r::text from checked where problem is not null
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, p.batch_id, 'polygon', p.stream, p.received_at, b.payload, b.problem, 'normalize_polygon_aggs_v1'
    from bad b join pages p using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'agg_pages', (select count(*) from checked_pages where problem is null),
    'pages_quarantined', (select count(*) from checked_pages where problem is not null),
    'rows_received', (select count(*) from checked),
    'candles', (select count(*) from ups),
    'candles_duplicate', (select count(*) from checked where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_polygon_events_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with frames as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           case when pg_input_is_valid(f.payload, 'jsonb') then f.payload::jsonb end as j
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'polygon' and f.stream in ('forex', 'indices', 'stocks', 'crypto')
      and f.received_at >= p_from and f.received_at < p_to
  ), items as materialized (
    select f.frame_id, f.batch_id, f.stream, f.received_at, f.source, (e.n - 1)::integer as item, e.v as d,
           e.v->>'ev' as ev,
           case e.v->>'ev' when 'C' then e.v->>'p' when 'V' then e.v->>'T'
                           when 'CA' then e.v->>'pair' when 'XT' then e.v->>'pair' when 'XQ' then e.v->>'pair'
                           when 'XA' then e.v->>'pair' else e.v->>'sym' end as name
    from frames f
    cross join lateral jsonb_array_elements(f.j) with ordinality e(v, n)
    where jsonb_typeof(f.j) = 'array'
  ), named as materialized (
    select i.*,
           case i.stream when 'forex' then i.ev in ('C', 'CA') when 'indices' then i.ev in ('V', 'AM')
                         when 'stocks' then i.ev in ('T', 'Q', 'AM') when 'crypto' then i.ev in ('XT', 'XQ', 'XA') end
             as known,
           market.polygon_ws_ticker(i.stream, i.ev, i.name) as ticker
    from items i
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'polygon', n.ticker, c.symbol, c.base, c.quote, c.asset_class
    from (select distinct on (ticker) ticker, name from named where known and ticker is not null order by ticker) n
    cross join lateral market.polygon_symbol(n.ticker, case when n.ticker like 'X:%' then n.name end) c
    where not exists (select 1 from market.instruments i where i.venue = 'polygon' and i.venue_symbol = n.ticker)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol, asset_class
  ), instruments as (
    select instrument_id, venue_symbol, asset_class from market.instruments where venue = 'polygon'
    union all
    select instrument_id, venue_symbol, asset_class from registered
  ), parsed as materialized (
    select n.*, i.instrument_id, i.asset_class,
           case when staging.is_int(n.d->(case when n.ev in ('CA', 'AM', 'XA') then 's' else 't' end))
                then staging.epoch_ms((n.d->>(case when n.ev in ('CA', 'AM', 'XA') then 's' else 't' end))::bigint) end as at,
           case n.ev when 'C' then staging.json_positive(n.d->'b') when 'Q' then staging.json_positive(n.d->'bp')
                     when 'XQ' then staging.json_positive(n.d->'bp') end as bid,
           case n.ev when 'C' then staging.json_positive(n.d->'a') when 'Q' then staging.json_positive(n.d->'ap')
                     when 'XQ' then staging.json_positive(n.d->'ap') end as ask,
           case when n.ev = 'XQ' then staging.json_nonnegative(n.d->'bs') end as bid_size,
           case when n.ev = 'XQ' then staging.json_nonnegative(n.d->'as') end as ask_size,
           case when n.ev = 'V' then staging.json_positive(n.d->'val')
                when n.ev in ('T', 'XT') then staging.json_positive(n.d->'p') end as price,
           case when n.ev in ('T', 'XT') then staging.json_positive(n.d->'s') end as size,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'o') end as o,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'h') end as h,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'l') end as l,
           case when n.ev in ('CA', 'AM', 'XA') then staging.json_positive(n.d->'c') end as c,
           case when n.ev in ('CA', 'AM', 'XA') and n.stream <> 'indices' then staging.json_nonnegative(n.d->'v') end as volume
    from named n
    left join instruments i on i.venue_symbol = n.ticker
  ), checked as materialized (
    select p.*,
      case
        when jsonb_typeof(p.d) <> 'object' then 'expected an event object, received ' || left(p.d::text, 80)
        when p.ev = 'status' then 'status event inside a data frame: ' || left(p.d::text, 120)
        when not coalesce(p.known, false) then 'event ev=' || coalesce(p.ev, '(none)') || ' is not read on the ' || p.stream || ' cluster'
        when p.instrument_id is null then 'missing or malformed ticker: ' || coalesce(p.name, '(none)')
        when p.at is null then 'time ' || case when p.ev in ('CA', 'AM', 'XA') then 's' else 't' end
                               || ' is not an integer of milliseconds'
        when p.ev in ('C', 'Q', 'XQ') and (p.bid is null or p.ask is null)
          then 'bid or ask is not a positive number: ' || left(p.d::text, 120)
        when p.ev = 'XQ' and (p.bid_size is null or p.ask_size is null) then 'bid size bs or ask size as is not a number'
        when p.ev in ('Q', 'T') and not staging.is_int(p.d->'q') then 'sequence q is not an integer that fits 64 bits'
        when p.ev = 'V' and p.price is null then 'value val is not a positive number: ' || coalesce((p.d->'val')::text, '(none)')
        when p.ev in ('T', 'XT') and (p.price is null or p.size is null)
          then 'price p or size s is not a positive number: ' || left(p.d::text, 120)
        when p.ev in ('T', 'XT') and (coalesce(p.d->>'i', '') !~ '^[0-9A-Za-z]{1,40}$' or not staging.is_int(p.d->'x'))
          then 'trade id i or exchange x is missing or malformed'
        when p.ev in ('CA', 'AM', 'XA') and (p.o is null or p.h is null or p.l is null or p.c is null)
          then 'o, h, l, c are not positive numbers: ' || left(p.d::text, 120)
        when p.ev in ('CA', 'AM', 'XA') and (p.l > least(p.o, p.c) or p.h < greatest(p.o, p.c))
          then 'low or high does not bound open and close'
        when p.ev in ('CA', 'AM', 'XA') and p.stream <> 'indices' and p.volume is null then 'volume v is not a number'
        when p.ev in ('CA', 'AM', 'XA') and (p.d->>'s')::bigint % 60000 <> 0
          then 'minute aggregate start s=' || (p.d->>'s') || ' is not on a minute'
        when p.ev in ('AM', 'XA') and p.d ? 'e'
             and case when staging.is_int(p.d->'e') then (p.d->>'e')::bigint - (p.d->>'s')::bigint <> 60000 else true end
          then 'minute aggregate end e=' || (p.d->>'e') || ' is not one minute after s'
        else staging.time_problem(p.at, p.received_at)
      end as problem
    from parsed p
  ), unkeyed as materialized (
    -- C and XQ quotes carry no sequence: one per (instrument, ms, bid, ask, sizes), not yet stored.
    select distinct on (c.instrument_id, c.at, c.bid, c.ask, c.bid_size, c.ask_size) c.*
    from checked c
    where c.problem is null and c.ev in ('C', 'XQ')
      and not exists (select 1 from market.quotes q
                      where q.instrument_id = c.instrument_id and q.quoted_at = c.at and q.bid = c.bid and q.ask = c.ask
                        and q.bid_size is not distinct from c.bid_size and q.ask_size is not distinct from c.ask_size)
    order by c.instrument_id, c.at, c.bid, c.ask, c.bid_size, c.ask_size, c.frame_id, c.item
  ), keyed as (
    select u.*, (select count(*) from market.quotes q where q.instrument_id = u.instrument_id and q.quoted_at = u.at)
                + row_number() over (partition by u.instrument_id, u.at order by u.frame_id, u.item) - 1 as k
    from unkeyed u
  ), quotes_ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select k.instrument_id, k.at, staging.epoch_us_of(k.at) + k.k, k.bid, k.bid_size, k.ask, k.ask_size, 'venue',
           k.received_at, k.source, k.frame_id
    from keyed k
    where k.k < 1000
    union all
    select c.instrument_id, c.at, (c.d->>'q')::bigint, c.bid, null, c.ask, null, 'venue', c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev = 'Q'
    on conflict do nothing
    returning instrument_id, quoted_at
  ), quote_inv as (
    insert into market.quote_bar_invalidations (instrument_id, bucket)
    select distinct n.instrument_id, date_trunc('minute', n.quoted_at)
    from quotes_ins n
    join instruments i on i.instrument_id = n.instrument_id
    where i.asset_class in ('forex', 'cfd')
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), trades_ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select c.instrument_id, c.at,
           (c.d->>'x') || '-' || case when c.ev = 'T' and c.d ? 'trfi' then (c.d->>'trfi') || '-' else '' end || (c.d->>'i'),
           case when c.ev = 'T' then (c.d->>'q')::bigint end, c.price, c.size,
           case when c.ev = 'XT' and c.d->'c' @> '[1]' then 'sell' when c.ev = 'XT' and c.d->'c' @> '[2]' then 'buy' end,
           c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev in ('T', 'XT')
    on conflict do nothing
    returning instrument_id, traded_at
  ), trade_inv as (
    insert into market.bar_invalidations (instrument_id, bucket)
    select distinct instrument_id, date_trunc('minute', traded_at) from trades_ins
    on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at
  ), values_ins as (
    insert into market.index_values (instrument_id, valued_at, value, received_at, source, frame_id)
    select c.instrument_id, c.at, c.price, c.received_at, c.source, c.frame_id
    from checked c
    where c.problem is null and c.ev = 'V'
    on conflict do nothing
    returning 1
  ), candles as materialized (
    select distinct on (c.instrument_id, c.ev, c.at) c.*,
           case when c.ev = 'CA' then 'bid' when c.stream = 'indices' then 'value' else 'trade' end as side,
           case when c.ev = 'CA' then 'tick_count' when c.stream = 'indices' then null else 'base' end as volume_kind
    from checked c
    where c.problem is null and c.ev in ('CA', 'AM', 'XA')
    order by c.instrument_id, c.ev, c.at, c.received_at desc, c.frame_id desc, c.item desc
  ), candles_ups as (
    insert into market.candles as k (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume,
                                     volume_kind, complete, source, received_at, frame_id)
    select c.instrument_id, '1m', c.at, c.side, c.o, c.h, c.l, c.c, c.volume, c.volume_kind,
           c.at + interval '1 minute' <= c.received_at, c.source, c.received_at, c.frame_id
    from candles c
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not k.complete and (excluded.complete or excluded.received_at >= k.received_at)
    returning 1
  ), bad as (
    select frame_id, -1 as item,
           case when j is null then 'payload is not valid JSON'
                else 'expected a JSON array of events, received ' || jsonb_typeof(j) end as problem,
           payload
    from frames where j is null or jsonb_typeof(j) <> 'array'
    union all
    select frame_id, item, problem, d::text from checked where problem is not null
    union all
    select frame_id, item, 'more than 1000 distinct quotes in millisecond ' || at, d::text from keyed where k >= 1000
  ), q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select b.frame_id, b.item, f.batch_id, 'polygon', f.stream, f.received_at, b.payload, b.problem,
           'normalize_polygon_events_v1'
    from bad b join frames f using (frame_id)
    on conflict (frame_id, item) do nothing
  )
  select jsonb_build_object(
    'events', (select count(*) from items),
    'quotes', (select count(*) from quotes_ins),
    'bar_quotes', (select count(*) from quotes_ins n join instruments i on i.instrument_id = n.instrument_id
                   where i.asset_class in ('forex', 'cfd')),
    'quotes_duplicate', (select count(*) from checked where problem is null and ev in ('C', 'XQ', 'Q'))
                        - (select count(*) from quotes_ins),
    'trades', (select count(*) from trades_ins),
    'trades_duplicate', (select count(*) from checked where problem is null and ev in ('T', 'XT')) - (select count(*) from trades_ins),
    'index_values', (select count(*) from values_ins),
    'index_values_duplicate', (select count(*) from checked where problem is null and ev = 'V') - (select count(*) from values_ins),
    'candles', (select count(*) from candles_ups),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_polygon_other_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'unknown polygon stream ' || f.stream, 'normalize_polygon_other_v1'
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'polygon' and f.received_at >= p_from and f.received_at < p_to
      and f.stream not in ('forex', 'indices', 'stocks', 'crypto', 'aggs')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_polygon_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
begin
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_events_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_aggs_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_polygon_other_v1(p_batch, p_from, p_to));
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.numeric_or_null(p_text text)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when pg_input_is_valid(p_text, 'numeric') then p_text::numeric end
$function$
CREATE OR REPLACE FUNCTION staging.oanda_granularity(p_text text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- OANDA candlestick granularities as tickflow timeframes (S5 -> 5s, M1 -> 1m, H4 -> 4h, D, W, M).
  select case
    when p_text ~ '^S(5|10|15|30)$' then substr(p_text, 2) || 's'
    when p_text ~ '^M(1|2|4|5|10|15|30)$' then substr(p_text, 2) || 'm'
    when p_text ~ '^H(1|2|3|4|6|8|12)$' then substr(p_text, 2) || 'h'
    when p_text = 'D' then '1d'
    when p_text = 'W' then '1w'
    when p_text = 'M' then '1mo'
  end
$function$
CREATE OR REPLACE FUNCTION staging.oanda_time(p_text text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- OANDA times have nanoseconds: RFC 3339 "2017-09-21T01:54:35.452443932Z", or with
  -- Accept-Datetime-Format: UNIX "1509126185.000000000". timestamptz keeps microseconds, so the
  -- digits after the sixth are cut, never rounded (rounding could move a price into the next
  -- second, or the next bar).
  -- Plain string tests rather than a regular expression: this runs once per price line.
  select case
    when length(p_text) between 20 and 30 and right(p_text, 1) = 'Z'
         and substr(p_text, 5, 1) = '-' and substr(p_text, 8, 1) = '-' and substr(p_text, 11, 1) = 'T'
         and substr(p_text, 14, 1) = ':' and substr(p_text, 17, 1) = ':'
         and translate(left(p_text, 19), '0123456789', '') = '--T::'
         and (length(p_text) = 20 or (length(p_text) > 21 and substr(p_text, 20, 1) = '.'
                                      and translate(substr(p_text, 21, length(p_text) - 21), '0123456789', '') = ''))
         and pg_input_is_valid(left(p_text, least(length(p_text) - 1, 26)) || '+00', 'timestamptz')
      then (left(p_text, least(length(p_text) - 1, 26)) || '+00')::timestamptz
    when p_text ~ '^[0-9]{1,11}(\.[0-9]{1,9})?$'
      then timestamptz '1970-01-01 00:00:00+00' + split_part(p_text, '.', 1)::bigint * interval '1 second'
           + rpad(left(split_part(p_text, '.', 2), 6), 6, '0')::bigint * interval '1 microsecond'
  end
$function$
CREATE OR REPLACE FUNCTION staging.positive_decimal(p_text text)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- The exact value of a decimal string that is a finite number above zero, else null (NaN,
  -- Infinity, zero, negatives and non-numbers are refused). Inlined; cheaper than a regex.
  select case when pg_input_is_valid(p_text, 'numeric') and p_text::numeric > 0 and p_text::numeric < 'Infinity'
              then p_text::numeric end
$function$
CREATE OR REPLACE FUNCTION staging.quarantine(p_frame_id bigint, p_item integer, p_reason text, p_normalizer text)
 RETURNS void
 LANGUAGE sql
AS $function$
  insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
  select f.frame_id, p_item, f.batch_id, f.venue, f.stream, f.received_at, f.payload, p_reason, p_normalizer
  from staging.frames f where f.frame_id = p_frame_id
  on conflict (frame_id, item) do nothing
$function$
CREATE OR REPLACE FUNCTION staging.read_bigint(p_value jsonb, p_careful boolean)
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when jsonb_typeof(p_value) = 'number' and (not p_careful or pg_input_is_valid(p_value::text, 'bigint'))
              then p_value::text::bigint end
$function$
CREATE OR REPLACE FUNCTION staging.read_numeric(p_text text, p_careful boolean)
 RETURNS numeric
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  select case when not p_careful or pg_input_is_valid(p_text, 'numeric') then p_text::numeric end
$function$
CREATE OR REPLACE FUNCTION staging.received_quotes_stored(p_instrument integer[], p_seq bigint[], p_at timestamp with time zone[])
 RETURNS TABLE(instrument_id integer, seq bigint)
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
AS $function$
begin
  -- Quotes without a venue time are keyed by their receive time, so the same update received on
  -- two overlapping connections differs in quoted_at: it is the same quote when the update id
  -- matches within two minutes. One probe of the key (instrument_id, seq, quoted_at) per quote,
  -- planned afresh on each call from the tables' current sizes: a plan cached while a partition
  -- was new (no statistics) probes the (instrument_id, quoted_at) index instead and reads every
  -- quote of the instrument per probe.
  return query execute
    'select u.i, u.s
     from unnest($1, $2, $3) as u(i, s, t)
     where exists (select 1 from market.quotes q
                   where q.instrument_id = u.i and q.seq = u.s
                     -- "+ interval ''0''": the time is checked on the rows the key finds, never
                     -- used to range-scan the (instrument_id, quoted_at) index instead.
                     and q.quoted_at + interval ''0'' between u.t - interval ''2 minutes'' and u.t + interval ''2 minutes'')'
    using p_instrument, p_seq, p_at;
end
$function$
CREATE OR REPLACE FUNCTION staging.record_dukascopy_files(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS void
 LANGUAGE sql
AS $function$
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
$function$
CREATE OR REPLACE FUNCTION staging.time_problem(p_event timestamp with time zone, p_received timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  -- Callers pass plain columns, so the planner inlines this into their query.
  select case
    when p_event < timestamptz '2009-01-01 00:00:00+00' then 'event time ' || p_event || ' is before 2009'
    when p_event > greatest(p_received, now()) + interval '1 day'
      then 'event time ' || p_event || ' is more than a day after it was received'
  end
$function$
CREATE OR REPLACE FUNCTION staging.timeframe_interval(p_timeframe text)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  -- The length of a candle timeframe: <n>s, <n>m, <n>h, <n>d, <n>w or <n>mo.
  select case substring(p_timeframe from '[a-z]+$')
    when 's' then interval '1 second' when 'm' then interval '1 minute' when 'h' then interval '1 hour'
    when 'd' then interval '1 day' when 'w' then interval '7 days' when 'mo' then interval '1 month'
  end * substring(p_timeframe from '^[0-9]+')::integer
$function$
-- comments
market.agg_trades: Venue aggregate trades (one taker order filled at one price), with the range of trade ids they cover.
market.all_quotes: Every quote of both stores (market.quotes, market.quote_blocks), with its hour: conditions on quoted_at and hour_start reach both stores' indexes (market.quotes_between writes both for a time range).
market.bars_15m: 15-minute OHLCV bars (built from 5-minute bars): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_15m_data: 15-minute bars (private); read market.bars_15m or market.bars().
market.bars_1d: 1-day OHLCV bars (built from 4-hour bars, UTC days): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_1d_data: 1-day bars (private); read market.bars_1d or market.bars().
market.bars_1h: 1-hour OHLCV bars (built from 15-minute bars): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_1h_data: 1-hour bars (private); read market.bars_1h or market.bars().
market.bars_1m: 1-minute OHLCV bars (from trades): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_1m_data: 1-minute bars (private); read market.bars_1m or market.bars().
market.bars_4h: 4-hour OHLCV bars (built from 1-hour bars, aligned to 00:00 UTC): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_4h_data: 4-hour bars (private); read market.bars_4h or market.bars().
market.bars_5m: 5-minute OHLCV bars (built from 1-minute bars): open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume truncated to 18 decimals.
market.bars_5m_data: 5-minute bars (private); read market.bars_5m or market.bars().
market.bbo: Best bid and offer with mid and spread (rows and tick blocks: every quote); time_source says whether quoted_at is the venue's time. A time range reads fastest through market.quotes_between(from, to).
market.book: The current order book, level 1 = best, with whether it is in sync with the venue.
market.book_levels: The current order book per instrument, kept by applying venue diffs in update-id order.
market.book_snapshots.sync_id: Insert order within sync_xid (ClickHouse sync position; never set by hand).
market.book_snapshots.sync_xid: Transaction that inserted the row (ClickHouse sync position; never set by hand).
market.book_snapshots: Book snapshots: venue REST snapshots (origin venue) and top levels of the maintained book (origin derived).
market.candles.complete: False while the bucket was still open when the venue served it; a later complete candle replaces it.
market.candles.price_side: Which price the candle is built from: bid, ask, mid (quotes), trade, or value (an index level).
market.candles.timeframe: Bucket length: <n>s, <n>m, <n>h, <n>d, <n>w or <n>mo (1m, 1h, 1d ...); bucket is the start, in UTC.
market.candles.volume_kind: base: traded quantity in the base asset; quote: traded value in the quote asset; tick_count: number of price updates (OANDA); quoted_size: sum of the top-of-book sizes of the ticks on price_side, in base units (Dukascopy).
market.candles: Candles as the venue publishes them (not derived by tickflow); read through market.venue_candles.
market.canonical_bars_15m: One 15 minutes bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.canonical_bars_1d: One 1 day bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.canonical_bars_1h: One 1 hour bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.canonical_bars_1m: One 1 minute bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.canonical_bars_4h: One 4 hours bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.canonical_bars_5m: One 5 minutes bar per symbol and bucket from a single source: the best-ranked source that covered the bucket completely, else the one with the highest coverage; source, priority and coverage are on the row.
market.index_values: Index levels as the venue publishes them (one per instrument and venue time).
market.instrument_source_ranks: Each instrument (one venue's listing of a symbol) with its source priority for the symbol (1 is preferred); rows naming the symbol in market.instrument_sources replace the asset class's '*' rows.
market.instrument_sources: Source priority per asset class (symbol '*') or per symbol: 1 is preferred. market.canonical_bars() picks, per bucket, the best-ranked source that covered the bucket completely.
market.quote_bar_invalidations: Minutes whose quote (mid-price) bars must be rebuilt because quotes arrived for them.
market.quote_bars_15m: 15-minute mid-price bars of quote-priced instruments (built from 5-minute bars): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_15m_data: 15-minute mid-price bars (private); read market.quote_bars_15m.
market.quote_bars_1d: 1-day mid-price bars of quote-priced instruments (UTC days, built from 4-hour bars): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_1d_data: 1-day mid-price bars (private); read market.quote_bars_1d.
market.quote_bars_1h: 1-hour mid-price bars of quote-priced instruments (built from 15-minute bars): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_1h_data: 1-hour mid-price bars (private); read market.quote_bars_1h.
market.quote_bars_1m: 1-minute mid-price bars of quote-priced instruments (built from quotes): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_1m_data: 1-minute mid-price bars (private); read market.quote_bars_1m.
market.quote_bars_4h: 4-hour mid-price bars of quote-priced instruments (built from 1-hour bars, aligned to 00:00 UTC): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_4h_data: 4-hour mid-price bars (private); read market.quote_bars_4h.
market.quote_bars_5m: 5-minute mid-price bars of quote-priced instruments (built from 1-minute bars): volume = ticks = number of tradeable quotes, coverage = share of 10-second slots with a quote.
market.quote_bars_5m_data: 5-minute mid-price bars (private); read market.quote_bars_5m.
market.quote_block_ticks: The ticks of market.quote_blocks as quotes, with the hour of their block (a condition on hour_start skips whole blocks).
market.quote_blocks.unit: The price of one point: price = points * unit.
market.quote_blocks: An hour of a venue file's ticks as columns (ms offset, ask and bid in points, volumes in the venue's unit); read them as quotes with market.quotes_between(from, to).
market.quotes.seq: The venue's update id, or microseconds since the epoch of quoted_at where the venue has none.
market.quotes.sync_id: Insert order within sync_xid (ClickHouse sync position; never set by hand).
market.quotes.sync_xid: Transaction that inserted the row (ClickHouse sync position; never set by hand).
market.quotes.time_source: received: the venue sends no event time for this stream, so quoted_at is our receive time.
market.symbols: Venue, canonical symbol and asset class of every instrument (the symbol variable of the market dashboard).
market.sync_id_seq: sync_id of market.trades, market.quotes and market.book_snapshots (ClickHouse sync order within a transaction).
market.ticks: Trades with venue and canonical symbol; side is the aggressor.
market.trades.seq: The venue's numeric trade sequence where it has one (gap detection uses it).
market.trades.side: Aggressor side: buy when the buyer took liquidity.
market.trades.sync_id: Insert order within sync_xid (ClickHouse sync position; never set by hand).
market.trades.sync_xid: Transaction that inserted the row (ClickHouse sync position; never set by hand).
market.venue_candles: Candles as venues publish them (Dukascopy files, exchange klines), by venue and canonical symbol; volume_kind says what volume counts.
market.venue_files: Venue history files read whole by a normalizer (records 0: the venue has no data for the period), with the frame that landed them.
ops.backfill_chunks: Backfill chunks (one graphile-worker job each, job key backfill_chunk:<chunk_id>) with their progress; read ops.backfill_progress.
ops.backfill_plans: Backfill requests; each is cut into chunks (ops.backfill_chunks) on a fixed grid.
ops.backfill_progress: Per backfill plan: state, chunks done / running / queued / failed, rows received and new, rate, ETA, and the errors of failed chunks.
ops.batches: One row per landed batch; a batch id that exists was committed (retries after a lost ack are detected by it).
ops.clickhouse_lag: ClickHouse sync lag per stream: rows not yet in ClickHouse, seconds since the moment up to which ClickHouse is complete (0 when nothing waits), counters and the last error.
ops.clickhouse_watermarks: ClickHouse sync position per stream: every row visible in shipped_snapshot (taken at shipped_snapshot_at) is in ClickHouse; while a newer target_snapshot is drained, so are its new rows up to (cursor_xid, cursor_id); a batch up to (pending_xid, pending_id) may be in ClickHouse and is replayed with pending_token (its insert deduplication token) before anything else. Read ops.clickhouse_lag.
ops.feed_status: Per feed: connection state, messages per second over the last minute, last message age, open gaps, quarantined payloads.
ops.job_leases: graphile-worker worker ids running history jobs, with the Postgres session each holds (dead session: the job is released).
ops.paced_requests: Requests sent under ops.pacing_rules, kept as long as the longest window of their venue.
ops.pacing_rules: Sliding-window request limits per venue: scope request (identical requests), key (one instrument) or venue (all).
ops.rate_limits: Request budgets per venue and limit, in fixed windows; drawn by ops.rate_take() from every worker process.
ops.rate_state: Per venue: pause after a 429 (Retry-After), ban after a 418, temporary slowdown, and request counters.
ops.rate_status: Per venue limit: budget, use in the current window, and whether the venue is paused (429) or banned (418).
ops.session_events: Connection lifecycle as data: connects, subscription acks, error frames, disconnects with reason.
ops.sessions: One row per connection attempt of a live feed, from connect to close with its reason.
ops.settings: Runtime settings kept in the database (retention, thresholds); changed with ops.set_setting().
ops.venues: Venues that have had a live session (the venue variable of the ingestion dashboard).
quality.activity_profiles: Usual activity of an instrument by hour of the week (0 = Sunday 00:00 local): the share of open minutes with data sets the gap threshold.
quality.alert_rules: A finding at or above min_severity for its kind (kind '*' for the rest) raises an alert (NOTIFY tickflow_alerts, log line, metric).
quality.asset_class_calendars: The calendar of an instrument by asset class, unless quality.instrument_calendars says otherwise.
quality.bar_quality_1m: Quality of each 1-minute bar (join on instrument_id, bucket): observed and expected messages, coverage, sources, gap / spike / anomaly overlaps, revised by a backfill, flags, and ok (no flag but revised).
quality.bars_1m: 1-minute bars with their quality: select * from quality.bars_1m where symbol = 'BTC/USDT' and bucket >= ... and ok.
quality.calendar_closures: Holidays, early closes and other closures, in local wall-clock time: [closed_from, closed_to) is removed from the sessions.
quality.calendar_sessions: Weekly sessions in local time: open on weekday opens_dow (0 = Sunday) at opens_at, close on closes_dow at closes_at (a later weekday, or the same one; a session may span days, like the forex week).
quality.calendar_thin_hours: Daily local windows of open markets where silence is normal (the forex rollover): no data is expected there.
quality.calendars: Trading calendars: a local time zone, weekly sessions, thin hours and closures.
quality.daily_completeness: Per instrument and UTC day: minutes the calendar expected data, minutes with data, minutes lost in gaps (venue outage, our loss), completeness = 1 - lost / expected (null for a day with no data and no gap: nothing was observed), messages against the usual rate (message_coverage).
quality.daily_coverage: Per instrument and UTC day: open minutes expected by the calendar, minutes with data, messages and the messages the profile expected.
quality.daily_findings: Open findings per UTC day by instrument (or source), kind, label and severity, with the minutes they span.
quality.detectors: Registered detectors: fn(p_from, p_to, p_instruments) returns setof quality.finding_row; run by quality.run_detector().
quality.findings: Quality findings of every detector (gaps, spikes, anomalies): kind, label, severity, instrument, source, window, value, baseline, detail. A rerun updates; a finding not found again by a rerun over its window is resolved, not deleted.
quality.findings_by_instrument: Quality findings (gaps, spikes, anomalies) with venue and symbol; the spikes panel reads kind = spike.
quality.gap_ledger: The gap ledger with symbols: every disconnect, sequence break and hole found later, its state and the rows recovery brought back.
quality.gaps.rows_recovered: Rows the recovery brought back (new rows only).
quality.gaps: The gap ledger: a hole in a feed from gap_from to gap_to, how it was found, and what became of it.
quality.gaps_labelled: Gaps of the ledger with the instrument's symbol, a label (how it was detected: what became of it) and its length in seconds.
quality.instrument_calendars: Per-instrument calendar overrides (a German index, a metal with its own break).
quality.instrument_limits: Operator limits on sizes and volumes per instrument; where none is set, the detector uses a factor of the instrument's median.
quality.maintenance_windows: Venue maintenance and outages the venue announced, added by operators: a hole inside one is a venue outage, not our loss.
quality.open_findings: Findings not resolved by a later run, with venue and symbol.
quality.payload_shapes: Key sets and timestamp units seen in raw payloads per venue and stream (from samples of staging.frames); a new shape is a finding.
staging.frames: Raw venue payloads exactly as received (append-only), with their envelope.
staging.normalizers: Which normalizer function handles a venue's frames received in [valid_from, valid_to); a format change adds a version.
staging.quarantine: Payloads (or items of a payload) that could not be normalized, with the reason; never deleted by retention.
staging.tick_columns: Records of a landed tick file as columns (venue integers and decimals, file order), beside its frame (staging.frames, same frame_id).
-- privileges
column ops.batches.batch_id: tickflow_ingester SELECT
column ops.batches.normalize_error: tickflow_ingester UPDATE
function market.bbo_between(timestamp with time zone,timestamp with time zone,text[]): tickflow_analyst EXECUTE, tickflow_grafana EXECUTE, tickflow_worker EXECUTE
function ops.connection_events_over_time(timestamp with time zone,timestamp with time zone,bigint,text): tickflow_grafana EXECUTE, tickflow_worker EXECUTE
function ops.ingest_rate(timestamp with time zone,timestamp with time zone,bigint,text): tickflow_grafana EXECUTE, tickflow_worker EXECUTE
function ops.landing_latency(timestamp with time zone,timestamp with time zone,bigint): tickflow_grafana EXECUTE, tickflow_worker EXECUTE
function ops.record_events(jsonb): tickflow_ingester EXECUTE, tickflow_worker EXECUTE
function ops.request_bars_refresh(): tickflow_ingester EXECUTE, tickflow_worker EXECUTE
function ops.run_maintenance(): tickflow_worker EXECUTE
function staging.normalize_batch(uuid): tickflow_ingester EXECUTE, tickflow_worker EXECUTE
relation market.agg_trades: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.all_quotes: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bar_invalidations: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_15m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_15m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1d: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1d_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1h_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_1m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_4h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_4h_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_5m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bars_5m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.bbo: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.book: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.book_levels: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.book_snapshot_levels: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.book_snapshots: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.book_state: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.candles: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_15m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_1d: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_1h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_1m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_4h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.canonical_bars_5m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.index_values: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.instrument_source_ranks: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.instrument_sources: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.instruments: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.instruments_instrument_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation market.quote_bar_invalidations: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_15m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_15m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1d: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1d_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1h_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_1m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_4h: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_4h_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_5m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_bars_5m_data: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_block_ticks: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quote_blocks: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.quotes: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.symbols: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.sync_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation market.ticks: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.trades: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.venue_candles: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation market.venue_files: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.backfill_chunks: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.backfill_chunks_chunk_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation ops.backfill_plan_chunks: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.backfill_plans: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.backfill_plans_plan_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation ops.backfill_progress: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.batches: tickflow_ingester INSERT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.clickhouse_lag: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.clickhouse_watermarks: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.feed_status: tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.job_leases: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.paced_requests: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.pacing_rules: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.rate_limits: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.rate_state: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.rate_status: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.session_events: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.session_events_event_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation ops.sessions: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.settings: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.time_tables: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation ops.venues: tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.activity_profiles: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.alert_rules: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.asset_class_calendars: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.bar_quality_1m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.bars_1m: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.calendar_closures: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.calendar_sessions: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.calendar_thin_hours: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.calendars: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.daily_completeness: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.daily_coverage: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.daily_findings: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.detectors: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.findings: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.findings_by_instrument: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.findings_finding_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation quality.gap_ledger: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.gaps: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.gaps_gap_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation quality.gaps_labelled: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.instrument_calendars: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.instrument_limits: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.maintenance_windows: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.maintenance_windows_window_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation quality.open_findings: tickflow_analyst SELECT, tickflow_grafana SELECT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation quality.payload_shapes: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation staging.frame_id_seq: tickflow_ingester USAGE, tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation staging.frames: tickflow_ingester INSERT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation staging.normalizers: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation staging.quarantine: tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
relation staging.quarantine_quarantine_id_seq: tickflow_worker SELECT, tickflow_worker UPDATE, tickflow_worker USAGE
relation staging.tick_columns: tickflow_ingester INSERT, tickflow_worker DELETE, tickflow_worker INSERT, tickflow_worker SELECT, tickflow_worker UPDATE
schema market: tickflow_analyst USAGE, tickflow_grafana USAGE, tickflow_worker USAGE
schema ops: tickflow_grafana USAGE, tickflow_ingester USAGE, tickflow_worker USAGE
schema quality: tickflow_analyst USAGE, tickflow_grafana USAGE, tickflow_worker USAGE
schema staging: tickflow_ingester USAGE, tickflow_worker USAGE
function market.bbo_between(timestamp with time zone,timestamp with time zone,text[]): owner tickflow_worker
function ops.connection_events_over_time(timestamp with time zone,timestamp with time zone,bigint,text): owner tickflow_worker
function ops.ingest_rate(timestamp with time zone,timestamp with time zone,bigint,text): owner tickflow_worker
function ops.landing_latency(timestamp with time zone,timestamp with time zone,bigint): owner tickflow_worker
function ops.record_events(jsonb): owner tickflow_worker
function ops.request_bars_refresh(): owner tickflow_worker
function staging.normalize_batch(uuid): owner tickflow_worker
tickflow_grafana: statement_timeout=10s, default_transaction_read_only=on
