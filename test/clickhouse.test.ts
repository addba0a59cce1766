import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { clickhouseOptions, openClickHouse, type ClickHouse, type ClickHouseOptions } from '../src/clickhouse/client.ts';
import { clickhouseMigrations, migrateClickHouse } from '../src/clickhouse/migrate.ts';
import { registerSyncRuntime, startClickHouseService, syncClickHouse, type SyncRuntime } from '../src/clickhouse/sync.ts';
import clickhouseSyncTask from '../jobs/clickhouse_sync.ts';
import { exportToFile } from '../src/clickhouse/export.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { FakeClickHouse } from './fakes/clickhouse-http.ts';
import { fxClosed, syntheticFile, tickPath } from './fakes/dukascopy.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { dukascopyFrame } from '../ingesters/dukascopy/land.ts';

/**
 * Runs twice (vitest.config.ts): on the engine in-process (chdb, the embedded default), and with
 * TICKFLOW_TEST_CLICKHOUSE=server through CLICKHOUSE_URL and @clickhouse/client over HTTP, to a
 * local ClickHouse HTTP interface answered by the same engine (test/fakes/clickhouse-http.ts).
 */
const SERVER = process.env.TICKFLOW_TEST_CLICKHOUSE === 'server';
const SERVER_USER = 'tickflow';
const SERVER_PASSWORD = 'ch-secret: p@ss/word';
let server: FakeClickHouse | undefined;
let clickhouseUrl: string | undefined;

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'clickhouse-child.ts');
const log = createLogger({ level: 'warn' });

let db: TestDatabase;
let dataDir: string;
let config: Config;
let options: ClickHouseOptions;
let ch: ClickHouse;
let rt: SyncRuntime;
let ids: { btc: number; eth: number; eur: number };

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MINUTE = 60_000;
/** Two days ago, on a day boundary: every bar of the fixtures is well inside the ticks TTL. */
const BASE = Math.floor((Date.now() - 2 * 86_400_000) / 86_400_000) * 86_400_000;

function utc(ms: number, micros = 0): string {
  return `${new Date(ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}+00`;
}

interface TradeRow {
  instrument_id: number;
  traded_at: string;
  trade_id: string;
  seq: string | null;
  price: string;
  size: string;
  side: string | null;
}

let tradeCounter = 0;

/** n trades per instrument over `minutes` minutes from `from`, prices on the venue's tick. */
function makeTrades(seed: number, from: number, minutes: number, n: number): TradeRow[] {
  const rnd = random(seed);
  const rows: TradeRow[] = [];
  const specs = [
    { id: ids.btc, price: 60_000, tick: 2, seq: true },
    { id: ids.eth, price: 3_000, tick: 2, seq: true },
    { id: ids.eur, price: 1.08, tick: 5, seq: false },
  ];
  for (const s of specs) {
    let p = s.price;
    for (let i = 0; i < n; i++) {
      tradeCounter += 1;
      p = Math.max(p * (1 + (rnd() - 0.5) * 0.002), 0.01);
      const at = from + Math.floor(rnd() * minutes * MINUTE);
      rows.push({
        instrument_id: s.id,
        // Several trades share a millisecond; microseconds make most of them distinct.
        traded_at: utc(at, Math.floor(rnd() * 3) * 100),
        trade_id: String(tradeCounter),
        seq: s.seq ? String(tradeCounter) : null,
        price: p.toFixed(s.tick),
        size: (Math.floor(rnd() * 100_000) / 1e5 + 0.00001).toFixed(8),
        side: rnd() < 0.5 ? 'buy' : 'sell',
      });
    }
  }
  return rows;
}

