/**
 * ClickHouse analytics store, on the embedded engines (Postgres 18 + chdb), in a temp folder:
 *
 *   npx tsx test/bench/clickhouse.ts [trades=500000] [intervalMs=100]
 *
 *  - syncRowsPerSec: trades already committed in Postgres shipped to ClickHouse by the sync;
 *  - commitToVisible: single-trade transactions committed while the sync loop runs every
 *    intervalMs; time from COMMIT returning to the row being visible in ClickHouse (p50/p95/max,
 *    target p95 <= 2000 ms), polled every 5 ms;
 *  - yearOfBars: 525,600 one-minute OHLCV bars of one instrument (a year: bucket, open, high,
 *    low, close, volume), read from the bars_1m view: server-side execution (FORMAT Null; target
 *    <= 100 ms) and delivery of every row to Node as CSV / TSV / JSONCompactEachRow (target
 *    <= 400 ms), each before and after parts are merged; the same rows with vwap and trades added
 *    are reported beside them;
 *  - yearOfBarsPostgres: the same year from Postgres' market.bars_1m: server-side execution
 *    (EXPLAIN ANALYZE) and every row delivered to Node by COPY (text, CSV) or as parsed rows;
 *  - compression of the trades table from system.parts (target >= 10x), per column as well.
 *
 * Prints one JSON line.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { loadConfig } from '../../src/config.ts';
import { connect, startEmbedded } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { migrate } from '../../src/migrate.ts';
import { clickhouseOptions, openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrate.ts';
import { refreshBarsRange, startSyncLoop, syncClickHouse } from '../../src/clickhouse/sync.ts';
import { freePort } from '../support/global-setup.ts';

const TRADES = Math.max(1000, Number.parseInt(process.argv[2] ?? '500000', 10) || 500_000);
const INTERVAL_MS = Math.max(10, Number.parseInt(process.argv[3] ?? '100', 10) || 100);
const LATENCY_SAMPLES = 200;
const YEAR_MINUTES = 525_600;
const OHLCV = 'bucket, open, high, low, close, volume';
const OHLCV_VWAP_TRADES = `${OHLCV}, vwap, trades`;

const log = createLogger({ level: 'warn' });
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'binance', 'hftbacktest-spot-btcusdt-20240808-first500.txt');

/** Empirical distributions of the captured Binance trade stream (receive time in ns, then the frame). */
function capturedTrades(): { gapsMs: number[]; moves: number[]; sizes: string[]; lagsUs: number[]; buyShare: number } {
  const trades = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.includes('@trade')).map((line) => {
    const [recv, json] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
    const d = (JSON.parse(json) as { data: { T: number; p: string; q: string; m: boolean } }).data;
    return { recvUs: Number(BigInt(recv) / 1000n), t: d.T, ticks: Math.round(Number(d.p) * 100), size: d.q, buy: !d.m };
  });
  const lags = trades.map((x) => x.recvUs - x.t * 1000);
  const minLag = Math.min(...lags);
  return {
    gapsMs: trades.slice(1).map((x, i) => x.t - trades[i]!.t),
    moves: trades.slice(1).map((x, i) => x.ticks - trades[i]!.ticks),
    sizes: trades.map((x) => x.size),
    // The capture's clock is offset from the venue's; keep the spread, start it at 1 ms.
    lagsUs: lags.map((l) => l - minLag + 1000),
    buyShare: trades.filter((x) => x.buy).length / trades.length,
  };
}

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
const dir = mkdtempSync(path.join(tmpdir(), 'tickflow-bench-ch-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * p) - 1)]!;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const pg = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: true, log });
const sql = connect(pg.url, { max: 6 });
const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
const options = clickhouseOptions(config, { sync: { intervalMs: INTERVAL_MS, batchRows: 100_000 } });
const ch = await openClickHouse(config, options);
const out: Record<string, unknown> = { trades: TRADES, syncIntervalMs: INTERVAL_MS };

async function chValue<T>(query: string): Promise<T> {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return (await rs.json<Record<string, T>>())[0]!.v!;
}

try {
  await migrate(sql, pg.url, log);
  await migrateClickHouse(ch, options, log);
  const rt = { sql, ch, options, log };
  const [inst] = await sql<{ id: number }[]>`
    insert into market.instruments (venue, venue_symbol, symbol) values ('binance', 'BTCUSDT', 'BTC/USDT') returning instrument_id as id`;
  const id = inst!.id;

  // Trades shaped like real Binance BTC/USDT trades: gaps between trade times, price moves (in
  // ticks), sizes and sides drawn from the captured stream in test/fixtures (millisecond trade
  // times, runs of trades in the same millisecond from one taker order), receive times with the
  // captured microsecond lag.
  const sample = capturedTrades();
  const rnd = random(42);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  let at = Date.now() - 2 * 86_400_000;
  let ticks = 6_000_000; // 60000.00 in 0.01 ticks
  for (let done = 0; done < TRADES; done += 50_000) {
    const n = Math.min(50_000, TRADES - done);
    const rows = { at: [] as string[], id: [] as string[], price: [] as string[], size: [] as string[], side: [] as string[], recv: [] as string[] };
    for (let i = 0; i < n; i++) {
      at += pick(sample.gapsMs);
      ticks += pick(sample.moves) * (rnd() < 0.5 ? -1 : 1); // the capture trends; keep the walk centred
      const k = 3_735_683_259 + done + i;
      rows.at.push(new Date(at).toISOString());
      rows.id.push(String(k));
      rows.price.push((ticks / 100).toFixed(2));
      rows.size.push(pick(sample.sizes));
      rows.side.push(rnd() < sample.buyShare ? 'buy' : 'sell');
      rows.recv.push(String(pick(sample.lagsUs)));
    }
    await sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      select ${id}, r.at, r.id, r.id::bigint, r.price, r.size, r.side, r.at + r.lag * interval '1 microsecond', 'ws'
      from unnest(${rows.at}::text[]::timestamptz[], ${rows.id}::text[], ${rows.price}::numeric[], ${rows.size}::numeric[],
                  ${rows.side}::text[], ${rows.recv}::int[]) as r(at, id, price, size, side, lag)`;
  }
  out.tradesSpanHours = round((at - (Date.now() - 2 * 86_400_000)) / 3_600_000, 1);

  // 1. Throughput of the sync over a backlog.
  let t0 = performance.now();
  const report = await syncClickHouse(rt);
  const syncMs = performance.now() - t0;
  const shipped = report.streams.find((s) => s.stream === 'trades')!.rows;
  out.syncRowsPerSec = Math.round(shipped / (syncMs / 1000));
  out.syncSeconds = round(syncMs / 1000, 2);

  // 2. Compression of the trades table, parts merged as they would be in steady state.
  await ch.client.command({ query: 'OPTIMIZE TABLE trades FINAL' });
  const parts = (await (await ch.client.query({
    query: `SELECT sum(rows) AS rows, sum(data_uncompressed_bytes) AS raw, sum(data_compressed_bytes) AS packed
            FROM system.parts WHERE database = currentDatabase() AND table = 'trades' AND active`,
    format: 'JSONEachRow',
  })).json<{ rows: string; raw: string; packed: string }>())[0]!;
  const columns = await (await ch.client.query({
    query: `SELECT column AS name, sum(column_data_uncompressed_bytes) AS raw, sum(column_data_compressed_bytes) AS packed
            FROM system.parts_columns WHERE database = currentDatabase() AND table = 'trades' AND active
            GROUP BY column ORDER BY packed DESC`,
    format: 'JSONEachRow',
  })).json<{ name: string; raw: string; packed: string }>();
  out.compression = {
    rows: Number(parts.rows),
    ratio: round(Number(parts.raw) / Number(parts.packed), 2),
    compressedBytesPerRow: round(Number(parts.packed) / Number(parts.rows), 2),
    columns: Object.fromEntries(columns.map((c) => [c.name, {
      ratio: round(Number(c.raw) / Math.max(1, Number(c.packed)), 1),
      bytesPerRow: round(Number(c.packed) / Number(parts.rows), 2),
    }])),
  };

  // 3. Commit-to-visibility with the sync loop running every INTERVAL_MS.
  const loop = startSyncLoop(rt, { intervalMs: INTERVAL_MS });
  const committed = new Map<string, number>();
  const visible = new Map<string, number>();
  let producing = true;
  const poller = (async () => {
    while (producing || visible.size < committed.size) {
      const waiting = [...committed.keys()].filter((k) => !visible.has(k));
      if (waiting.length > 0) {
        const rs = await ch.client.query({
          query: 'SELECT trade_id FROM trades WHERE instrument_id = {id:UInt32} AND trade_id IN {ids:Array(String)}',
          query_params: { id, ids: waiting },
          format: 'JSONEachRow',
        });
        const now = performance.now();
        for (const r of await rs.json<{ trade_id: string }>()) if (!visible.has(r.trade_id)) visible.set(r.trade_id, now);
      }
      await sleep(5);
    }
  })();
  const writer = postgres(pg.url, { max: 1, onnotice: () => {} });
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const tradeId = `lat-${i}`;
    await writer`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      values (${id}, now(), ${tradeId}, null, 60100.25, 0.01, 'buy', now(), 'ws')`;
    committed.set(tradeId, performance.now());
    await sleep(20 + Math.random() * 40);
  }
  producing = false;
  await Promise.race([poller, sleep(30_000)]);
  await loop.stop();
  await writer.end();
  const latencies = [...committed].filter(([k]) => visible.has(k)).map(([k, at]) => visible.get(k)! - at);
  out.commitToVisibleMs = {
    samples: latencies.length,
    missing: committed.size - latencies.length,
    p50: round(median(latencies)),
    p95: round(pct(latencies, 0.95)),
    max: round(Math.max(...latencies)),
  };

  // 4. A year of 1-minute bars for one instrument: two trades a minute for 525,600 minutes,
  // inserted in monthly blocks as a backfill would (trades older than the TTL are dropped, the
  // bars stay).
  const yearStart = Math.floor((Date.now() - 400 * 86_400_000) / 86_400_000) * 86_400_000;
  const yearStartText = new Date(yearStart).toISOString().slice(0, 19).replace('T', ' ');
  t0 = performance.now();
  for (let m = 0; m < YEAR_MINUTES; m += 43_200) {
    await ch.client.command({
      query: `INSERT INTO trades (venue, symbol, instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
              SELECT 'bench', 'YEAR/USD', 999999, t, toString(number), number,
                     toDecimal128(100 + (number % 997) / 100, 12), toDecimal128(1 + (number % 7) / 1000, 12),
                     if(number % 2 = 0, 'buy', 'sell'), t, 'file'
              FROM (SELECT number, toDateTime64({start:String}, 6, 'UTC') + toIntervalSecond(intDiv(number, 2) * 60 + (number % 2) * 30) AS t
                    FROM numbers({from:UInt64}, {count:UInt64}))`,
      query_params: { start: yearStartText, from: 2 * m, count: 2 * Math.min(43_200, YEAR_MINUTES - m) },
    });
  }
  // Written straight into ClickHouse, so the finished bars are refreshed here as the sync would.
  await refreshBarsRange(ch, new Date(yearStart), new Date(yearStart + YEAR_MINUTES * 60_000), [999999]);
  out.yearOfBarsInsertSeconds = round((performance.now() - t0) / 1000, 2);
  // A bar is the minute's OHLCV; the views also carry vwap and trades, read as a second figure.
  const chBars = (columns: string) => `SELECT ${columns} FROM bars_1m
                     WHERE venue = 'bench' AND symbol = 'YEAR/USD'
                     AND bucket >= toDateTime('${yearStartText}', 'UTC') AND bucket < toDateTime('${yearStartText}', 'UTC') + INTERVAL 365 DAY
                     ORDER BY bucket`;
  const barsQuery = chBars(OHLCV);
  /** Bytes and rows (newlines) of a text format, read from the client's stream. */
  const textRows = async (format: string, query = barsQuery) => {
    const rs = await ch.client.exec({ query: `${query} FORMAT ${format}` });
    let rows = 0;
    let bytes = 0;
    for await (const chunk of rs.stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows += 1;
    }
    return { rows, bytes };
  };
  const measureYear = async () => {
    const serverMs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const s = performance.now();
      await ch.client.command({ query: `${barsQuery} FORMAT Null` });
      serverMs.push(performance.now() - s);
    }
    const deliver: Record<string, { ms: number; rows: number; bytes: number }> = {};
    const time = async (name: string, f: () => Promise<{ rows: number; bytes: number }>) => {
      const runs: number[] = [];
      let last = { rows: 0, bytes: 0 };
      for (let i = 0; i < 5; i++) {
        const s = performance.now();
        last = await f();
        runs.push(performance.now() - s);
      }
      deliver[name] = { ms: round(median(runs)), ...last };
    };
    await time('CSV', () => textRows('CSV'));
    await time('TabSeparated', () => textRows('TabSeparated'));
    await time('TabSeparated, with vwap and trades', () => textRows('TabSeparated', chBars(OHLCV_VWAP_TRADES)));
    await time('JSONCompactEachRow (parsed)', async () => {
      const rs = await ch.client.query({ query: barsQuery, format: 'JSONCompactEachRow' });
      return { rows: (await rs.json()).length, bytes: 0 };
    });
    // Arrow IPC record batches (LZ4) as bytes; decoding needs apache-arrow, not a dependency.
    await time('ArrowStream (bytes, not decoded)', async () => {
      const rs = await ch.client.exec({ query: `${barsQuery} FORMAT ArrowStream` });
      let bytes = 0;
      for await (const chunk of rs.stream as AsyncIterable<Buffer>) bytes += chunk.length;
      return { rows: 0, bytes };
    });
    const best = Object.entries(deliver).filter(([name, d]) => d.rows === YEAR_MINUTES && !name.includes('vwap')).sort((a, b) => a[1].ms - b[1].ms)[0]!;
    return { serverMs: round(median(serverMs)), deliverMs: deliver, bestWithRows: { format: best[0], ms: best[1].ms } };
  };
  const parts1m = await chValue<string>("SELECT toString(count()) AS v FROM system.parts WHERE database = currentDatabase() AND table = 'bars_1m_data' AND active");
  const beforeMerge = await measureYear();
  await ch.client.command({ query: 'OPTIMIZE TABLE bars_1m_data FINAL' });
  const afterMerge = await measureYear();
  const barRows = await chValue<string>(`SELECT toString(count()) AS v FROM (${barsQuery})`);
  out.yearOfBars = { rows: Number(barRows), partsBeforeMerge: Number(parts1m), beforeMerge, afterMerge };

  // 5. The same year of 1-minute bars from Postgres (market.bars_1m over the rollup table, stored
  // as the rollup stores them: trimmed, with vwap): server-side execution from EXPLAIN ANALYZE, then every row delivered to
  // Node by COPY ... TO STDOUT (text and CSV streams) and as parsed rows of the query protocol.
  const [yi] = await sql<{ id: number }[]>`
    insert into market.instruments (venue, venue_symbol, symbol) values ('bench', 'YEARUSD', 'YEAR/USD') returning instrument_id as id`;
  await sql`
    insert into market.bars_1m_data (instrument_id, bucket, open, high, low, close, volume, notional, trades, vwap)
    select ${yi!.id}, ${new Date(yearStart).toISOString()}::timestamptz + n * interval '1 minute',
           trim_scale(o), trim_scale(greatest(o, c) + 0.01), trim_scale(least(o, c) - 0.01), trim_scale(c), trim_scale(v),
           round((o + c) / 2 * v, 24), 2, market.vwap(round((o + c) / 2 * v, 24), v)
    from (select n, 100 + (2 * n % 997) / 100.0 as o, 100 + ((2 * n + 1) % 997) / 100.0 as c,
                 1 + (2 * n % 7) / 1000.0 + 1 + ((2 * n + 1) % 7) / 1000.0 as v
          from generate_series(0, ${YEAR_MINUTES - 1}) n) g`;
  await sql`analyze market.bars_1m_data`;
  const barsBetween = (from: string, to: string, columns = OHLCV) => `select ${columns} from market.bars_1m
                       where instrument_id = ${yi!.id} and bucket >= '${from}' and bucket < '${to}' order by bucket`;
  const yearEnd = new Date(yearStart + YEAR_MINUTES * 60_000).toISOString();
  const pgBarsQuery = barsBetween(new Date(yearStart).toISOString(), yearEnd);
  const pgServer: number[] = [];
  for (let i = 0; i < 7; i++) {
    const plan = await sql.unsafe(`explain (analyze, timing off) ${pgBarsQuery}`);
    const line = plan.map((r) => String(r['QUERY PLAN'])).find((l) => l.startsWith('Execution Time'))!;
    pgServer.push(Number(/([0-9.]+) ms/.exec(line)![1]));
  }
  const pgDeliver: Record<string, { ms: number; rows: number }> = {};
  // Each run has a connection of its own, opened before the clock starts: postgres.js 3.4.9 does
  // not give a connection back after a large COPY ... TO STDOUT stream (the next query waits).
  const pgTime = async (name: string, f: (client: postgres.Sql, more: postgres.Sql) => Promise<number>, connections = 1) => {
    const runs: number[] = [];
    let rows = 0;
    for (let i = 0; i < 5; i++) {
      const clients = Array.from({ length: connections }, () => postgres(pg.url, { max: 1, onnotice: () => {} }));
      await Promise.all(clients.map((c) => c`select 1`));
      const s = performance.now();
      rows = await f(clients[0]!, clients.at(-1)!);
      runs.push(performance.now() - s);
      await Promise.all(clients.map((c) => c.end({ timeout: 0 })));
    }
    pgDeliver[name] = { ms: round(median(runs)), rows };
  };
  const copyRows = async (client: postgres.Sql, options: string, query = pgBarsQuery) => {
    const stream = await client.unsafe(`copy (${query}) to stdout ${options}`).readable();
    let rows = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows += 1;
    }
    return rows;
  };
  // COPY's binary format (numerics as base-10000 digits, times as integers); rows counted by
  // walking each tuple's field lengths.
  const copyBinaryRows = async (client: postgres.Sql) => {
    const stream = await client.unsafe(`copy (${pgBarsQuery}) to stdout (format binary)`).readable();
    let rows = 0;
    let buf: Buffer = Buffer.alloc(0);
    let at = 19; // signature (11), flags (4), header extension length (4, zero here)
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      buf = buf.length > at ? Buffer.concat([buf.subarray(at), chunk]) : chunk.subarray(at - buf.length);
      at = 0;
      for (;;) {
        if (buf.length - at < 2) break;
        const fields = buf.readInt16BE(at);
        if (fields === -1) { at = buf.length; break; }
        let end = at + 2;
        for (let f = 0; f < fields && end !== -1; f++) {
          if (buf.length - end < 4) { end = -1; break; }
          const len = buf.readInt32BE(end);
          end += 4 + Math.max(0, len);
          if (end > buf.length) end = -1;
        }
        if (end === -1) break;
        rows += 1;
        at = end;
      }
    }
    return rows;
  };
  await pgTime('COPY text', (client) => copyRows(client, ''));
  await pgTime('COPY binary', copyBinaryRows);
  // One COPY's text is made by one server process (most of the total here: about 35 ms per decimal
  // column and 48 ms for the times, over the year's rows); a client wanting the year sooner asks for its two halves on two connections at once
  // (both cores), and has the rows in order by reading the first half first.
  const middle = new Date(yearStart + (YEAR_MINUTES / 2) * 60_000).toISOString();
  await pgTime('COPY text, two halves on two connections', async (client, more) => {
    const halves = await Promise.all([copyRows(client, '', barsBetween(new Date(yearStart).toISOString(), middle)),
                                      copyRows(more, '', barsBetween(middle, yearEnd))]);
    return halves[0] + halves[1];
  }, 2);
  await pgTime('COPY csv', (client) => copyRows(client, '(format csv)'));
  await pgTime('COPY text, with vwap and trades', (client) => copyRows(client, '', barsBetween(new Date(yearStart).toISOString(), yearEnd, OHLCV_VWAP_TRADES)));
  await pgTime('rows (parsed)', async (client) => (await client.unsafe(pgBarsQuery)).length);
  // The best format is that of one query of the OHLCV bars on one connection; the two-connection
  // read and the read with vwap and trades are reported apart.
  const pgBest = Object.entries(pgDeliver).filter(([name, d]) => d.rows === YEAR_MINUTES && !name.includes('two connections') && !name.includes('vwap'))
    .sort((a, b) => a[1].ms - b[1].ms)[0]!;
  out.yearOfBarsPostgres = { serverMs: round(median(pgServer)), deliverMs: pgDeliver, bestWithRows: { format: pgBest[0], ms: pgBest[1].ms } };
} finally {
  await sql.end({ timeout: 2 });
  await ch.close();
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
