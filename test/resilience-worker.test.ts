import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinanceHistory } from './fakes/binance-history.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/wait.ts';
import { STARTED } from './support/faults/kill-loop.ts';
import { spawnTickflow, within, type TickflowProcess } from './support/faults/processes.ts';

// The worker process (`tickflow start --only worker`) is killed with -9 in the middle of backfill
// jobs. graphile-worker would leave their locks for four hours; the next start must release them
// at once, and the plan must end with every candle exactly once.
const DAYS = 8 * 7;
const FROM = '2023-01-02';
const TO = '2023-02-27'; // exclusive: 8 weeks

let db: TestDatabase;
let fake: FakeBinanceHistory;
let dir: string;
let env: Record<string, string>;
let proc: TickflowProcess | undefined;

beforeAll(async () => {
  db = await createTestDatabase('wkill');
  fake = new FakeBinanceHistory({ delayMs: 120 });
  await fake.start();
  dir = mkdtempSync(path.join(tmpdir(), 'tickflow-wkill-'));
  const config = path.join(dir, 'tickflow.config.json');
  writeFileSync(config, JSON.stringify({
    dataDir: dir, clickhouse: { enabled: false }, metrics: { enabled: false }, worker: { concurrency: 2 },
    feeds: [{ name: 'binance-spot', venue: 'binance', enabled: false, channels: ['trade'], instruments: ['BTC/USDT'],
              urls: { rest: fake.restUrl } }],
  }));
  env = { DATABASE_URL: db.url, TICKFLOW_CONFIG: config, TICKFLOW_LOG_LEVEL: 'info' };
});

afterAll(async () => {
  await proc?.kill9();
  await fake?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const lockedBy = async (workers: string[]) => {
  const [r] = await db.sql`select count(*)::int as n from graphile_worker.jobs where locked_by = any(${workers})`;
  return r!.n;
};

describe('a worker process killed with -9 mid-job', () => {
  it('leaves no job locked: the next start releases the dead worker\'s jobs at once, and the plan ends exact', async () => {
    proc = spawnTickflow(['start', '--only', 'worker'], env);
    await proc.waitForOutput(STARTED, 60_000);
    await db.sql`select ops.plan_backfill('binance', 'BTC/USDT', 'candles', '1m', ${FROM}::timestamptz, ${TO}::timestamptz, 'test')`;
    const dead = await waitFor(async () => {
      const rows = await db.sql<{ locked_by: string }[]>`
        select distinct locked_by from graphile_worker.jobs where task_identifier = 'backfill_chunk' and locked_at is not null`;
      const [done] = await db.sql`select count(*)::int as n from ops.backfill_chunks where state = 'done'`;
      return rows.length > 0 && done!.n >= 1 ? rows.map((r) => r.locked_by) : undefined;
    }, 'backfill chunks running in the worker', 60_000, 20);
    await within(proc.kill9(), 10_000, 'kill -9 of the worker');
    // Killed mid-job: its jobs are still locked by the dead worker.
    const stuck = await lockedBy(dead!);
    expect(stuck).toBeGreaterThan(0);
    const [mid] = await db.sql`select count(*) filter (where state = 'done')::int as done, count(*)::int as chunks from ops.backfill_chunks`;
    expect(mid!.done).toBeLessThan(mid!.chunks);

    proc = spawnTickflow(['start', '--only', 'worker'], env);
    await proc.waitForOutput(STARTED, 60_000);
    // Released before the worker took its first job, so not after graphile-worker's four hours
    // nor after the next minute's detect_gaps.
    expect(proc.output()).toContain('released the jobs of workers that died mid-job');
    expect(await lockedBy(dead!)).toBe(0);
    await waitFor(async () => {
      const [r] = await db.sql`select count(*) filter (where state <> 'done')::int as left from ops.backfill_chunks`;
      return r!.left === 0;
    }, 'every chunk of the plan to finish', 90_000, 200);
    const [n] = await db.sql`select count(*)::int as n, count(distinct bucket)::int as d, min(bucket) as first, max(bucket) as last
                             from market.candles`;
    expect({ ...n }).toEqual({ n: DAYS * 1440, d: DAYS * 1440,
      first: new Date(`${FROM}T00:00:00Z`), last: new Date(Date.parse(`${TO}T00:00:00Z`) - 60_000) });
    const stopped = await within(proc.stop(), 35_000, 'Ctrl-C of the worker');
    proc = undefined;
    expect(stopped.code).toBe(0);
    // Nothing is left locked or leased once the live worker stopped cleanly.
    const [left] = await db.sql`select (select count(*) from ops.job_leases)::int as leases,
                                       (select count(*) from graphile_worker.jobs where locked_at is not null)::int as locked`;
    expect({ ...left }).toEqual({ leases: 0, locked: 0 });
  }, 180_000);
});