async function insertTrades(rows: TradeRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 20_000) {
    const chunk = rows.slice(i, i + 20_000);
    await db.sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      select r.instrument_id, r.traded_at, r.trade_id, r.seq, r.price, r.size, r.side, r.traded_at + interval '15 ms', 'ws'
      from unnest(${chunk.map((r) => r.instrument_id)}::int[], ${chunk.map((r) => r.traded_at)}::text[]::timestamptz[],
                  ${chunk.map((r) => r.trade_id)}::text[], ${chunk.map((r) => r.seq) as string[]}::bigint[],
                  ${chunk.map((r) => r.price)}::numeric[], ${chunk.map((r) => r.size)}::numeric[],
                  ${chunk.map((r) => r.side) as string[]}::text[])
        as r(instrument_id, traded_at, trade_id, seq, price, size, side)`;
  }
}

async function chRows<T = Record<string, unknown>>(query: string): Promise<T[]> {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function chCount(table: string): Promise<number> {
  const [row] = await chRows<{ n: string }>(`SELECT count() AS n FROM ${table}`);
  return Number(row?.n);
}

/** Postgres trades (through the public view) formatted as ClickHouse prints them. */
async function pgTrades(): Promise<Record<string, unknown>[]> {
  return db.sql`
    select venue, symbol, instrument_id, to_char(traded_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as traded_at,
           trade_id, seq::text as seq, trim_scale(price)::text as price, trim_scale(size)::text as size, side,
           to_char(received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as received_at, source
    from market.ticks
    where traded_at >= now() - ${`${options.ticksTtlDays} days`}::interval
    order by instrument_id, traded_at, trade_id collate "C"`;
}

async function chTrades(): Promise<Record<string, unknown>[]> {
  return chRows(`
    SELECT venue, symbol, instrument_id, toString(traded_at) AS traded_at, trade_id, toString(seq) AS seq,
           toString(price) AS price, toString(size) AS size, side, toString(received_at) AS received_at, source
    FROM trades ORDER BY instrument_id, traded_at, trade_id`);
}

const TIMEFRAMES = [['1m', '1 minute'], ['5m', '5 minutes'], ['15m', '15 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['1d', '1 day']] as const;

/**
 * Bars computed here from every trade in Postgres, independently of both bar engines: first and
 * last by (traded_at, seq with null first, trade_id in byte order), vwap = notional / volume
 * truncated to 18 decimals (ClickHouse's vwap column).
 */
async function expectedBars(width: string): Promise<Record<string, unknown>[]> {
  return db.sql`
    with t as (
      select i.venue, i.symbol, t.instrument_id, t.price, t.size, t.traded_at, t.seq, t.trade_id,
             date_bin(${width}::interval, t.traded_at, timestamptz '2000-01-03 00:00:00+00') as bucket
      from market.trades t join market.instruments i using (instrument_id)
    )
    select venue, symbol, instrument_id, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as bucket,
           trim_scale((array_agg(price order by traded_at, seq nulls first, trade_id collate "C"))[1])::text as open,
           trim_scale(max(price))::text as high,
           trim_scale(min(price))::text as low,
           trim_scale((array_agg(price order by traded_at desc, seq desc nulls last, trade_id collate "C" desc))[1])::text as close,
           trim_scale(sum(size))::text as volume,
           trim_scale(div(sum(price * size) * 1000000000000000000, sum(size)) * 0.000000000000000001)::text as vwap,
           count(*)::text as trades,
           trim_scale(sum(price * size))::text as notional
    from t
    group by venue, symbol, instrument_id, bucket
    order by instrument_id, bucket`;
}

async function clickhouseBars(tf: string): Promise<Record<string, unknown>[]> {
  return chRows(`
    SELECT venue, symbol, instrument_id, toString(bucket) AS bucket, toString(open) AS open, toString(high) AS high,
           toString(low) AS low, toString(close) AS close, toString(volume) AS volume, toString(vwap) AS vwap,
           toString(trades) AS trades, toString(notional) AS notional
    FROM bars_${tf} ORDER BY instrument_id, bucket`);
}

/** The bars merged at query time from the aggregate states the materialized views wrote. */
async function stateBars(tf: string): Promise<Record<string, unknown>[]> {
  return chRows(`
    SELECT s.venue AS venue, s.symbol AS symbol, s.instrument_id AS instrument_id, toString(s.bucket) AS bucket,
           toString(argMinMerge(s.open)) AS open, toString(max(s.high)) AS high, toString(min(s.low)) AS low,
           toString(argMaxMerge(s.close)) AS close, toString(sum(s.volume)) AS volume,
           toString(toDecimal128(sum(s.notional) / sum(s.volume), 18)) AS vwap, toString(sum(s.trades)) AS trades,
           toString(sum(s.notional)) AS notional
    FROM bars_${tf}_state AS s GROUP BY s.instrument_id, s.venue, s.symbol, s.bucket ORDER BY instrument_id, bucket`);
}

async function expectBarsMatch(): Promise<void> {
  for (const [tf, width] of TIMEFRAMES) {
    const [expected, actual, states] = [await expectedBars(width), await clickhouseBars(tf), await stateBars(tf)];
    expect(actual.length, `bars_${tf} rows`).toBe(expected.length);
    expect(actual, `bars_${tf}`).toEqual(expected);
    expect(states, `bars_${tf}_state`).toEqual(expected);
  }
}

async function lag(): Promise<Record<string, { pending_rows: string; lag_seconds: string; replays: string; replay_pending: boolean }>> {
  const rows = await db.sql<{ stream: string; pending_rows: string; lag_seconds: string; replays: string; replay_pending: boolean }[]>`
    select stream, pending_rows::text, lag_seconds::text, replays::text, replay_pending from ops.clickhouse_lag`;
  return Object.fromEntries(rows.map((r) => [r.stream, r]));
}

async function runChild(args: Record<string, unknown>): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function openRuntime(): Promise<void> {
  ch = await openClickHouse(config, options);
  rt = { sql: db.sql, ch, options, log };
}

beforeAll(async () => {
  db = await createTestDatabase('ch');
  dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-ch-'));
  if (SERVER) {
    server = await new FakeClickHouse({ dir: path.join(dataDir, 'server'), user: SERVER_USER, password: SERVER_PASSWORD }).start();
    clickhouseUrl = `http://${SERVER_USER}:${encodeURIComponent(SERVER_PASSWORD)}@127.0.0.1:${server.port}/analytics`;
  }
  config = loadConfig({ env: clickhouseUrl ? { CLICKHOUSE_URL: clickhouseUrl } : {}, overrides: { dataDir } });
  options = clickhouseOptions(config, { ticksTtlDays: 90, sync: { batchRows: 5000, intervalMs: 100 } });
  await openRuntime();
  const inst = await db.sql<{ instrument_id: number; venue_symbol: string }[]>`
    insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
    values ('binance', 'BTCUSDT', 'BTC/USDT', 'crypto', 'BTC', 'USDT'),
           ('binance', 'ETHUSDT', 'ETH/USDT', 'crypto', 'ETH', 'USDT'),
           ('oanda', 'EUR_USD', 'EUR/USD', 'forex', 'EUR', 'USD')
    returning instrument_id, venue_symbol`;
  const byName = Object.fromEntries(inst.map((r) => [r.venue_symbol, r.instrument_id]));
  ids = { btc: byName.BTCUSDT!, eth: byName.ETHUSDT!, eur: byName.EUR_USD! };
});

