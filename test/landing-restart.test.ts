import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startEmbedded, type Database, type Sql } from '../src/db.ts';
import { migrate } from '../src/migrate.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { receiveTime } from '../ingesters/runtime/clock.ts';
import { freePort } from './support/global-setup.ts';
import { quietLog } from './support/feeds.ts';
import { loadSpotCapture } from './support/binance-capture.ts';

// Postgres is stopped and started again (fast shutdown, as a crash or restart does to open
// transactions) while the landing writer keeps accepting frames. Every accepted frame must be in
// staging exactly once afterwards, and no batch may be half visible.
const trade = loadSpotCapture().frames.find((f) => f.text.includes('@trade'))!.text;
let dir: string;
let port: number;
let db: Database;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tickflow-restart-'));
  port = await freePort();
  db = await startEmbedded({ dir: path.join(dir, 'pg'), port, fsync: false, log: quietLog });
  const sql = connect(db.url, { max: 2 });
  await migrate(sql, db.url, quietLog);
  await sql.end();
});

afterAll(async () => {
  await db?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the landing writer while Postgres restarts', () => {
  it('loses no accepted frame and lands none twice across three restarts', async () => {
    const sql: Sql = connect(db.url, { max: 4 });
    const lander = new Lander(db.url, { maxBatchFrames: 1000, flushIntervalMs: 10, maxBufferedBytes: 64 << 20 }, quietLog);
    let seq = 0;
    const offerSome = (n: number) => {
      for (let i = 0; i < n; i++) {
        seq++;
        lander.offer({ venue: 'binance', stream: 'trade', sessionId: null, seq, receivedAt: receiveTime(), source: 'ws',
          request: null, payload: trade.replace(/"t":\d+/, `"t":${seq}`) });
      }
    };
    const producer = setInterval(() => offerSome(20), 10);
    for (let restart = 0; restart < 3; restart++) {
      await new Promise((r) => setTimeout(r, 300));
      await db.stop();
      await new Promise((r) => setTimeout(r, 300));
      db = await startEmbedded({ dir: path.join(dir, 'pg'), port, fsync: false, log: quietLog });
    }
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(producer);
    await lander.close();
    expect(lander.failedAttempts).toBeGreaterThan(0); // the restarts really hit the writer
    const [r] = await sql`select count(*)::int as frames, count(distinct seq)::int as seqs, max(seq)::int as max
                          from staging.frames`;
    expect(r).toEqual({ frames: seq, seqs: seq, max: seq });
    const [t] = await sql`select count(*)::int as n from market.trades`;
    expect(t!.n).toBe(seq);
    // Every committed batch is whole: its recorded frame count matches the frames it holds.
    const partial = await sql`select b.batch_id from ops.batches b
                              left join staging.frames f using (batch_id)
                              group by b.batch_id, b.frames having count(f.frame_id) <> b.frames`;
    expect(partial).toEqual([]);
    await sql.end();
  }, 120_000);
});
