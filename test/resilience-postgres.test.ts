import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { runningPostmaster, startEmbedded, type Database } from '../src/db.ts';
import { FakeBinanceHistory } from './fakes/binance-history.ts';
import { freePort } from './support/global-setup.ts';
import { quietLog } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';
import { FEED, LONG, STARTED } from './support/faults/kill-loop.ts';
import { killPostgres, restartPostgres, sleep, spawnTickflow, within, type TickflowProcess } from './support/faults/processes.ts';

// The tickflow process (the real CLI) captures a venue's trade tape while its Postgres server is
// killed with -9 (the postmaster; its backends die with it) and started again twenty times. The
// process is never restarted: its landing writer must retry each batch until it commits, its
// worker must survive, and afterwards every frame it accepted is in staging exactly once, in
// whole batches, and every trade of the tape is in market.trades once.
const KILLS = 20;
const TRADES = LONG ? 50_000 : 6_000;
const RATE = LONG ? 1000 : 300; // trades per second

let dir: string;
let port: number;
let db: Database;
let fake: FakeBinanceHistory;
let proc: TickflowProcess | undefined;
let sql: postgres.Sql;
const kills: Array<{ pid: number; stragglers: number; downMs: number }> = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tickflow-pgkill-'));
  port = await freePort();
  db = await startEmbedded({ dir: path.join(dir, 'pg'), port, fsync: false, log: quietLog });
  fake = new FakeBinanceHistory({ tradesPerSecond: RATE, tradeLimit: TRADES });
  const urls = await fake.start();
  const config = path.join(dir, 'tickflow.config.json');
  writeFileSync(config, JSON.stringify({
    dataDir: dir, clickhouse: { enabled: false }, metrics: { enabled: false },
    feeds: [{ name: FEED, venue: 'binance', channels: ['trade'], instruments: ['BTC/USDT'], urls: { ws: urls.ws, rest: urls.rest } }],
  }));
  proc = spawnTickflow(['start'], { DATABASE_URL: db.url, TICKFLOW_CONFIG: config, TICKFLOW_LOG_LEVEL: 'warn' });
  await waitFor(() => fake.connections >= 1, 'tickflow to connect to the venue', 90_000, 100);
  await sleep(300);
  fake.startTape();
  for (let k = 0; k < KILLS; k++) {
    await sleep(100 + Math.random() * 400);
    const began = performance.now();
    const killed = await within(killPostgres(path.join(dir, 'pg')), 15_000, 'kill -9 of Postgres');
    await sleep(Math.random() * 300);
    db = await within(restartPostgres(path.join(dir, 'pg'), port), 60_000, 'Postgres restart');
    kills.push({ ...killed, downMs: performance.now() - began });
  }
  await waitFor(() => fake.tapeFinished, 'the tape to end', 120_000, 100);
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  const last = String(fake.tapes.get('BTCUSDT')!.nextId - 1n);
  await waitFor(async () => (await sql`select 1 from market.trades where seq = ${last}::bigint`).length === 1,
    'the tape\'s last trade to land', 90_000, 200).catch(async (err: Error) => {
    const [s] = await sql`select count(*)::int as trades, max(seq)::text as last, (select count(*)::int from ops.sessions) as sessions,
                                 (select max(landed_at) from ops.batches) as landed from market.trades`;
    throw new Error(`${err.message}\n${JSON.stringify(s)}, venue connections ${fake.connections}\n${proc!.output().slice(-4000)}`);
  });
}, (LONG ? 400 : 240) * 1000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await proc?.kill9();
  await fake?.stop();
  const pid = runningPostmaster(path.join(dir, 'pg'));
  if (pid) { process.kill(pid, 'SIGKILL'); await sleep(500); }
  rmSync(dir, { recursive: true, force: true });
});

describe(`Postgres killed with -9 and restarted ${KILLS} times while tickflow captures`, () => {
  it('keeps the same tickflow process running: it reconnected by itself every time', async () => {
    expect(kills.length).toBe(KILLS);
    expect(proc!.child.exitCode).toBeNull();
    expect(proc!.child.signalCode).toBeNull();
    // It kept landing after the last restart, on new connections it opened itself.
    const [b] = await sql`select count(*)::int as n from ops.batches where landed_at > now() - interval '2 minutes'`;
    expect(b!.n).toBeGreaterThan(0);
    // The kills hit the landing writer: it retried batches (with their ids) until they committed.
    const retries = proc!.output().split('\n').filter((l) => l.includes('landing batch failed; retrying the same batch')).length;
    expect(retries).toBeGreaterThan(0);
    const replaced = proc!.output().split('\n').filter((l) => l.includes('worker pool replaced')).length;
    console.log(`postgres kills: ${kills.length}, ${retries} landing retries, ${replaced} worker pools replaced, down ${Math.round(Math.min(...kills.map((k) => k.downMs)))}..${Math.round(Math.max(...kills.map((k) => k.downMs)))} ms each, ${kills.reduce((s, k) => s + k.stragglers, 0)} backends needed a second kill`);
  });

  it('lost no accepted frame and landed none twice: each session\'s sequence is whole', async () => {
    const rows = await sql<{ session_id: string; frames: number; seqs: number; first: number; last: number }[]>`
      select session_id::text, count(*)::int as frames, count(distinct seq)::int as seqs, min(seq)::int as first, max(seq)::int as last
      from staging.frames where venue = 'binance' group by session_id`;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect({ frames: r.frames, seqs: r.seqs, first: r.first }).toEqual({ frames: r.last, seqs: r.last, first: 1 });
  });

  it('shows no partial batch: every committed batch holds exactly the frames it recorded', async () => {
    const partial = await sql`select b.batch_id from ops.batches b left join staging.frames f using (batch_id)
                              group by b.batch_id, b.frames having count(f.frame_id) <> b.frames`;
    expect(partial).toEqual([]);
    const [n] = await sql`select count(*)::int as batches from ops.batches`;
    expect(n!.batches).toBeGreaterThan(1);
  });

  it(`holds the tape's ${TRADES.toLocaleString('en')} trades exactly once`, async () => {
    const tape = fake.tapes.get('BTCUSDT')!;
    const [t] = await sql`select count(*)::int as n, count(distinct seq)::int as ids, min(seq)::text as first, max(seq)::text as last
                          from market.trades`;
    expect({ ...t }).toEqual({ n: TRADES, ids: TRADES, first: String(tape.firstId), last: String(tape.firstId + BigInt(TRADES) - 1n) });
    // The venue connection never dropped: every trade came live, none needed recovery.
    const [g] = await sql`select count(*)::int as n from quality.gaps`;
    expect(g!.n).toBe(0);
  });
});
