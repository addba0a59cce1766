// Dukascopy history figures, printed as one JSON object (read by test/bench/run.ts):
//   1. ticks landed and normalized per second: decoded hour files (captured EURUSD hours, and
//      synthetic ones re-encoded from them) through the landing writer into staging and by SQL
//      into market.quote_blocks, twelve files a transaction as the backfill lands them; no HTTP;
//   2. one instrument-year of hour files end to end: `ops.plan_backfill('dukascopy', 'EUR/USD',
//      'ticks', ...)` for a year (8,760 hour files; Friday 22:00 to Sunday 22:00 UTC empty, the
//      other hours synthetic files made from the captured hours of the same time of day: 3,733
//      ticks an hour at night, 10,546 in the European day, 2,114 in the evening, prices moved by
//      a few points per day, LZMA-compressed as the venue's are: test/fakes/dukascopy.ts) served by a local datafeed on 127.0.0.1 in its own process, fetched
//      by the backfill jobs (no request budget), decoded, landed, normalized;
//   3. the floor under it: market.quotes rows stored per second by one INSERT ... SELECT of
//      1,000,000 generated quotes (no staging, no JSON), and the year's ticks at that rate.
// Embedded Postgres with fsync on, the pipeline in this process.
//   npx tsx test/bench/dukascopy-backfill.ts            (BENCH_DUKASCOPY_YEAR=2018, BENCH_BACKFILL_JOBS=4,
//                                                        BENCH_DUKASCOPY_LAND_HOURS=120; BENCH_DUKASCOPY_DAYS to cut the year)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Logger as WorkerLogger, run, type TaskList } from 'graphile-worker';
import { startEmbedded, connect } from '../../src/db.ts';
import { migrate } from '../../src/migrate.ts';
import { createLogger } from '../../src/log.ts';
import { loadConfig } from '../../src/config.ts';
import { registerHistoryRuntime } from '../../src/history.ts';
import { loadTasks } from '../../src/worker.ts';
import { Lander } from '../../ingesters/runtime/lander.ts';
import { dukascopyFrame } from '../../ingesters/dukascopy/land.ts';
import { freePort } from '../support/global-setup.ts';
import { compressedByXz, fxClosed, syntheticFile, tickPath } from '../fakes/dukascopy.ts';

const YEAR = Number(process.env.BENCH_DUKASCOPY_YEAR ?? 2018);
const DAYS = Number(process.env.BENCH_DUKASCOPY_DAYS ?? 0); // 0: the whole year
// Backfill jobs at once: tickflow start's worker concurrency by default (config worker.concurrency).
const JOBS = Number(process.env.BENCH_BACKFILL_JOBS ?? loadConfig({ env: {} }).worker.concurrency);
const LAND_HOURS = Number(process.env.BENCH_DUKASCOPY_LAND_HOURS ?? 120);
const PER_BATCH = 12; // files a transaction, as the backfill lands them (src/history.ts: pagesPerBatch)
const HOUR = 3_600_000;
const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
const quiet = new WorkerLogger(() => (level, message) => { if (level === 'error') log.error(message); });
const load = () => os.loadavg().map((l) => Number(l.toFixed(2)));

const dir = mkdtempSync(path.join(os.tmpdir(), 'tickflow-bench-dukascopy-'));
const db = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: true, log });
const sql = connect(db.url, { max: 4 });
const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'dukascopy-datafeed-process.ts')],
  { stdio: ['pipe', 'pipe', 'inherit'] });
const received: string[] = [];
const waiters: Array<() => void> = [];
createInterface({ input: child.stdout! }).on('line', (l) => { received.push(l); for (const w of waiters.splice(0)) w(); });
async function line(prefix: string): Promise<string[]> {
  for (;;) {
    const k = received.findIndex((l) => l.startsWith(prefix));
    if (k >= 0) return received.splice(k, 1)[0]!.split(' ').slice(1);
    await new Promise<void>((resolve) => waiters.push(resolve));
  }
}

