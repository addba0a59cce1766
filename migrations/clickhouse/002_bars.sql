-- OHLCV bars built inside ClickHouse from the trades the sync inserts, with the meaning of the
-- Postgres bars (market.bars_1m .. market.bars_1d): buckets aligned to UTC days (time_bucket's
-- origin, Monday 2000-01-03 00:00 UTC, gives the same edges for every width up to a day); open and
-- close are the first and last trade by (traded_at, seq with trades without one first, trade_id
-- in byte order), as market.trade_order_key() orders them; notional = sum(price * size) exactly
-- (Decimal256); vwap = notional / volume.
--
-- Three layers per timeframe:
--   bars_<tf>_state  AggregatingMergeTree of aggregate states. bars_1m_state is fed by a
--                    materialized view on trades, the others by materialized views on
--                    bars_1m_state that merge its states. States make the result independent of
--                    arrival order: a late trade adds its state to its bucket and the merged
--                    argMin/argMax still find the first and last trade. The order key is one
--                    String (big-endian time, seq flag and seq, then trade_id) because argMin over
--                    a Tuple with a String costs ten times more to merge.
--   bars_<tf>_data   the finished bars (plain Decimal columns), rewritten by the sync for exactly
--                    the buckets each batch touched (src/clickhouse/sync.ts, refreshBars), so that
--                    reading a year of 1-minute bars does not merge half a million states.
--   bars_<tf>        the view to query.
--
-- A materialized view sees each inserted block, so a block inserted twice would count twice: the
-- sync inserts every batch with an insert_deduplication_token and every state table keeps a
-- deduplication window, so a replayed batch is dropped at every level (and a level that missed it
-- in a crash gets it then).
--
-- vwap is Decimal(38, 18), truncated (ClickHouse Decimal division truncates). It is computed in
-- Int128 when notional < 1.7e8 (notional * 10^6 still fits) and in Decimal256 otherwise, because
-- Decimal128 division silently overflows and Decimal256 division costs about a microsecond.

