import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestDatabase } from '../db.ts';
import { waitFor } from '../wait.ts';
import { FakeBinanceHistory } from '../../fakes/binance-history.ts';
import { sleep, spawnTickflow, within, type TickflowProcess } from './processes.ts';

/** Long variants (a minute of kills, 50,000 trades) run with TICKFLOW_LONG=1 (npm run test:resilience). */
export const LONG = process.env.TICKFLOW_LONG === '1';

export const FEED = 'binance-kill';

/** tickflow's start line (its logger masks the test database's password, which is the word tickflow). */
export const STARTED = /"msg":"(tickflow|\[redacted\]) started"/;

export interface KillLoopResult {
  fake: FakeBinanceHistory;
  /** The tape's trade ids: first .. first + trades - 1. */
  firstId: bigint;
  trades: number;
  /** Processes killed with -9 (each after its session had landed data). */
  kills: number;
  /** Milliseconds from the first trade to the end of the tape. */
  tapeMs: number;
  /** Milliseconds from each spawn to its start line. */
  startups: number[];
  /** What the run printed, for failure messages. */
  output: string;
}

/**
 * The real `tickflow start` (DATABASE_URL: the test database) capturing a fake Binance's trade
 * tape (consecutive ids), killed with -9 every few seconds while the tape runs and started again
 * at once; the last run sees the tape end and is stopped with Ctrl-C once `settled` holds.
 * recovery: false runs `--only ingest` (no worker: the gaps stay in the ledger, unrecovered).
 */
export async function runKillLoop(db: TestDatabase, opts: {
  trades: number; tapeMs: number; recovery: boolean; settled: (lastId: bigint) => Promise<boolean>; settleMs?: number;
  /** Kills the loop reaches whatever the machine's speed: on a slow one the rest of the tape is stretched. */
  minKills: number;
}): Promise<KillLoopResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tickflow-kill-'));
  const fake = new FakeBinanceHistory({ tradesPerSecond: opts.trades / (opts.tapeMs / 1000), tradeLimit: opts.trades });
  const urls = await fake.start();
  const config = path.join(dir, 'tickflow.config.json');
  writeFileSync(config, JSON.stringify({
    dataDir: dir,
    clickhouse: { enabled: false },
    metrics: { enabled: false },
    feeds: [{ name: FEED, venue: 'binance', channels: ['trade'], instruments: ['BTC/USDT'], urls: { ws: urls.ws, rest: urls.rest } }],
  }));
  const env = { DATABASE_URL: db.url, TICKFLOW_CONFIG: config, TICKFLOW_LOG_LEVEL: 'info' };
  const args = opts.recovery ? ['start'] : ['start', '--only', 'ingest'];
  let output = '';
  let proc: TickflowProcess | undefined;
  const subscribed = async () => {
    const [r] = await db.sql`select count(*)::int as n from ops.session_events where feed = ${FEED} and kind = 'subscribed'`;
    return r!.n;
  };
  const firstId = fake.tapes.get('BTCUSDT')!.firstId;
  let kills = 0;
  try {
    const firstSpawn = performance.now();
    proc = spawnTickflow(args, env);
    await proc.waitForOutput(STARTED, 60_000);
    const startups = [performance.now() - firstSpawn];
    await waitFor(() => fake.connections >= 1, 'the first connection', 20_000);
    fake.startTape();
    const tapeStart = performance.now();
    let tapeEnd = tapeStart + opts.tapeMs;
    const tape = fake.tapes.get('BTCUSDT')!;
    for (;;) {
      // Kill only a run whose session has landed data (its window is a real disconnect), after a
      // random 1-2.5 s of capture, and only if the next run can start before the tape ends.
      await waitFor(async () => (await subscribed()) > kills, 'the run to land its first frames', 60_000, 50);
      await sleep(1000 + Math.random() * 1500);
      // A kill must leave the next run time to start and connect before the tape ends (the
      // slowest start seen, with a margin: a start can be slower than any before it).
      const cycleMs = Math.max(...startups) * 1.5 + 3000;
      if (performance.now() + cycleMs > tapeEnd) {
        if (kills >= opts.minKills) break;
        // Starts are slow here (a loaded machine): the venue trades the rest of the tape more
        // slowly, over one more cycle, so the loop still kills minKills runs.
        const left = opts.trades - tape.trades.length;
        fake.opts.tradesPerSecond = Math.max(1, left / ((cycleMs + 2000) / 1000));
        tapeEnd = performance.now() + cycleMs + 2000;
      }
      await within(proc.kill9(), 10_000, 'kill -9 of tickflow');
      output += proc.output();
      kills++;
      await sleep(Math.random() * 500); // down for a moment more
      const began = performance.now();
      proc = spawnTickflow(args, env);
      await proc.waitForOutput(STARTED, 60_000);
      startups.push(performance.now() - began);
    }
    await waitFor(() => fake.tapeFinished, 'the tape to end', opts.tapeMs + 30_000, 100);
    const tapeMs = performance.now() - tapeStart;
    await waitFor(() => opts.settled(firstId + BigInt(opts.trades) - 1n), 'the captured data to settle', opts.settleMs ?? 60_000, 250);
    const stopped = await within(proc.stop(30_000), 35_000, 'Ctrl-C of tickflow');
    output += proc.output();
    if (stopped.code !== 0) throw new Error(`the last run exited with ${stopped.code ?? stopped.signal}:\n${output.slice(-3000)}`);
    proc = undefined;
    return { fake, firstId, trades: opts.trades, kills, tapeMs, startups, output };
  } finally {
    await proc?.kill9();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
