// History and recovery figures, printed as one JSON object (read by test/bench/run.ts):
//   1. two years of 1-minute candles for one instrument (2024-01-01 .. 2025-12-31, 1,052,640
//      klines) backfilled from the local fake venue with no rate limit, end to end: plan, jobs,
//      REST pages, landing in staging, normalization into market.candles;
//   2. a 60-second outage of the live trade stream: from the end of the outage to a trades table
//      without a missing id (reconnect, gap closed, recover_gap job, historicalTrades by id).
// Embedded Postgres with fsync on, the fake venue in its own process, the pipeline in this one.
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
import { WsFeed } from '../../ingesters/runtime/connection.ts';
import { binance } from '../../ingesters/binance.ts';
import { freePort } from '../support/global-setup.ts';

const JOBS = Number(process.env.BENCH_BACKFILL_JOBS ?? 3);
const OUTAGE_SECONDS = Number(process.env.BENCH_OUTAGE_SECONDS ?? 60);
const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
const quiet = new WorkerLogger(() => (level, message) => { if (level === 'error') log.error(message); });

const dir = mkdtempSync(path.join(os.tmpdir(), 'tickflow-bench-history-'));
const db = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: true, log });
const sql = connect(db.url, { max: 4 });
const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fake-history-process.ts')],
  { stdio: ['pipe', 'pipe', 'inherit'] });
// Lines of the fake's stdout, kept until asked for (READY may come before anyone waits for it).
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
const until = async <T>(check: () => Promise<T | undefined>, ms: number, what: string): Promise<T> => {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const result: Record<string, number> = {};
try {
  await migrate(sql, db.url, log);
  const [ws, rest] = await line('READY ');
  const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'bench-binance', venue: 'binance', enabled: false,
    channels: ['trade'], instruments: ['BTC/USDT'], urls: { ws: ws!, rest: rest! } }] } });
  registerHistoryRuntime({ url: db.url, config, log });
  const all = await loadTasks();
  const taskList: TaskList = { backfill_chunk: all.backfill_chunk!, recover_gap: all.recover_gap! };
  const worker = await run({ connectionString: db.url, concurrency: JOBS, noHandleSignals: true, pollInterval: 100, taskList, logger: quiet });

  // 1. Two years of 1m candles, no rate limit.
  await sql`select ops.set_rate_limit('binance', 'request_weight', 'weight', interval '1 minute', 2000000000)`;
  const t0 = performance.now();
  const [plan] = await sql<{ id: string }[]>`
    select ops.plan_backfill('binance', 'BTC/USDT', 'candles', '1m', '2024-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'bench')::text as id`;
  const done = await until(async () => {
    const [p] = await sql`select state, pages::int, rows_new::bigint::text as rows from ops.backfill_progress where plan_id = ${plan!.id}`;
    return p && p.state !== 'queued' && p.state !== 'running' ? p : undefined;
  }, 600_000, 'the two-year backfill');
  const seconds = (performance.now() - t0) / 1000;
  const [n] = await sql<{ n: number }[]>`select count(*)::int as n from market.candles`;
  if (done.state !== 'done' || n!.n !== 731 * 1440) throw new Error(`bench: backfill ended ${done.state} with ${n!.n} candles`);
  Object.assign(result, { candles: n!.n, candleRequests: done.pages, candleSeconds: Number(seconds.toFixed(2)),
    candlesPerSecond: Math.round(n!.n / seconds), backfillJobs: JOBS });
  log.warn(result, 'two years of 1m candles');

  // 2. A 60 s outage of the live trade stream, then a trades table without a missing id.
  if (OUTAGE_SECONDS > 0) {
    const lander = new Lander(db.url, config.landing, log);
    // The feed reconnects quickly after the venue returns (backoff capped at 2 s, no circuit
    // breaker): the figure is about recovery, not about the reconnect policy.
    const feed = new WsFeed(binance, { ...config.feeds[0]!, enabled: true, staleAfterSeconds: 15 }, lander, log,
      { backoffBaseMs: 250, backoffCapMs: 2000, circuitAfter: 1_000_000 });
    feed.start();
    child.stdin!.write('tape\n');
    await until(async () => {
      const [r] = await sql<{ n: number }[]>`select count(*)::int as n from market.trades`;
      return r!.n >= 200 ? true : undefined;
    }, 30_000, 'live trades');
    child.stdin!.write(`outage ${OUTAGE_SECONDS * 1000}\n`);
    const [endText] = await line('OUTAGE_END ');
    const outageEnd = Number(endText);
    const gapFree = await until(async () => {
      const [g] = await sql<{ state: string; from_seq: string; to_seq: string; gap_to: Date | null }[]>`
        select state, from_seq::text, to_seq::text, gap_to from quality.gaps where stream = 'trade' and detected_by = 'disconnect'`;
      if (!g || g.state !== 'recovered') return undefined;
      const [m] = await sql<{ missing: string }[]>`
        select (max(seq) - min(seq) + 1 - count(distinct seq))::text as missing from market.trades`;
      return m!.missing === '0' ? { at: Date.now(), g } : undefined;
    }, 120_000, 'a gap-free trades table');
    Object.assign(result, {
      outageSeconds: OUTAGE_SECONDS,
      missingIds: Number(BigInt(gapFree.g.to_seq) - BigInt(gapFree.g.from_seq) + 1n),
      reconnectAfterOutageSeconds: Number(((gapFree.g.gap_to!.getTime() - outageEnd) / 1000).toFixed(2)),
      gapFreeAfterOutageSeconds: Number(((gapFree.at - outageEnd) / 1000).toFixed(2)),
      gapFreeAfterReconnectSeconds: Number(((gapFree.at - gapFree.g.gap_to!.getTime()) / 1000).toFixed(2)),
    });
    await feed.stop();
    await lander.close();
  }
  await worker.stop();
  console.log(JSON.stringify(result));
} finally {
  child.kill('SIGTERM');
  await sql.end({ timeout: 2 });
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}