afterAll(async () => {
  await ch?.close();
  await server?.close();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe(`ClickHouse analytics store (real engine, ${SERVER ? 'server mode: CLICKHOUSE_URL over HTTP' : 'embedded: chdb in-process'})`, () => {
  it('applies its DDL twice cleanly and records what was applied', async () => {
    expect(ch.mode).toBe(SERVER ? 'server' : 'embedded');
    const first = await migrateClickHouse(ch, options, log);
    expect(first.applied).toEqual(clickhouseMigrations().map((m) => m.name));
    const second = await migrateClickHouse(ch, options, log);
    expect(second).toEqual({ applied: [], ttlChanged: [] });
    // Every statement is repeatable on its own, so a file interrupted halfway can run again.
    for (const m of clickhouseMigrations()) {
      for (const statement of m.statements) await ch.client.command({ query: statement });
    }
    const ledger = await chRows<{ version: number; name: string }>('SELECT version, name FROM schema_migrations FINAL ORDER BY version');
    expect(ledger.map((r) => r.name)).toEqual(clickhouseMigrations().map((m) => m.name));

    const tables = await chRows<{ name: string; engine: string; engine_full: string }>(
      "SELECT name, engine, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ('trades', 'quotes', 'book_snapshots', 'bars_1m_state')");
    const byName = Object.fromEntries(tables.map((t) => [t.name, t]));
    expect(byName.trades?.engine).toBe('ReplacingMergeTree');
    expect(byName.trades?.engine_full).toMatch(/PARTITION BY toYYYYMM\(traded_at\) ORDER BY \(instrument_id, traded_at, trade_id\) TTL toDateTime\(traded_at\) \+ toIntervalDay\(90\)/);
    expect(byName.quotes?.engine_full).toMatch(/ORDER BY \(instrument_id, quoted_at, seq\) TTL toDateTime\(quoted_at\) \+ toIntervalDay\(90\)/);
    expect(byName.book_snapshots?.engine_full).toMatch(/TTL toDateTime\(taken_at\) \+ toIntervalDay\(30\)/);
    expect(byName.bars_1m_state?.engine).toBe('AggregatingMergeTree');
    expect(byName.bars_1m_state?.engine_full).not.toMatch(/TTL/);
    const columns = await chRows<{ name: string; type: string; compression_codec: string }>(
      "SELECT name, type, compression_codec FROM system.columns WHERE database = currentDatabase() AND table = 'trades'");
    const col = Object.fromEntries(columns.map((c) => [c.name, c]));
    expect(col.price?.type).toBe('Decimal(38, 12)');
    expect(col.traded_at?.type).toBe("DateTime64(6, 'UTC')");
    expect(col.venue?.type).toBe('LowCardinality(String)');
    expect(col.symbol?.type).toBe('LowCardinality(String)');
    expect(col.traded_at?.compression_codec).toBe('CODEC(Delta(8), ZSTD(3))');
    const indexes = await chRows<{ name: string; type: string }>(
      "SELECT name, type FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = 'trades' ORDER BY name");
    expect(indexes).toEqual([{ name: 'symbol_bloom', type: 'bloom_filter' }, { name: 'venue_bloom', type: 'bloom_filter' }]);

    // The ticks TTL follows the configuration.
    const longer = await migrateClickHouse(ch, clickhouseOptions(config, { ticksTtlDays: 120 }), log);
    expect(longer.ttlChanged).toEqual(['trades', 'quotes']);
    const back = await migrateClickHouse(ch, options, log);
    expect(back.ttlChanged).toEqual(['trades', 'quotes']);
  });

  it('ships trades, quotes and book snapshots with exact row counts and values', async () => {
    await insertTrades(makeTrades(1, BASE, 180, 4000));
    await db.sql`
      insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, tradeable, time_source, received_at, source)
      select ${ids.eur}, ${utc(BASE)}::text::timestamptz + g * interval '250 ms', 1000 + g,
             1.08000 + (g % 17) * 0.00001, case when g % 10 = 0 then null else 1000000 end,
             1.08010 + (g % 13) * 0.00001, 2500000, g % 50 <> 0, 'venue', ${utc(BASE)}::text::timestamptz + g * interval '250 ms', 'stream'
      from generate_series(1, 3000) g`;
    await db.sql`
      insert into market.book_snapshots (instrument_id, taken_at, update_id, origin, bid_prices, bid_sizes, ask_prices, ask_sizes, received_at)
      select ${ids.btc}, ${utc(BASE)}::text::timestamptz + g * interval '1 s', 5000 + g, 'derived',
             array[60000.01, 60000.00]::numeric[], array[0.5, 1.25000000]::numeric[],
             array[60000.02 + g / 100.0, 60000.5]::numeric[], array[0.001, 3]::numeric[], ${utc(BASE)}::text::timestamptz + g * interval '1 s'
      from generate_series(1, 50) g`;
    const before = await lag();
    expect(Number(before.trades?.pending_rows)).toBe(12_000);
    expect(Number(before.trades?.lag_seconds)).toBeGreaterThan(0);

    const report = await syncClickHouse(rt);
    expect(report.skipped).toBe(false);
    expect(report.streams).toEqual([
      { stream: 'trades', rows: 12_000, batches: 3, replays: 0 },
      { stream: 'quotes', rows: 3000, batches: 1, replays: 0 },
      { stream: 'book_snapshots', rows: 50, batches: 1, replays: 0 },
    ]);
    expect(await chCount('trades')).toBe(12_000);
    expect(await chTrades()).toEqual(await pgTrades());

    const pgQuotes = await db.sql`
      select venue, symbol, instrument_id, to_char(quoted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as quoted_at, seq::text as seq,
             trim_scale(bid)::text as bid, trim_scale(bid_size)::text as bid_size, trim_scale(ask)::text as ask,
             trim_scale(ask_size)::text as ask_size, tradeable, trim_scale(mid)::text as mid, trim_scale(spread)::text as spread
      from market.bbo order by instrument_id, quoted_at, seq`;
    const chQuotes = await chRows(`
      SELECT venue, symbol, instrument_id, toString(quoted_at) AS quoted_at, toString(seq) AS seq, toString(bid) AS bid,
             toString(bid_size) AS bid_size, toString(ask) AS ask, toString(ask_size) AS ask_size, tradeable,
             toString(mid) AS mid, toString(spread) AS spread
      FROM quotes ORDER BY instrument_id, quoted_at, seq`);
    expect(chQuotes).toEqual(pgQuotes);

    const pgBooks = await db.sql`
      select instrument_id, update_id::text as update_id, origin,
             array(select trim_scale(v)::text from unnest(bid_sizes) v) as bid_sizes,
             array(select trim_scale(v)::text from unnest(ask_prices) v) as ask_prices
      from market.book_snapshot_levels order by instrument_id, taken_at, update_id`;
    const chBooks = await chRows(`
      SELECT instrument_id, toString(update_id) AS update_id, origin, arrayMap(x -> toString(x), bid_sizes) AS bid_sizes,
             arrayMap(x -> toString(x), ask_prices) AS ask_prices
      FROM book_snapshots ORDER BY instrument_id, taken_at, update_id`);
    expect(chBooks).toEqual(pgBooks);

    const after = await lag();
    for (const stream of ['trades', 'quotes', 'book_snapshots']) {
      expect(after[stream]).toMatchObject({ pending_rows: '0', lag_seconds: '0', replay_pending: false });
    }
    await expectBarsMatch();
  });

  it('replays a batch whose confirmation was lost without duplicating rows or bars', async () => {
    await insertTrades(makeTrades(2, BASE + 60 * MINUTE, 240, 3000));
    let failures = 0;
    const failOnce = () => {
      failures += 1;
      if (failures === 2) throw new Error('connection lost after the insert');
    };
    await expect(syncClickHouse(rt, { streams: ['trades'], hooks: { afterInsert: failOnce } })).rejects.toThrow(/connection lost/);
    const stuck = await lag();
    expect(stuck.trades?.replay_pending).toBe(true);
    // 9000 new rows in batches of 5000: both are in ClickHouse, the second one unconfirmed.
    expect(await chCount('trades')).toBe(21_000);

    const report = await syncClickHouse(rt, { streams: ['trades'] });
    expect(report.streams[0]).toMatchObject({ stream: 'trades', rows: 9000 - 5000, replays: 1 });
    expect(await chCount('trades')).toBe(21_000);
    expect(await chTrades()).toEqual(await pgTrades());
    await expectBarsMatch();

    // A batch that failed before its insert is replayed, and lands once.
    await insertTrades(makeTrades(3, BASE + 30 * MINUTE, 60, 500));
    await expect(syncClickHouse(rt, { streams: ['trades'], hooks: { afterIntent: () => { throw new Error('crash before insert'); } } }))
      .rejects.toThrow(/crash before insert/);
    await syncClickHouse(rt, { streams: ['trades'] });
    expect(await chCount('trades')).toBe(22_500);
    const state = await lag();
    expect(state.trades).toMatchObject({ pending_rows: '0', replays: '2', replay_pending: false });
    await expectBarsMatch();
  });

  it('ships tick blocks whole, tick for tick, and replays a block batch without duplicates', async () => {
    // Three busy hours of synthetic EURUSD files (within ClickHouse's 90-day TTL of quotes).
    let day = BASE - 86_400_000;
    while ([3, 9, 15].some((h) => fxClosed(day + h * 3_600_000))) day -= 86_400_000;
    const hours = [3, 9, 15].map((h) => day + h * 3_600_000);
    const lander = new Lander(db.url, { maxBatchFrames: 10, flushIntervalMs: 10, maxBufferedBytes: 64 << 20 }, log);
    hours.forEach((t, i) => lander.offer(dukascopyFrame({ path: tickPath('EURUSD', t), body: syntheticFile(t), point: 100_000,
      receivedAt: new Date().toISOString(), seq: i })));
    await lander.flush();
    await lander.close();
    const [stored] = await db.sql<{ blocks: number; ticks: number; smallest: number }[]>`
      select count(*)::int as blocks, sum(ticks)::int as ticks, min(ticks)::int as smallest from market.quote_blocks`;
    expect(stored!.blocks).toBe(hours.length);
    expect(stored!.smallest).toBeGreaterThan(1000);
    // Batches of 1000 rows: each block is one sync key and goes whole, one block a batch. The
    // second batch reaches ClickHouse but its confirmation is lost, so it is sent again.
    let inserts = 0;
    const loseSecond = () => { if (++inserts === 2) throw new Error('connection lost after the insert'); };
    await expect(syncClickHouse(rt, { streams: ['quotes'], batchRows: 1000, hooks: { afterInsert: loseSecond } }))
      .rejects.toThrow(/connection lost/);
    expect((await lag()).quotes?.replay_pending).toBe(true);
    const report = await syncClickHouse(rt, { streams: ['quotes'], batchRows: 1000 });
    expect(report.streams[0]).toMatchObject({ stream: 'quotes', replays: 1, batches: hours.length - 2 });
    const pg = await db.sql`
      select instrument_id, to_char(quoted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as quoted_at, seq::text as seq,
             trim_scale(bid)::text as bid, trim_scale(bid_size)::text as bid_size, trim_scale(ask)::text as ask,
             trim_scale(ask_size)::text as ask_size
      from market.bbo where venue = 'dukascopy' order by quoted_at, seq`;
    const ch = await chRows(`
      SELECT instrument_id, toString(quoted_at) AS quoted_at, toString(seq) AS seq, toString(bid) AS bid,
             toString(bid_size) AS bid_size, toString(ask) AS ask, toString(ask_size) AS ask_size
      FROM quotes FINAL WHERE venue = 'dukascopy' ORDER BY quoted_at, seq`);
    expect(pg).toHaveLength(stored!.ticks);
    expect(ch).toEqual(pg);
    expect((await lag()).quotes).toMatchObject({ pending_rows: '0', replay_pending: false });
  });

  it('never runs two syncs at once', async () => {
    await insertTrades(makeTrades(4, BASE + 200 * MINUTE, 30, 2000));
    const reports = await Promise.all([syncClickHouse(rt), syncClickHouse(rt), syncClickHouse(rt)]);
    expect(reports.filter((r) => !r.skipped)).toHaveLength(1);
    expect(await chCount('trades')).toBe(28_500);
    await expectBarsMatch();
  });

  it.skipIf(SERVER)('refuses a second process on the embedded folder with DATA_DIR_LOCKED naming it', async () => {
    const out = await runChild({ dataDir, databaseUrl: db.url, action: 'open' });
    const result = JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as { opened: boolean; code?: string; message?: string };
    expect(result.opened).toBe(false);
    expect(result.code).toBe('DATA_DIR_LOCKED');
    expect(result.message).toContain(path.join(dataDir, 'clickhouse'));
    expect(result.message).toContain(String(process.pid));
  });

  it('leaves no duplicates when the sync process is killed mid-batch and restarted', async () => {
    await insertTrades(makeTrades(5, BASE + 100 * MINUTE, 120, 4000));
    await ch.close(); // the child must own the folder (embedded mode)
    for (const action of ['kill-after-insert', 'kill-after-intent']) {
      const out = await runChild({ dataDir, databaseUrl: db.url, action, batchRows: 3000, clickhouseUrl });
      expect(out.signal, out.stderr).toBe('SIGKILL');
      const [w] = await db.sql`select pending_xid is not null as pending from ops.clickhouse_watermarks where stream = 'trades'`;
      expect(w?.pending).toBe(true);
    }
    await openRuntime();
    // The first batch reached ClickHouse before the first kill, and its replay by the second
    // process was deduplicated; the second batch was killed before its insert.
    expect(await chCount('trades')).toBe(28_500 + 3000);
    const report = await syncClickHouse(rt);
    expect(report.streams[0]).toMatchObject({ stream: 'trades', rows: 12_000 - 3000, replays: 1 });
    expect(await chCount('trades')).toBe(40_500);
    expect(await chTrades()).toEqual(await pgTrades());
    await expectBarsMatch();
  });

  it('ships rows committed out of sync order, and the lag returns to zero after a burst', async () => {
    // A transaction takes its sync_ids first and commits last.
    let commitSlow!: () => void;
    let slowInserted!: () => void;
    const inserted = new Promise<void>((r) => { slowInserted = r; });
    const slow = db.sql.begin(async (tx) => {
      await tx`
        insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
        values (${ids.btc}, ${utc(BASE + 10 * MINUTE)}::text::timestamptz, 'slow-1', null, 59000.5, 0.25, 'buy', now(), 'ws')`;
      slowInserted();
      await new Promise<void>((r) => { commitSlow = r; });
    });
    await inserted;
    const burst = makeTrades(6, BASE + 300 * MINUTE, 60, 5000);
    for (let i = 0; i < burst.length; i += 1000) await insertTrades(burst.slice(i, i + 1000));
    const during = await lag();
    expect(Number(during.trades?.pending_rows)).toBe(15_000);
    expect(Number(during.trades?.lag_seconds)).toBeGreaterThan(0);

    await syncClickHouse(rt);
    expect((await lag()).trades).toMatchObject({ pending_rows: '0', lag_seconds: '0' });
    expect(await chCount('trades')).toBe(55_500);

    commitSlow();
    await slow;
    expect((await lag()).trades?.pending_rows).toBe('1');
    await syncClickHouse(rt);
    expect((await lag()).trades).toMatchObject({ pending_rows: '0', lag_seconds: '0' });
    expect(await chRows(`SELECT trade_id, toString(price) AS price FROM trades WHERE trade_id = 'slow-1'`))
      .toEqual([{ trade_id: 'slow-1', price: '59000.5' }]);
    expect(await chTrades()).toEqual(await pgTrades());
  });

  it('keeps bars equal to independently computed bars after late trades and backfilled history', async () => {
    const minute = BASE + 7 * MINUTE;
    await db.sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      values
        -- Late trades at the very start of an existing minute: a new open. Equal times are
        -- ordered by seq (trades without one first), then by trade_id in byte order.
        (${ids.btc}, ${utc(minute)}::text::timestamptz, 'late-b', 7, 61000.25, 0.5, 'buy', now(), 'rest'),
        (${ids.btc}, ${utc(minute)}::text::timestamptz, 'late-a', 7, 61000.75, 0.5, 'buy', now(), 'rest'),
        (${ids.btc}, ${utc(minute)}::text::timestamptz, 'late-z', null, 58000.5, 0.125, 'sell', now(), 'rest'),
        (${ids.btc}, ${utc(minute)}::text::timestamptz, 'late-c', 6, 62000, 1, 'buy', now(), 'rest'),
        -- A late trade at the very end of a minute: a new close.
        (${ids.eur}, ${utc(minute + MINUTE - 1, 999)}::text::timestamptz, 'late-eur', null, 1.07001, 1000000, 'sell', now(), 'rest'),
        -- Backfilled history older than the ticks TTL: dropped from trades, kept in bars.
        (${ids.eth}, ${utc(BASE - 200 * 86_400_000)}::text::timestamptz, 'old-1', 1, 2000.01, 2, 'buy', now(), 'file'),
        (${ids.eth}, ${utc(BASE - 200 * 86_400_000 + 1000)}::text::timestamptz, 'old-2', 2, 1999.99, 3, 'sell', now(), 'file')`;
    // Text that TabSeparated must escape arrives unchanged.
    await db.sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      values (${ids.eur}, ${utc(minute + 30_000)}::text::timestamptz, ${'odd\tid\\with\nbreaks'}, null, 1.08, 5, null, now(), 'rest')`;
    await syncClickHouse(rt);
    expect(await chRows(`SELECT trade_id FROM trades WHERE trade_id LIKE 'odd%'`)).toEqual([{ trade_id: 'odd\tid\\with\nbreaks' }]);
    const [open] = await chRows<{ open: string }>(
      `SELECT toString(open) AS open FROM bars_1m WHERE instrument_id = ${ids.btc} AND bucket = toDateTime('${utc(minute).slice(0, 19).replace('T', ' ')}', 'UTC')`);
    expect(open?.open).toBe('58000.5');
    expect(await chCount(`trades WHERE trade_id LIKE 'old-%'`)).toBe(0);
    expect(await chCount(`bars_1m WHERE instrument_id = ${ids.eth} AND bucket < now() - INTERVAL 100 DAY`)).toBe(1);
    expect(await chTrades()).toEqual(await pgTrades());
    await expectBarsMatch();
  });

  it('agrees with the Postgres bars views where they exist', async () => {
    const [present] = await db.sql<{ ok: boolean }[]>`
      select to_regclass('market.bars_1m') is not null
             and to_regprocedure('market.refresh_bars_window(integer, timestamptz, timestamptz)') is not null as ok`;
    if (!present?.ok) return; // the Postgres bars are another issue; expectedBars() covers the definition
    // The fixtures were inserted directly, not through a normalizer, so nothing invalidated bars.
    await db.sql`select market.refresh_bars_window(null, min(traded_at), max(traded_at) + interval '1 microsecond') from market.trades`;
    for (const [tf] of TIMEFRAMES) {
      const pg = await db.sql.unsafe(`
        select venue, symbol, instrument_id, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as bucket,
               open::text, high::text, low::text, close::text, volume::text, vwap::text, trades::text
        from market.bars_${tf} order by instrument_id, bucket`);
      const chb = await clickhouseBars(tf);
      expect(chb.length, `bars_${tf}`).toBe(pg.length);
      chb.forEach((c, i) => {
        const p = pg[i]!;
        // vwap too: both stores cut notional / volume to 18 decimals.
        const { notional: _n, ...cRest } = c;
        expect(cRest, `bars_${tf} ${String(p.bucket)}`).toEqual(p);
      });
    }
  });

  it('stops at a number ClickHouse cannot hold exactly, and says which', async () => {
    await db.sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      values (${ids.eth}, ${utc(BASE + 3 * MINUTE)}::text::timestamptz, 'too-fine', null, 3000.0000000000001, 1, 'buy', now(), 'rest')`;
    await expect(syncClickHouse(rt, { streams: ['trades'] })).rejects.toMatchObject({
      code: 'CLICKHOUSE_SYNC',
      message: expect.stringMatching(/at most 12 decimals.*too-fine.*3000\.0000000000001/),
    });
    const [w] = await db.sql<{ last_error: string }[]>`select last_error from ops.clickhouse_lag where stream = 'trades'`;
    expect(w?.last_error).toMatch(/too-fine/);
    expect(await chCount(`trades WHERE trade_id = 'too-fine'`)).toBe(0);
    // Corrected at the source (here by hand), the sync goes on.
    await db.sql`update market.trades set price = 3000 where trade_id = 'too-fine'`;
    await syncClickHouse(rt);
    expect(await chRows(`SELECT toString(price) AS price FROM trades WHERE trade_id = 'too-fine'`)).toEqual([{ price: '3000' }]);
    expect((await lag()).trades).toMatchObject({ pending_rows: '0', lag_seconds: '0' });
    expect(await chTrades()).toEqual(await pgTrades());
    await expectBarsMatch();
  });

  it('reports an unreachable ClickHouse server with its code', async () => {
    const serverConfig = loadConfig({ env: { CLICKHOUSE_URL: 'http://user:secret-password@127.0.0.1:9/analytics' }, overrides: { dataDir } });
    const err = await openClickHouse(serverConfig, options).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(err?.code).toBe('CLICKHOUSE_UNAVAILABLE');
    expect(err?.message).toContain('http://127.0.0.1:9/analytics');
    expect(err?.message).not.toContain('secret-password');
  });

  it('runs as the clickhouse_sync job with a validated payload', async () => {
    await insertTrades(makeTrades(7, BASE + 400 * MINUTE, 10, 100));
    const before = await chCount('trades');
    const logs: string[] = [];
    const helpers = {
      abortSignal: new AbortController().signal,
      logger: { info: (m: string) => logs.push(m), debug: () => {}, warn: () => {}, error: () => {} },
    } as unknown as Parameters<typeof clickhouseSyncTask>[1];
    registerSyncRuntime(rt);
    try {
      await expect(clickhouseSyncTask({ streams: ['candles'] }, helpers)).rejects.toMatchObject({ code: 'JOB_PAYLOAD_INVALID' });
      await clickhouseSyncTask({ streams: ['trades'] }, helpers);
    } finally {
      registerSyncRuntime(undefined);
    }
    expect(await chCount('trades')).toBe(before + 300);
    expect(logs.join('\n')).toMatch(/300 rows shipped/);
  });

  it('keeps ClickHouse within two seconds of Postgres when run as the service of tickflow start', async () => {
    const service = await startClickHouseService(config, db.sql, log);
    expect(service).toBeDefined();
    try {
      const before = await chCount('trades');
      const started = performance.now();
      await insertTrades(makeTrades(8, BASE + 500 * MINUTE, 5, 50));
      while ((await chCount('trades')) < before + 150) {
        expect(performance.now() - started).toBeLessThan(5000);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(performance.now() - started).toBeLessThan(2000);
      for (;;) {
        const state = await lag();
        if (state.trades?.pending_rows === '0') { expect(state.trades.lag_seconds).toBe('0'); break; }
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await service?.stop();
    }
    await expectBarsMatch();
  });

  it('exports a query and a table slice through ClickHouse formats', async () => {
    const csv = path.join(dataDir, 'export', 'btc.csv');
    const slice = await exportToFile(ch, {
      slice: { table: 'trades', venue: 'binance', symbol: 'BTC/USDT', from: new Date(BASE).toISOString(), to: new Date(BASE + 60 * MINUTE).toISOString() },
      format: 'CSVWithNames',
      file: csv,
    });
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    const [expected] = await db.sql<{ n: string }[]>`
      select count(*)::text as n from market.ticks
      where venue = 'binance' and symbol = 'BTC/USDT' and traded_at >= ${utc(BASE)}::text::timestamptz and traded_at < ${utc(BASE + 60 * MINUTE)}::text::timestamptz`;
    expect(lines[0]).toBe('"venue","symbol","instrument_id","traded_at","trade_id","seq","price","size","side","received_at","source"');
    expect(lines.length - 1).toBe(Number(expected?.n));
    expect(slice.bytes).toBeGreaterThan(0);

    const parquet = path.join(dataDir, 'export', 'hourly-vwap.parquet');
    await exportToFile(ch, {
      query: 'SELECT symbol, toStartOfHour(bucket) AS hour, sum(notional) / sum(volume) AS vwap FROM bars_1m WHERE venue = {venue:String} GROUP BY symbol, hour ORDER BY symbol, hour',
      params: { venue: 'binance' },
      format: 'Parquet',
      file: parquet,
    });
    const [back] = await chRows<{ n: string }>(`SELECT count() AS n FROM file('${parquet}', Parquet)`);
    const [hours] = await chRows<{ n: string }>("SELECT uniqExact(symbol, toStartOfHour(bucket)) AS n FROM bars_1m WHERE venue = 'binance'");
    expect(Number(back?.n)).toBe(Number(hours?.n));
    await expect(exportToFile(ch, { slice: { table: 'system.users' as 'trades' }, format: 'CSV', file: csv }))
      .rejects.toMatchObject({ code: 'EXPORT_INVALID' });
  });

  it.runIf(SERVER)('sends its credentials with every request, lets a second process in, and never shows the password', async () => {
    // The worker of a split deployment opens the same server while this process holds it.
    const out = await runChild({ dataDir, databaseUrl: db.url, action: 'open', clickhouseUrl });
    const result = JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as { opened: boolean; location?: string };
    expect(result).toEqual({ opened: true, location: `http://127.0.0.1:${server!.port}/analytics` });
    // Migration and sync logged at debug level, and a wrong password, say nothing of either password.
    const lines: string[] = [];
    const destination = { write: (line: string) => { lines.push(line); return true; } } as unknown as NodeJS.WritableStream;
    const debugLog = createLogger({ level: 'debug', destination });
    await insertTrades(makeTrades(9, BASE + 600 * MINUTE, 5, 10));
    await migrateClickHouse(ch, options, debugLog);
    await syncClickHouse({ ...rt, log: debugLog }, { streams: ['trades'] });
    expect(server!.requests.length).toBeGreaterThan(5);
    expect(server!.requests.filter((r) => r.path !== '/ping' && (r.user !== SERVER_USER || r.status === 403))).toEqual([]);
    const wrongPassword = 'not-the-password-42';
    const wrong = loadConfig({ env: { CLICKHOUSE_URL: `http://${SERVER_USER}:${wrongPassword}@127.0.0.1:${server!.port}/analytics` }, overrides: { dataDir } });
    const err = await openClickHouse(wrong, options).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(err?.code).toBe('CLICKHOUSE_UNAVAILABLE');
    expect(err?.message).toMatch(/Authentication failed/);
    debugLog.error({ err: err?.message, url: wrong.clickhouseUrl }, 'clickhouse refused');
    const seen = [...lines, err?.message ?? '', out.stdout, out.stderr].join('\n');
    expect(lines.join('')).toContain(`"location":"http://127.0.0.1:${server!.port}/analytics"`);
    expect(lines.join('')).toContain('Authentication failed');
    for (const secret of [SERVER_PASSWORD, encodeURIComponent(SERVER_PASSWORD), wrongPassword]) expect(seen).not.toContain(secret);
  });
});
