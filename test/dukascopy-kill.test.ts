import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processData } from 'dukascopy-node';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/wait.ts';
import { FakeDukascopy, tickPath } from './fakes/dukascopy.ts';

// `tickflow backfill --venue dukascopy --kind ticks` as a user runs it (the venue's default
// budget of ten files a second), killed with SIGKILL in the middle of the plan and run again:
// the second run fetches exactly the hour files the first did not record, and every tick of the
// day is stored once, equal to dukascopy-node's decode of the bytes served.
const ROOT = path.join(import.meta.dirname, '..');
const HOUR = 3_600_000;
const FROM = Date.UTC(2019, 1, 4);
const HOURS = 24;
const ARGS = ['backfill', '--venue', 'dukascopy', '--instrument', 'EUR/USD', '--kind', 'ticks',
  '--from', '2019-02-04', '--to', '2019-02-04', '--concurrency', '2']; // --to is a date: that day is included

let db: TestDatabase;
let fake: FakeDukascopy;
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
  db = await createTestDatabase('dukkill');
  fake = new FakeDukascopy({ synthetic: ['EURUSD'], delayMs: 20 });
  await fake.start();
  dir = mkdtempSync(path.join(tmpdir(), 'tickflow-dukkill-'));
  const config = path.join(dir, 'tickflow.config.json');
  writeFileSync(config, JSON.stringify({
    dataDir: dir,
    feeds: [{ name: 'dukascopy-history', venue: 'dukascopy', enabled: false, channels: ['ticks'], instruments: ['EUR/USD'],
              urls: { rest: fake.baseUrl } }],
  }));
  env = { DATABASE_URL: db.url, TICKFLOW_CONFIG: config, TICKFLOW_LOG_LEVEL: 'warn' };
});

afterAll(async () => {
  await fake?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tickflow backfill --venue dukascopy, killed and run again', () => {
  it('fetches only the hour files the killed run did not record, and stores every tick once', async () => {
    const all = Array.from({ length: HOURS }, (_, h) => tickPath('EURUSD', FROM + h * HOUR));
    const first = tickflow(ARGS);
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from market.venue_files`;
      return r!.n >= 8;
    }, 'eight files of the first run to land', 60_000, 20).catch((err: Error) => {
      throw new Error(`${err.message}; tickflow said: ${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await first.exit;
    const recorded = new Set((await db.sql<{ path: string }[]>`select path from market.venue_files`).map((r) => r.path));
    expect(recorded.size).toBeGreaterThanOrEqual(8);
    expect(recorded.size).toBeLessThan(HOURS);
    const requestsAtKill = fake.requests.length;

    const second = tickflow(ARGS);
    expect(await second.exit, second.output()).toBe(0);
    expect(second.output()).toMatch(/\[#{24}\] 1\/1 chunks/);
    expect(second.output()).toMatch(/plan \d+ done/);
    // Exactly the missing files, each once (a file in flight when the first run died was not recorded: it is missing).
    expect([...fake.requests.slice(requestsAtKill)].sort()).toEqual(all.filter((rel) => !recorded.has(rel)).sort());

    let expected = 0;
    for (const [h, rel] of all.entries()) {
      const ticks = processData({ instrument: 'eurusd', requestedTimeframe: 'tick', bufferObjects: [{ url: rel, buffer: fake.served.get(rel)! }],
        priceType: 'bid', volumes: true, volumeUnits: 'millions', ignoreFlats: false });
      const rows = await db.sql<{ ms: string; bid: string; ask: string }[]>`
        select (extract(epoch from quoted_at) * 1000)::bigint::text as ms, bid::text, ask::text from market.bbo
        where symbol = 'EUR/USD' and quoted_at >= ${new Date(FROM + h * HOUR)} and quoted_at < ${new Date(FROM + (h + 1) * HOUR)}
        order by seq`;
      expect(rows.map((r) => [+r.ms, +r.ask, +r.bid]), rel).toEqual(ticks.map((t) => [t[0], t[1], t[2]]));
      expected += ticks.length;
    }
    const [n] = await db.sql<{ n: number; keys: number }[]>`
      select count(*)::int as n, count(distinct (quoted_at, seq))::int as keys from market.bbo`;
    expect({ ...n }).toEqual({ n: expected, keys: expected });
    // No lease is left and no job waits for an unfinished chunk. (The second run's own job can
    // still read locked after it exits: graphile-worker completes a job after the task returns
    // without the shutdown always waiting for that; its chunk is done, so nothing is fetched again.)
    const [left] = await db.sql`select (select count(*) from ops.job_leases)::int as leases,
      (select count(*) from graphile_worker.jobs j where j.task_identifier = 'backfill_chunk'
         and not exists (select 1 from ops.backfill_chunks c where 'backfill_chunk:' || c.chunk_id = j.key and c.state = 'done'))::int as unfinished,
      (select count(*) from ops.backfill_chunks where state <> 'done')::int as chunks_not_done`;
    expect({ ...left }).toEqual({ leases: 0, unfinished: 0, chunks_not_done: 0 });
  }, 150_000);
});