const result: Record<string, unknown> = {};
try {
  await migrate(sql, db.url, log);

  // 1. Land and normalize decoded files (the year before the end-to-end one, open hours only).
  const hours: number[] = [];
  for (let t = Date.UTC(YEAR - 1, 0, 1); hours.length < LAND_HOURS; t += HOUR) if (!fxClosed(t)) hours.push(t);
  await sql`select ops.ensure_partitions(t::regclass, ${new Date(hours[0]!)}, ${new Date(hours.at(-1)! + HOUR)})
            from unnest(array['market.quotes', 'market.quote_blocks']) t`;
  const frames = hours.map((t, i) => dukascopyFrame({ path: tickPath('EURUSD', t), body: syntheticFile(t), point: 100_000,
    receivedAt: new Date().toISOString(), seq: i }));
  const lander = new Lander(db.url, { maxBatchFrames: PER_BATCH, flushIntervalMs: 20, maxBufferedBytes: 256 << 20 }, log);
  let quotes = 0;
  lander.onBatch((b) => { quotes += Number(b.counts?.quotes ?? 0); });
  const l0 = performance.now();
  for (let k = 0; k < frames.length; k += PER_BATCH) {
    for (const f of frames.slice(k, k + PER_BATCH)) lander.offer(f);
    await lander.flush();
  }
  const landSeconds = (performance.now() - l0) / 1000;
  await lander.close();
  Object.assign(result, { fileEncoder: compressedByXz() ? 'xz' : '@napi-rs/lzma', landFiles: frames.length, landTicks: quotes, landSeconds: Number(landSeconds.toFixed(2)),
    ticksLandedPerSecond: Math.round(quotes / landSeconds), landLoad: load() });
  log.warn(result, 'ticks landed and normalized');

  // 2. A year of hour files through the backfill engine.
  const [base] = await line('READY ');
  const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'bench-dukascopy', venue: 'dukascopy', enabled: false,
    channels: ['ticks'], instruments: ['EUR/USD'], urls: { rest: base! } }] } });
  registerHistoryRuntime({ url: db.url, config, log });
  const all = await loadTasks();
  const taskList: TaskList = { backfill_chunk: all.backfill_chunk! };
  await sql`select ops.set_rate_limit('dukascopy', 'files', 'requests', interval '1 second', 1000000, interval '0')`;
  const worker = await run({ connectionString: db.url, concurrency: JOBS, noHandleSignals: true, pollInterval: 100, taskList, logger: quiet });
  const from = new Date(Date.UTC(YEAR, 0, 1));
  const to = DAYS > 0 ? new Date(from.getTime() + DAYS * 24 * HOUR) : new Date(Date.UTC(YEAR + 1, 0, 1));
  const load0 = load();
  const t0 = performance.now();
  const [plan] = await sql<{ id: string }[]>`
    select ops.plan_backfill('dukascopy', 'EUR/USD', 'ticks', null, ${from}, ${to}, 'bench')::text as id`;
  let done: Record<string, any> | undefined;
  while (!done) {
    await new Promise((r) => setTimeout(r, 250));
    const [p] = await sql`select state, chunks, pages::bigint::text as pages, rows_new::bigint::text as rows from ops.backfill_progress where plan_id = ${plan!.id}`;
    if (p && p.state !== 'queued' && p.state !== 'running') done = p;
  }
  const seconds = (performance.now() - t0) / 1000;
  const load1 = load();
  await worker.stop();
  child.stdin!.write('count\n');
  const [requests] = await line('REQUESTS ');
  const [f] = await sql<{ files: number; empty: number; ticks: string }[]>`
    select count(*)::int as files, count(*) filter (where records = 0)::int as empty, sum(records)::text as ticks
    from market.venue_files where venue = 'dukascopy' and period_from >= ${from} and period_from < ${to}`;
  // Quotes of both stores (market.quotes rows, market.quote_blocks ticks): what market.quotes_between() presents.
  const [q] = await sql<{ n: string }[]>`
    select ((select count(*) from market.quotes where quoted_at >= ${from} and quoted_at < ${to})
            + (select coalesce(sum(ticks), 0) from market.quote_blocks where hour_start >= ${from} and hour_start < ${to}))::text as n`;
  if (done.state !== 'done' || f!.files !== (to.getTime() - from.getTime()) / HOUR || q!.n !== f!.ticks) {
    throw new Error(`bench: the year ended ${done.state}, ${f!.files} files, ${q!.n} quotes of ${f!.ticks} ticks`);
  }
  Object.assign(result, {
    yearFiles: f!.files, yearEmptyFiles: f!.empty, yearTicks: Number(q!.n), yearRequests: Number(requests),
    yearSeconds: Number(seconds.toFixed(1)), yearTicksPerSecond: Math.round(Number(q!.n) / seconds),
    yearFilesPerSecond: Math.round(f!.files / seconds), backfillJobs: JOBS, chunks: done.chunks, yearLoadBefore: load0, yearLoadAfter: load1,
  });

  // 3. The floor under the year: market.quotes rows one INSERT ... SELECT of generated quotes
  // stores per second (keys, indexes, checks and WAL as for real quotes; no staging, no JSON).
  const [gi] = await sql<{ id: number }[]>`
    insert into market.instruments (venue, venue_symbol, symbol, asset_class) values ('bench', 'GENQUOTES', 'GEN/QUOTES', 'forex')
    returning instrument_id as id`;
  const genFrom = new Date(Date.UTC(YEAR + 1, 0, 2));
  await sql`select ops.ensure_partitions('market.quotes'::regclass, ${genFrom}, ${new Date(genFrom.getTime() + 4 * 24 * HOUR)})`;
  const g0 = performance.now();
  await sql`
    insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, time_source, received_at, source, frame_id)
    select ${gi!.id}, ${genFrom}::timestamptz + n * interval '300 ms', staging.epoch_us_of(${genFrom}::timestamptz) + n::bigint * 300000,
           round(1.2 + (n % 1000) / 100000.0, 5), 1000000, round(1.2001 + (n % 1000) / 100000.0, 5), 1500000, 'venue', now(), 'file', n
    from generate_series(1, 1000000) n`;
  const insertRate = Math.round(1_000_000 / ((performance.now() - g0) / 1000));
  Object.assign(result, { quotesInsertPerSecond: insertRate, yearAtInsertRateSeconds: Math.round(Number(q!.n) / insertRate) });
  console.log(JSON.stringify(result));
} finally {
  child.kill('SIGTERM');
  await sql.end({ timeout: 2 });
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}
