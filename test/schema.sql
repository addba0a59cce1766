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
  constraint agg_trades_side_check: CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text])))
  CREATE INDEX agg_trades_instrument_time_idx ON market.agg_trades USING btree (instrument_id, traded_at)
  CREATE UNIQUE INDEX agg_trades_pkey ON market.agg_trades USING btree (instrument_id, agg_id, traded_at)
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
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_15m_data b
     JOIN market.instruments i USING (instrument_id);
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
  constraint bars_15m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_15m_data_pkey ON market.bars_15m_data USING btree (instrument_id, bucket)
-- view market.bars_1d
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_1d_data b
     JOIN market.instruments i USING (instrument_id);
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
  constraint bars_1d_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1d_data_pkey ON market.bars_1d_data USING btree (instrument_id, bucket)
-- view market.bars_1h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_1h_data b
     JOIN market.instruments i USING (instrument_id);
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
  constraint bars_1h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1h_data_pkey ON market.bars_1h_data USING btree (instrument_id, bucket)
-- view market.bars_1m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_1m_data b
     JOIN market.instruments i USING (instrument_id);
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
  constraint bars_1m_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_1m_data_pkey ON market.bars_1m_data USING btree (instrument_id, bucket)
-- view market.bars_4h
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_4h_data b
     JOIN market.instruments i USING (instrument_id);
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
  constraint bars_4h_data_pkey: PRIMARY KEY (instrument_id, bucket)
  CREATE UNIQUE INDEX bars_4h_data_pkey ON market.bars_4h_data USING btree (instrument_id, bucket)
-- view market.bars_5m
SELECT i.venue,
    i.symbol,
    b.instrument_id,
    b.bucket,
    trim_scale(b.open) AS open,
    trim_scale(b.high) AS high,
    trim_scale(b.low) AS low,
    trim_scale(b.close) AS close,
    trim_scale(b.volume) AS volume,
    trim_scale(b.notional / b.volume) AS vwap,
    b.trades
   FROM market.bars_5m_data b
     JOIN market.instruments i USING (instrument_id);
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
   FROM market.quotes q
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
  constraint book_levels_side_check: CHECK ((side = ANY (ARRAY['bid'::text, 'ask'::text])))
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
            b.slots >= market.coverage_slots('00:15:00'::interval) AS complete
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
            true
           FROM market.bars_15m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
            b.slots >= market.coverage_slots('1 day'::interval) AS complete
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
            true
           FROM market.bars_1d_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
            b.slots >= market.coverage_slots('01:00:00'::interval) AS complete
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
            true
           FROM market.bars_1h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
            b.slots >= market.coverage_slots('00:01:00'::interval) AS complete
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
            true
           FROM market.bars_1m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
            b.slots >= market.coverage_slots('04:00:00'::interval) AS complete
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
            true
           FROM market.bars_4h_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
            b.slots >= market.coverage_slots('00:05:00'::interval) AS complete
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
            true
           FROM market.bars_5m_data b
             JOIN market.instrument_source_ranks r ON r.instrument_id = b.instrument_id AND NOT r.quote_priced) c
  ORDER BY symbol, bucket, complete DESC, (
        CASE
            WHEN complete THEN priority
            ELSE NULL::integer
        END), coverage DESC NULLS LAST, priority;
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
          WHERE g.venue = l.venue AND (g.stream = l.feed OR g.stream ~~ (l.feed || ':%'::text)) AND (g.state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text]))))::integer AS open_gaps,
    (( SELECT count(*) AS count
           FROM staging.quarantine q
          WHERE q.venue = l.venue))::integer AS quarantined
   FROM latest l
     LEFT JOIN last_event e USING (feed)
     LEFT JOIN traffic t USING (feed)
     LEFT JOIN last_frame lf USING (feed);
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
-- view quality.gap_ledger
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
  constraint gaps_detected_by_check: CHECK ((detected_by = ANY (ARRAY['disconnect'::text, 'sequence_break'::text, 'book_break'::text, 'scan'::text, 'stale'::text])))
  constraint gaps_pkey: PRIMARY KEY (gap_id)
  constraint gaps_state_check: CHECK ((state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text, 'recovered'::text, 'unrecoverable'::text, 'venue_outage'::text, 'market_closed'::text])))
  CREATE INDEX gaps_open_idx ON quality.gaps USING btree (venue, stream, gap_from) WHERE (state = ANY (ARRAY['detected'::text, 'queued'::text, 'recovering'::text]))
  CREATE UNIQUE INDEX gaps_pkey ON quality.gaps USING btree (gap_id)
