import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/wait.ts';
import { FakeBinanceHistory } from './fakes/binance-history.ts';

// `tickflow backfill` as a user runs it, killed with SIGKILL in the middle of the plan and run
// again: the second run resumes, never fetches a chunk the first one finished, and ends with
// every candle of the range exactly once.
const ROOT = path.join(import.meta.dirname, '..');
const WEEKS = 16;
const ARGS = ['backfill', '--venue', 'binance', '--instrument', 'BTC/USDT', '--kind', 'candles', '--timeframe', '1m',
  '--from', '2023-01-02', '--to', '2023-04-23', '--concurrency', '2']; // --to is a date: that day is included

let db: TestDatabase;
let fake: FakeBinanceHistory;
let dir: string;
let env: Record<string, string>;

function tickflow(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickflow.js'), ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

beforeAll(async () => {
  db = await createTestDatabase('bfkill');
  fake = new FakeBinanceHistory({ delayMs: 25 });
  await fake.start();
  dir = mkdtempSync(path.join(tmpdir(), 'tickflow-bfkill-'));
  const config = path.join(dir, 'tickflow.config.json');
  writeFileSync(config, JSON.stringify({
    dataDir: dir,
    feeds: [{ name: 'binance-spot', venue: 'binance', enabled: false, channels: ['trade'], instruments: ['BTC/USDT'],
              urls: { rest: fake.restUrl } }],
  }));
  env = { DATABASE_URL: db.url, TICKFLOW_CONFIG: config, TICKFLOW_LOG_LEVEL: 'warn' };
});

afterAll(async () => {
  await fake?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tickflow backfill, killed and run again', () => {
  it('resumes without redoing finished chunks and without duplicates, to the exact row count', async () => {
    const first = tickflow(ARGS);
    const doneAtKill = await waitFor(async () => {
      const rows = await db.sql<{ chunk_id: string; from_ms: string; to_ms: string }[]>`
        select chunk_id::text, (extract(epoch from chunk_from) * 1000)::bigint::text as from_ms,
               (extract(epoch from chunk_to) * 1000)::bigint::text as to_ms
        from ops.backfill_chunks where state = 'done'`;
      return rows.length >= 4 ? rows : undefined;
    }, 'four chunks of the first run to finish', 45_000, 20);
    first.child.kill('SIGKILL');
    await first.exit;
    const requestsAtKill = fake.requests.length;
    const [mid] = await db.sql`select count(*) filter (where state = 'done')::int as done,
                                      count(*) filter (where state = 'running')::int as running,
                                      count(*)::int as chunks from ops.backfill_chunks`;
    expect(mid!.chunks).toBe(WEEKS);
    expect(mid!.done).toBeLessThan(WEEKS);
    expect(mid!.running).toBeGreaterThan(0); // killed mid-chunk: those jobs were locked by the dead process

    const second = tickflow(ARGS);
    expect(await second.exit).toBe(0);
    const out = second.output();
    expect(out).toMatch(/\[#{24}\] 16\/16 chunks  [\d,]+ rows \([\d,]+ new\)/);
    expect(out).toMatch(/plan \d+ done/);

    const [n] = await db.sql`select count(*)::int as n, count(distinct bucket)::int as d, min(bucket) as first, max(bucket) as last
                             from market.candles`;
    expect({ ...n }).toEqual({ n: WEEKS * 7 * 1440, d: WEEKS * 7 * 1440,
      first: new Date('2023-01-02T00:00:00Z'), last: new Date('2023-04-23T23:59:00Z') });
    // Chunks finished before the kill were not fetched again.
    const refetched = fake.requests.slice(requestsAtKill).filter((r) => {
      const start = Number(new URLSearchParams(r.query).get('startTime'));
      return doneAtKill!.some((c) => start >= Number(c.from_ms) && start < Number(c.to_ms));
    });
    expect(refetched).toEqual([]);
    // Nothing stays locked by the dead process. A job it had not completed for a chunk it did
    // finish may still wait in the queue: it is free, and ends at once when a worker takes it.
    const [left] = await db.sql`
      select (select count(*) from ops.job_leases)::int as leases,
             (select count(*) from graphile_worker.jobs where task_identifier = 'backfill_chunk' and locked_at is not null)::int as locked,
             (select count(*) from graphile_worker.jobs j
              where j.task_identifier = 'backfill_chunk'
                and (j.key is null or not exists (select 1 from ops.backfill_chunks c
                                                  where 'backfill_chunk:' || c.chunk_id = j.key and c.state = 'done')))::int as unfinished`;
    expect({ ...left }).toEqual({ leases: 0, locked: 0, unfinished: 0 });
    // Both runs' plans share the chunks, and both read done now.
    const plans = await db.sql`select state, chunks, chunks_done from ops.backfill_progress order by plan_id`;
    expect(plans.map((p) => ({ ...p }))).toEqual([
      { state: 'done', chunks: WEEKS, chunks_done: WEEKS }, { state: 'done', chunks: WEEKS, chunks_done: WEEKS }]);
  });
});
