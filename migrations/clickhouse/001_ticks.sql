-- Raw detail shipped from Postgres (market.ticks, market.bbo, market.book_snapshot_levels) by the
-- clickhouse_sync job. Column names are those of the Postgres views, so a query reads the same on
-- both stores.
--
-- Keys: ORDER BY is the Postgres natural key (instrument_id, trade_id, traded_at), put in the
-- order that makes one instrument's time range one contiguous read. ReplacingMergeTree collapses
-- a row that arrives twice, but only when parts merge; the sync itself never lets a duplicate in
-- (it replays an unconfirmed batch with the same insert_deduplication_token), because the
-- materialized views that build bars see every inserted block, not the collapsed table.
--
-- Numbers: Decimal(38, 12) (Decimal128, 12 fractional digits, 26 integer digits) holds every
-- venue's prices and sizes exactly: Binance sends at most 8 decimals, OANDA 5, Dukascopy 3 to 5,
-- Polygon at most 10 in the captured payloads (aggregate volumes such as 323339.6922892879). The
-- sync refuses a value that needs more than 12 decimals rather than let ClickHouse truncate it. Scale 18 was rejected: ClickHouse does not
-- check Decimal128 overflow in multiplication, and price * size at scale 36 leaves 2 integer
-- digits, so every naive notional query would silently return garbage. At scale 12 the product
-- has scale 24 and 14 integer digits; bars compute notional in Decimal256.
--
-- Codecs: times are microsecond DateTime64 that grow within a key range (Delta + ZSTD; DoubleDelta
-- suits regular clocks, trades are irregular); ids grow by small steps (Delta + ZSTD); Decimal128
-- values share a large power-of-ten factor (GCD strips it) and vary little (ZSTD); LowCardinality
-- columns are dictionary-encoded already.
--
-- Retention: ticks (trades, quotes) expire after 90 days by default; `tickflow migrate` applies
-- the configured clickhouse.ticksTtlDays with ALTER TABLE ... MODIFY TTL. Rows older than the TTL
-- are dropped on insert, after the bar views have seen them, so backfilled history still makes
-- bars. Book snapshots expire after 30 days. Bars never expire.

CREATE TABLE IF NOT EXISTS trades
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    traded_at     DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    trade_id      String                            CODEC(ZSTD(3)),
    seq           Nullable(Int64)                   CODEC(Delta, ZSTD(3)),
    price         Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    size          Decimal(38, 12)                   CODEC(GCD, ZSTD(3)),
    side          Nullable(Enum8('buy' = 1, 'sell' = 2)) CODEC(ZSTD(3)),
    received_at   DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    source        LowCardinality(String),
    INDEX symbol_bloom symbol TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX venue_bloom venue TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(traded_at)
ORDER BY (instrument_id, traded_at, trade_id)
TTL toDateTime(traded_at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS quotes
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    quoted_at     DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    seq           Int64                             CODEC(Delta, ZSTD(3)),
    bid           Nullable(Decimal(38, 12))         CODEC(GCD, ZSTD(3)),
    bid_size      Nullable(Decimal(38, 12))         CODEC(GCD, ZSTD(3)),
    ask           Nullable(Decimal(38, 12))         CODEC(GCD, ZSTD(3)),
    ask_size      Nullable(Decimal(38, 12))         CODEC(GCD, ZSTD(3)),
    tradeable     Bool                              CODEC(ZSTD(1)),
    time_source   LowCardinality(String),
    received_at   DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    source        LowCardinality(String),
    -- As in market.bbo. mid keeps one more decimal than the quotes, so halving is exact.
    mid           Nullable(Decimal(38, 13)) ALIAS toDecimal128(bid + ask, 13) / 2,
    spread        Nullable(Decimal(38, 12)) ALIAS ask - bid,
    INDEX symbol_bloom symbol TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX venue_bloom venue TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(quoted_at)
ORDER BY (instrument_id, quoted_at, seq)
TTL toDateTime(quoted_at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS book_snapshots
(
    venue         LowCardinality(String),
    symbol        LowCardinality(String),
    instrument_id UInt32                            CODEC(T64, ZSTD(1)),
    taken_at      DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    update_id     Int64                             CODEC(Delta, ZSTD(3)),
    origin        LowCardinality(String),
    bid_prices    Array(Decimal(38, 12))            CODEC(ZSTD(3)),
    bid_sizes     Array(Decimal(38, 12))            CODEC(ZSTD(3)),
    ask_prices    Array(Decimal(38, 12))            CODEC(ZSTD(3)),
    ask_sizes     Array(Decimal(38, 12))            CODEC(ZSTD(3)),
    received_at   DateTime64(6, 'UTC')              CODEC(Delta, ZSTD(3)),
    INDEX symbol_bloom symbol TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX venue_bloom venue TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(taken_at)
ORDER BY (instrument_id, taken_at, update_id, origin)
TTL toDateTime(taken_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