-- sequence quality.gaps_gap_id_seq
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
      insert into market.bars_1m_data (instrument_id, bucket, open, high, low, close, volume, notional, trades)
      select t.instrument_id, market.bar_bucket(interval '1 minute', t.traded_at),
             (array_agg(t.price order by market.trade_order_key(t.traded_at, t.seq, t.trade_id)))[1],
             max(t.price), min(t.price),
             (array_agg(t.price order by market.trade_order_key(t.traded_at, t.seq, t.trade_id) desc))[1],
             sum(t.size), sum(t.price * t.size), count(*)
      from unnest(v_instruments, v_from, v_to) as r(instrument_id, range_from, range_to)
      join market.trades t on t.instrument_id = r.instrument_id and t.traded_at >= r.range_from and t.traded_at < r.range_to
      group by 1, 2;
    else
      execute format('insert into market.%I (instrument_id, bucket, open, high, low, close, volume, notional, trades) '
                     'select s.instrument_id, market.bar_bucket($4, s.bucket), '
                     '(array_agg(s.open order by s.bucket))[1], max(s.high), min(s.low), '
                     '(array_agg(s.close order by s.bucket desc))[1], sum(s.volume), sum(s.notional), sum(s.trades) '
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
      join market.quotes q on q.instrument_id = r.instrument_id and q.quoted_at >= r.range_from and q.quoted_at < r.range_to
      where q.tradeable and q.bid is not null and q.ask is not null
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
  select distinct 'dukascopy', x.s, c.symbol, c.base, c.quote, c.asset_class
  from (
    select substring(f.payload from '^\{"instrument":"([A-Z0-9][A-Z0-9._-]{0,39})"') as s
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'dukascopy' and f.received_at >= p_from and f.received_at < p_to
  ) x
  cross join lateral market.dukascopy_symbol(x.s) c
  where x.s is not null
    and not exists (select 1 from market.instruments i where i.venue = 'dukascopy' and i.venue_symbol = x.s)
  on conflict (venue, venue_symbol) do nothing
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
  where b.sync_xid >= pg_snapshot_xmin(p_shipped)
    and b.sync_xid < pg_snapshot_xmax(p_target)
    and (b.sync_xid, b.sync_id) > (p_after_xid, p_after_id)
    and (p_upto_xid is null or (b.sync_xid, b.sync_id) <= (p_upto_xid, p_upto_id))
    and pg_visible_in_snapshot(b.sync_xid, p_target)
    and not pg_visible_in_snapshot(b.sync_xid, p_shipped)
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
    select t.sync_xid, t.sync_id, t.received_at from market.trades t, w
    where p_stream = 'trades' and t.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
    union all
    select q.sync_xid, q.sync_id, q.received_at from market.quotes q, w
    where p_stream = 'quotes' and q.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
    union all
    select b.sync_xid, b.sync_id, b.received_at from market.book_snapshots b, w
    where p_stream = 'book_snapshots' and b.sync_xid >= pg_snapshot_xmin(w.shipped_snapshot)
  )
  select count(*), min(k.received_at)
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
  select q.sync_xid, q.sync_id,
         coalesce(q.bid = trunc(q.bid, 12), true) and coalesce(q.bid_size = trunc(q.bid_size, 12), true)
           and coalesce(q.ask = trunc(q.ask, 12), true) and coalesce(q.ask_size = trunc(q.ask_size, 12), true),
         i.venue, i.symbol, q.instrument_id,
         to_char(q.quoted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
         q.seq, q.bid, q.bid_size, q.ask, q.ask_size, q.tradeable, q.time_source,
         to_char(q.received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), q.source
  from market.quotes q
  join market.instruments i on i.instrument_id = q.instrument_id
  where q.sync_xid >= pg_snapshot_xmin(p_shipped)
    and q.sync_xid < pg_snapshot_xmax(p_target)
    and (q.sync_xid, q.sync_id) > (p_after_xid, p_after_id)
    and (p_upto_xid is null or (q.sync_xid, q.sync_id) <= (p_upto_xid, p_upto_id))
    and pg_visible_in_snapshot(q.sync_xid, p_target)
    and not pg_visible_in_snapshot(q.sync_xid, p_shipped)
  order by q.sync_xid, q.sync_id
  limit p_limit
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
  where t.sync_xid >= pg_snapshot_xmin(p_shipped)
    and t.sync_xid < pg_snapshot_xmax(p_target)
    and (t.sync_xid, t.sync_id) > (p_after_xid, p_after_id)
    and (p_upto_xid is null or (t.sync_xid, t.sync_id) <= (p_upto_xid, p_upto_id))
    and pg_visible_in_snapshot(t.sync_xid, p_target)
    and not pg_visible_in_snapshot(t.sync_xid, p_shipped)
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
CREATE OR REPLACE FUNCTION ops.record_events(p_events jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
begin
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

  -- A disconnect opens a gap for the feed from its last frame; the next session's first data closes it.
  insert into quality.gaps (venue, stream, gap_from, detected_by, session_id, detail)
  select e->>'venue', e->>'feed', coalesce((e->'detail'->>'lastFrameAt')::timestamptz, (e->>'at')::timestamptz),
         'disconnect', (e->>'sessionId')::uuid, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'disconnected' and coalesce((e->'detail'->>'hadData')::boolean, false)
    and coalesce(e->'detail'->>'reason', '') <> 'rotated' and coalesce(e->'detail'->>'reason', '') <> 'shutdown';

  -- A diff that does not continue the book: the ingester resynchronizes from a new snapshot.
  insert into quality.gaps (venue, stream, gap_from, gap_to, detected_by, session_id, from_seq, to_seq, detail)
  select e->>'venue', e->>'feed' || ':' || coalesce(e->'detail'->>'key', ''), (e->>'at')::timestamptz,
         (e->>'at')::timestamptz, 'sequence_break', (e->>'sessionId')::uuid,
         (e->'detail'->>'expectedFrom')::bigint, (e->'detail'->>'receivedFirst')::bigint - 1, coalesce(e->'detail', '{}')
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'sequence_break';

  update quality.gaps g set gap_to = (e->'detail'->>'firstFrameAt')::timestamptz, updated_at = now()
  from jsonb_array_elements(p_events) e
  where e->>'kind' = 'subscribed' and e->'detail' ? 'firstFrameAt'
    and g.venue = e->>'venue' and g.stream = e->>'feed' and g.detected_by = 'disconnect' and g.gap_to is null
    and g.gap_from <= (e->'detail'->>'firstFrameAt')::timestamptz;
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
    v_dropped := v_dropped + ops.drop_partitions_before('market.trades', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.quotes', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.book_snapshots', now() - v_ticks);
    delete from staging.frames_default where received_at < now() - v_staging;
  end if;
  delete from ops.batches where landed_at < now() - v_staging and normalized_at is not null;
  return jsonb_build_object('partitions_created', v_created, 'partitions_dropped', v_dropped);
end
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
  join quality.gap_ledger g on g.gap_from < k.bucket_to and coalesce(g.gap_to, now()) >= k.bucket_from
  where g.gap_from < p_to and coalesce(g.gap_to, 'infinity') >= p_from
  group by 1, 2
  order by 1, 2
$function$
CREATE OR REPLACE FUNCTION staging.binance_frames(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_stream text)
 RETURNS TABLE(frame_id bigint, batch_id uuid, venue text, stream text, received_at timestamp with time zone, source text, payload text, d jsonb)
 LANGUAGE sql
 STABLE
AS $function$
  -- Each payload is validated once and parsed once (materialized), however often d is used.
  with v as materialized (
    select f.frame_id, f.batch_id, f.venue, f.stream, f.received_at, f.source, f.payload,
           pg_input_is_valid(f.payload, 'jsonb') as ok
    from staging.frames f
    where f.batch_id = p_batch and f.venue = 'binance' and f.stream = p_stream
      and f.received_at >= p_from and f.received_at < p_to
  ), j as materialized (
    select v.*, case when v.ok then v.payload::jsonb end as j from v
  )
  select frame_id, batch_id, venue, stream, received_at, source, payload, coalesce(j -> 'data', j) from j
$function$
CREATE OR REPLACE FUNCTION staging.dukascopy_files(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone, p_streams text[])
 RETURNS TABLE(frame_id bigint, batch_id uuid, stream text, received_at timestamp with time zone, source text, payload text, d jsonb, instrument_id integer, start_at timestamp with time zone, point numeric, scale integer, problem text)
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
                         else 'year' end as period
    from f
  )
  select s.frame_id, s.batch_id, s.stream, s.received_at, s.source, s.payload, s.d, i.instrument_id, s.start_at,
         case when staging.is_int(s.d->'point') then (s.d->>'point')::numeric end,
         length(s.d->>'point') - 1,
         case
           when s.d is null then 'payload is not valid JSON'
           when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
           when s.d->>'format' is distinct from case when s.stream = 'ticks' then 'bi5-ticks-v1' else 'bi5-candles-v1' end
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
           when s.request is distinct from staging.dukascopy_path(s.d->>'instrument', s.stream, s.d->>'side', s.start_at)
             then 'request ' || coalesce(s.request, '(none)') || ' is not the file of ' || (s.d->>'instrument') || ' from '
                  || (s.d->>'start') || ' (expected ' || staging.dukascopy_path(s.d->>'instrument', s.stream, s.d->>'side', s.start_at)
                  || ', month 0-based)'
           when jsonb_typeof(s.d->'records') is distinct from 'array' then 'records is not an array'
         end
  from s
  left join market.instruments i on i.venue = 'dukascopy' and i.venue_symbol = s.d->>'instrument'
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
  select timestamptz '1970-01-01 00:00:00+00' + p_ms * interval '1 millisecond'
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
begin
  for v_norm in
    select n.fn, n.valid_from, n.valid_to
    from staging.normalizers n
    where exists (select 1 from staging.frames f
                  where f.batch_id = p_batch and f.venue = n.venue
                    and f.received_at >= n.valid_from and f.received_at < n.valid_to)
    order by n.venue, n.valid_from
  loop
    execute format('select %s($1, $2, $3)', v_norm.fn::regproc) into v_part
      using p_batch, v_norm.valid_from, v_norm.valid_to;
    v_counts := staging.merge_counts(v_counts, v_part);
  end loop;
  -- Frames of a venue that no normalizer covers are kept and quarantined, never dropped.
  perform staging.quarantine(f.frame_id, -1, 'no normalizer for venue ' || f.venue || ' at ' || f.received_at, 'normalize_batch')
  from staging.frames f
  where f.batch_id = p_batch
    and not exists (select 1 from staging.normalizers n where n.venue = f.venue
                    and f.received_at >= n.valid_from and f.received_at < n.valid_to);
  update ops.batches set normalized_at = now(), normalize_error = null, counts = v_counts where batch_id = p_batch;
  return v_counts;
end
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_agg_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with src as materialized (
    select f.*, case when staging.is_int(f.d->'T') then staging.epoch_ms((f.d->>'T')::bigint) end as event_at
    from staging.binance_frames(p_batch, p_from, p_to, 'aggTrade') f
  ), registered as (
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'binance', n.s, c.symbol, c.base, c.quote, 'crypto'
    from (select distinct src.d->>'s' as s from src where src.d->>'s' ~ '^[A-Za-z0-9]{2,30}$') n
    cross join lateral market.binance_symbol(n.s) c
    where not exists (select 1 from market.instruments i where i.venue = 'binance' and i.venue_symbol = n.s)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol
  ), instruments as (
    select instrument_id, venue_symbol from market.instruments where venue = 'binance'
    union all
    select instrument_id, venue_symbol from registered
  ), checked as materialized (
    select s.*, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'aggTrade' then 'expected event e=aggTrade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when not (staging.is_int(s.d->'a') and staging.is_int(s.d->'f') and staging.is_int(s.d->'l'))
          then 'ids a, f, l are not integers that fit 64 bits'
        when not staging.is_decimal(s.d->>'p') or (s.d->>'p')::numeric = 0 then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when not staging.is_decimal(s.d->>'q') or (s.d->>'q')::numeric = 0 then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when not staging.is_int(s.d->'T') then 'trade time T is not an integer of milliseconds'
        when jsonb_typeof(s.d->'m') is distinct from 'boolean' then 'maker flag m is not a boolean'
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source, frame_id)
    select c.instrument_id, c.event_at, (c.d->>'a')::bigint, (c.d->>'f')::bigint,
           (c.d->>'l')::bigint, (c.d->>'p')::numeric, (c.d->>'q')::numeric,
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
      and f.stream not in ('trade', 'aggTrade', 'bookTicker', 'depth', 'depth_snapshot')
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select jsonb_build_object('quarantined', (select count(*) from q))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_binance_quotes_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  -- Spot bookTicker carries no event time, so quoted_at is the receive time and the update id u
  -- is the identity: a quote seen by two overlapping connections is kept once.
  with src as materialized (
    select f.*, case when staging.is_int(f.d->'T') then staging.epoch_ms((f.d->>'T')::bigint) end as event_at,
           case when staging.is_int(f.d->'u') then (f.d->>'u')::bigint end as u,
           case when jsonb_typeof(f.d->'b') = 'string' then staging.positive_decimal(f.d->>'b') end as bid,
           case when jsonb_typeof(f.d->'a') = 'string' then staging.positive_decimal(f.d->>'a') end as ask,
           case when jsonb_typeof(f.d->'B') = 'string' then staging.nonnegative_decimal(f.d->>'B') end as bid_size,
           case when jsonb_typeof(f.d->'A') = 'string' then staging.nonnegative_decimal(f.d->>'A') end as ask_size
    from staging.binance_frames(p_batch, p_from, p_to, 'bookTicker') f
  ), registered as (
    -- Symbols seen for the first time become instruments (canonical form from the venue symbol).
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'binance', n.s, c.symbol, c.base, c.quote, 'crypto'
    from (select distinct src.d->>'s' as s from src where src.d->>'s' ~ '^[A-Za-z0-9]{2,30}$') n
    cross join lateral market.binance_symbol(n.s) c
    where not exists (select 1 from market.instruments i where i.venue = 'binance' and i.venue_symbol = n.s)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol
  ), instruments as (
    select instrument_id, venue_symbol from market.instruments where venue = 'binance'
    union all
    select instrument_id, venue_symbol from registered
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
        when s.bid is null or s.ask is null then 'bid b or ask a is not a positive decimal string'
        when s.bid_size is null or s.ask_size is null then 'bid size B or ask size A is not a decimal string'
        when s.d ? 'T' and s.event_at is null then 'transaction time T is not an integer of milliseconds'
        when s.event_at is not null then staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select distinct on (n.instrument_id, n.u)
           n.instrument_id, n.quoted_at, n.u, n.bid, n.bid_size, n.ask, n.ask_size, n.time_source, n.received_at,
           n.source, n.frame_id
    from checked n
    where n.problem is null
      and (n.time_source = 'venue'
       -- "+ interval '0'" keeps the planner on the (instrument_id, seq, ...) key, not the time index.
       or not exists (select 1 from market.quotes q
                      where q.instrument_id = n.instrument_id and q.seq = n.u
                        and q.quoted_at + interval '0' between n.quoted_at - interval '2 minutes'
                                                           and n.quoted_at + interval '2 minutes'))
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
CREATE OR REPLACE FUNCTION staging.normalize_binance_trades_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with src as materialized (
    select f.*, case when staging.is_int(f.d->'T') then staging.epoch_ms((f.d->>'T')::bigint) end as event_at,
           case when jsonb_typeof(f.d->'p') = 'string' then staging.positive_decimal(f.d->>'p') end as price,
           case when jsonb_typeof(f.d->'q') = 'string' then staging.positive_decimal(f.d->>'q') end as size
    from staging.binance_frames(p_batch, p_from, p_to, 'trade') f
  ), registered as (
    -- Symbols seen for the first time become instruments (canonical form from the venue symbol).
    insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
    select 'binance', n.s, c.symbol, c.base, c.quote, 'crypto'
    from (select distinct src.d->>'s' as s from src where src.d->>'s' ~ '^[A-Za-z0-9]{2,30}$') n
    cross join lateral market.binance_symbol(n.s) c
    where not exists (select 1 from market.instruments i where i.venue = 'binance' and i.venue_symbol = n.s)
    on conflict (venue, venue_symbol) do nothing
    returning instrument_id, venue_symbol
  ), instruments as (
    select instrument_id, venue_symbol from market.instruments where venue = 'binance'
    union all
    select instrument_id, venue_symbol from registered
  ), checked as materialized (
    select s.*, i.instrument_id,
      case
        when s.d is null then 'payload is not valid JSON'
        when jsonb_typeof(s.d) <> 'object' then 'expected a JSON object, received ' || jsonb_typeof(s.d)
        when s.d->>'e' is distinct from 'trade' then 'expected event e=trade, received e=' || coalesce(s.d->>'e', '(none)')
        when i.instrument_id is null then 'missing or unknown symbol s=' || coalesce(s.d->>'s', '(none)')
        when not staging.is_int(s.d->'t') then 'trade id t is not an integer that fits 64 bits: ' || coalesce((s.d->'t')::text, '(none)')
        when s.price is null then 'price p is not a positive decimal string: ' || coalesce((s.d->'p')::text, '(none)')
        when s.size is null then 'size q is not a positive decimal string: ' || coalesce((s.d->'q')::text, '(none)')
        when not staging.is_int(s.d->'T') then 'trade time T is not an integer of milliseconds: ' || coalesce((s.d->'T')::text, '(none)')
        when jsonb_typeof(s.d->'m') is distinct from 'boolean' then 'maker flag m is not a boolean: ' || coalesce((s.d->'m')::text, '(none)')
        else staging.time_problem(s.event_at, s.received_at)
      end as problem
    from src s
    left join instruments i on i.venue_symbol = s.d->>'s'
  ), ins as (
    insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source, frame_id)
    select c.instrument_id, c.event_at, c.d->>'t', (c.d->>'t')::bigint, c.price, c.size,
           case when (c.d->>'m')::boolean then 'sell' else 'buy' end,
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
  if 'trade' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_trades_v1(p_batch, p_from, p_to));
  end if;
  if 'aggTrade' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_agg_trades_v1(p_batch, p_from, p_to));
  end if;
  if 'bookTicker' = any (v_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_quotes_v1(p_batch, p_from, p_to));
  end if;
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
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source, f.timeframe, f.step,
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
    -- key was there before this statement, to count inserts apart from replacements.
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
           round((g.r->>1)::numeric / g.point, g.scale), round((g.r->>4)::numeric / g.point, g.scale),
           round((g.r->>3)::numeric / g.point, g.scale), round((g.r->>2)::numeric / g.point, g.scale),
           trim_scale((g.r->>5)::numeric * 1000000), 'quoted_size',
           g.bucket + g.step * interval '1 second' <= g.received_at,
           g.source, g.received_at, g.frame_id
    from good g
    on conflict (instrument_id, timeframe, price_side, bucket) do update
      set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, volume_kind = excluded.volume_kind, complete = excluded.complete,
          source = excluded.source, received_at = excluded.received_at, frame_id = excluded.frame_id
      where not c.complete
    returning c.instrument_id, c.timeframe, c.price_side, c.bucket
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
    'candles', (select count(*) from ups u join good g on g.instrument_id = u.instrument_id and g.timeframe = u.timeframe
                                                        and g.side = u.price_side and g.bucket = u.bucket
                where not g.existed),
    'candles_updated', (select count(*) from ups u join good g on g.instrument_id = u.instrument_id and g.timeframe = u.timeframe
                                                                and g.side = u.price_side and g.bucket = u.bucket
                        where g.existed),
    'candles_duplicate', (select count(*) from items where problem is null) - (select count(*) from ups),
    'quarantined', (select count(*) from bad))
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
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_ticks_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
AS $function$
  with files as materialized (
    select * from staging.dukascopy_files(p_batch, p_from, p_to, array['ticks'])
  ), items as materialized (
    select f.frame_id, f.instrument_id, f.start_at, f.point, f.scale, f.received_at, f.source, (e.n - 1)::integer as item,
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
    where f.problem is null
  ), ranked as materialized (
    select i.*, (i.r->>0)::bigint as ms,
           row_number() over (partition by i.frame_id, (i.r->>0)::bigint order by i.item) - 1 as k
    from items i
    where i.problem is null
  ), ins as (
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at,
                               source, frame_id)
    select r.instrument_id, r.start_at + r.ms * interval '1 millisecond',
           staging.epoch_us_of(r.start_at) + r.ms * 1000 + r.k,
           round((r.r->>2)::numeric / r.point, r.scale), trim_scale((r.r->>4)::numeric * 1000000),
           round((r.r->>1)::numeric / r.point, r.scale), trim_scale((r.r->>3)::numeric * 1000000),
           'venue', r.received_at, r.source, r.frame_id
    from ranked r
    where r.k < 1000
    on conflict do nothing
    returning 1
  ), bad as (
    select frame_id, -1 as item, problem, payload from files where problem is not null
    union all
    select frame_id, item, problem, r::text from items where problem is not null
    union all
    select frame_id, item, 'more than 1000 ticks in millisecond ' || ms || ' of the hour', r::text from ranked where k >= 1000
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
    'quotes', (select count(*) from ins),
    'quotes_duplicate', (select count(*) from ranked where k < 1000) - (select count(*) from ins),
    'quarantined', (select count(*) from bad))