CREATE TABLE IF NOT EXISTS bars_1m_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_5m_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_15m_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_1h_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_4h_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_1d_state
(
    instrument_id UInt32,
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                               CODEC(Delta, ZSTD(3)),
    open          AggregateFunction(argMin, Decimal(38, 12), String),
    high          SimpleAggregateFunction(max, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    low           SimpleAggregateFunction(min, Decimal(38, 12)) CODEC(GCD, ZSTD(3)),
    close         AggregateFunction(argMax, Decimal(38, 12), String),
    volume        SimpleAggregateFunction(sum, Decimal(38, 12)) CODEC(ZSTD(3)),
    notional      SimpleAggregateFunction(sum, Decimal(76, 24)) CODEC(ZSTD(3)),
    trades        SimpleAggregateFunction(sum, UInt64)          CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (instrument_id, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_1m_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE TABLE IF NOT EXISTS bars_5m_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYYYYMM(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE TABLE IF NOT EXISTS bars_15m_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYear(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE TABLE IF NOT EXISTS bars_1h_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYear(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE TABLE IF NOT EXISTS bars_4h_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYear(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE TABLE IF NOT EXISTS bars_1d_data
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    bucket        DateTime('UTC')                   CODEC(Delta, ZSTD(3)),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    open          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    high          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    low           Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    close         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    volume        Decimal(38, 12)                   CODEC(ZSTD(3)),
    vwap          Decimal(38, 18)                   CODEC(ZSTD(3)),
    trades        UInt64                            CODEC(T64, ZSTD(1)),
    notional      Decimal(76, 24)                   CODEC(ZSTD(3)),
    refreshed_at  DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(1)),
    INDEX instrument_minmax instrument_id TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(refreshed_at)
PARTITION BY toYear(bucket)
ORDER BY (venue, symbol, bucket, instrument_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_1m_mv TO bars_1m_state AS
SELECT
    t.instrument_id AS instrument_id,
    t.venue AS venue,
    t.symbol AS symbol,
    toStartOfMinute(t.traded_at) AS bucket,
    argMinState(t.price, concat(reverse(reinterpretAsFixedString(bitXor(reinterpretAsUInt64(toUnixTimestamp64Micro(t.traded_at)), 9223372036854775808))),
           if(t.seq IS NULL, '\0', concat('\x01', reverse(reinterpretAsFixedString(bitXor(reinterpretAsUInt64(assumeNotNull(t.seq)), 9223372036854775808))))),
           t.trade_id)) AS open,
    max(t.price) AS high,
    min(t.price) AS low,
    argMaxState(t.price, concat(reverse(reinterpretAsFixedString(bitXor(reinterpretAsUInt64(toUnixTimestamp64Micro(t.traded_at)), 9223372036854775808))),
           if(t.seq IS NULL, '\0', concat('\x01', reverse(reinterpretAsFixedString(bitXor(reinterpretAsUInt64(assumeNotNull(t.seq)), 9223372036854775808))))),
           t.trade_id)) AS close,
    sum(t.size) AS volume,
    sum(toDecimal256(t.price, 12) * t.size) AS notional,
    toUInt64(count()) AS trades
FROM trades AS t
GROUP BY instrument_id, venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_5m_mv TO bars_5m_state AS
SELECT
    m.instrument_id AS instrument_id,
    m.venue AS venue,
    m.symbol AS symbol,
    toStartOfInterval(m.bucket, INTERVAL 5 MINUTE) AS bucket,
    argMinMergeState(m.open) AS open,
    max(m.high) AS high,
    min(m.low) AS low,
    argMaxMergeState(m.close) AS close,
    sum(m.volume) AS volume,
    sum(m.notional) AS notional,
    sum(m.trades) AS trades
FROM bars_1m_state AS m
GROUP BY instrument_id, venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_15m_mv TO bars_15m_state AS
SELECT
    m.instrument_id AS instrument_id,
    m.venue AS venue,
    m.symbol AS symbol,
    toStartOfInterval(m.bucket, INTERVAL 15 MINUTE) AS bucket,
    argMinMergeState(m.open) AS open,
    max(m.high) AS high,
    min(m.low) AS low,
    argMaxMergeState(m.close) AS close,
    sum(m.volume) AS volume,
    sum(m.notional) AS notional,
    sum(m.trades) AS trades
FROM bars_1m_state AS m
GROUP BY instrument_id, venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_1h_mv TO bars_1h_state AS
SELECT
    m.instrument_id AS instrument_id,
    m.venue AS venue,
    m.symbol AS symbol,
    toStartOfInterval(m.bucket, INTERVAL 1 HOUR) AS bucket,
    argMinMergeState(m.open) AS open,
    max(m.high) AS high,
    min(m.low) AS low,
    argMaxMergeState(m.close) AS close,
    sum(m.volume) AS volume,
    sum(m.notional) AS notional,
    sum(m.trades) AS trades
FROM bars_1m_state AS m
GROUP BY instrument_id, venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_4h_mv TO bars_4h_state AS
SELECT
    m.instrument_id AS instrument_id,
    m.venue AS venue,
    m.symbol AS symbol,
    toStartOfInterval(m.bucket, INTERVAL 4 HOUR) AS bucket,
    argMinMergeState(m.open) AS open,
    max(m.high) AS high,
    min(m.low) AS low,
    argMaxMergeState(m.close) AS close,
    sum(m.volume) AS volume,
    sum(m.notional) AS notional,
    sum(m.trades) AS trades
FROM bars_1m_state AS m
GROUP BY instrument_id, venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bars_1d_mv TO bars_1d_state AS
SELECT
    m.instrument_id AS instrument_id,
    m.venue AS venue,
    m.symbol AS symbol,
    toStartOfInterval(m.bucket, INTERVAL 1 DAY) AS bucket,
    argMinMergeState(m.open) AS open,
    max(m.high) AS high,
    min(m.low) AS low,
    argMaxMergeState(m.close) AS close,
    sum(m.volume) AS volume,
    sum(m.notional) AS notional,
    sum(m.trades) AS trades
FROM bars_1m_state AS m
GROUP BY instrument_id, venue, symbol, bucket;

CREATE VIEW IF NOT EXISTS bars_1m AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_1m_data FINAL;

CREATE VIEW IF NOT EXISTS bars_5m AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_5m_data FINAL;

CREATE VIEW IF NOT EXISTS bars_15m AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_15m_data FINAL;

CREATE VIEW IF NOT EXISTS bars_1h AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_1h_data FINAL;

CREATE VIEW IF NOT EXISTS bars_4h AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_4h_data FINAL;

CREATE VIEW IF NOT EXISTS bars_1d AS
SELECT venue, symbol, instrument_id, bucket, open, high, low, close, volume, vwap, trades, notional
FROM bars_1d_data FINAL;