$function$
CREATE OR REPLACE FUNCTION staging.normalize_dukascopy_v1(p_batch uuid, p_from timestamp with time zone, p_to timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_counts jsonb := '{}';
begin
  perform market.register_dukascopy_instruments(p_batch, p_from, p_to);
  v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_ticks_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_candles_v1(p_batch, p_from, p_to));
  v_counts := staging.merge_counts(v_counts, staging.normalize_dukascopy_other_v1(p_batch, p_from, p_to));
  return v_counts;
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
    on conflict (venue, venue_symbol) do nothing
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
    returning c.instrument_id, c.timeframe, c.price_side, c.bucket
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
    'candles', (select count(*) from ups u join good g on g.instrument_id = u.instrument_id and g.timeframe = u.timeframe
                                                        and g.side = u.price_side and g.bucket = u.bucket
                where not g.existed),
    'candles_updated', (select count(*) from ups u join good g on g.instrument_id = u.instrument_id and g.timeframe = u.timeframe
                                                                and g.side = u.price_side and g.bucket = u.bucket
                        where g.existed),
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
    on conflict (venue, venue_symbol) do nothing
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
  select case
    when p_text ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$'
         and pg_input_is_valid(left(p_text, 19) || '+00', 'timestamptz')
      then (left(p_text, 19) || coalesce(left(substring(p_text from '\.[0-9]+'), 7), '') || '+00')::timestamptz
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
market.bars_15m: 15-minute OHLCV bars (built from 5-minute bars); columns as market.bars_1m.
market.bars_15m_data: 15-minute bars (private); read market.bars_15m or market.bars().
market.bars_1d: 1-day OHLCV bars (UTC days, built from 4-hour bars); columns as market.bars_1m.
market.bars_1d_data: 1-day bars (private); read market.bars_1d or market.bars().
market.bars_1h: 1-hour OHLCV bars (built from 15-minute bars); columns as market.bars_1m.
market.bars_1h_data: 1-hour bars (private); read market.bars_1h or market.bars().
market.bars_1m: 1-minute OHLCV bars from trades: open/close = first/last trade by (traded_at, seq, trade_id), volume = sum of sizes, vwap = sum(price*size)/volume.
market.bars_1m_data: 1-minute bars (private); read market.bars_1m or market.bars().
market.bars_4h: 4-hour OHLCV bars (built from 1-hour bars, aligned to 00:00 UTC); columns as market.bars_1m.
market.bars_4h_data: 4-hour bars (private); read market.bars_4h or market.bars().
market.bars_5m: 5-minute OHLCV bars (built from 1-minute bars); columns as market.bars_1m.
market.bars_5m_data: 5-minute bars (private); read market.bars_5m or market.bars().
market.bbo: Best bid and offer with mid and spread; time_source says whether quoted_at is the venue's time.
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
ops.batches: One row per landed batch; a batch id that exists was committed (retries after a lost ack are detected by it).
ops.clickhouse_lag: ClickHouse sync lag per stream: rows not yet in ClickHouse, seconds since the moment up to which ClickHouse is complete (0 when nothing waits), counters and the last error.
ops.clickhouse_watermarks: ClickHouse sync position per stream: every row visible in shipped_snapshot (taken at shipped_snapshot_at) is in ClickHouse; while a newer target_snapshot is drained, so are its new rows up to (cursor_xid, cursor_id); a batch up to (pending_xid, pending_id) may be in ClickHouse and is replayed with pending_token (its insert deduplication token) before anything else. Read ops.clickhouse_lag.
ops.feed_status: Per feed: connection state, messages per second over the last minute, last message age, open gaps, quarantined payloads.
ops.session_events: Connection lifecycle as data: connects, subscription acks, error frames, disconnects with reason.
ops.sessions: One row per connection attempt of a live feed, from connect to close with its reason.
ops.settings: Runtime settings kept in the database (retention, thresholds); changed with ops.set_setting().
ops.venues: Venues that have had a live session (the venue variable of the ingestion dashboard).
quality.gap_ledger: The gap ledger with the instrument's symbol, a label (how it was detected: what became of it) and its length in seconds.
quality.gaps: The gap ledger: a hole in a feed from gap_from to gap_to, how it was found, and what became of it.
staging.frames: Raw venue payloads exactly as received (append-only), with their envelope.
staging.normalizers: Which normalizer function handles a venue's frames received in [valid_from, valid_to); a format change adds a version.
staging.quarantine: Payloads (or items of a payload) that could not be normalized, with the reason; never deleted by retention.
