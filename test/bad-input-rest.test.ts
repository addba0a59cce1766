import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { FakeBinanceHistory, klineRow } from './fakes/binance-history.ts';

// Bad answers from a venue's REST history in the middle of a backfill, from the local fake
// Binance over real sockets, through real graphile-worker jobs into the real Postgres. What must
// happen to each:
//   429 with Retry-After   every worker pauses until then, the request is repeated; the answer is
//                          landed and quarantined: "venue error -1003 (HTTP 429): Too much request weight used; ..."
//   418 with Retry-After   nothing is sent until the ban ends, then the request is repeated; the answer
//                          is quarantined: "venue error -1003 (HTTP 418): Way too much request weight used; IP banned until ..."
//   500 / 503 mid-plan     retried with backoff; the answer is quarantined: "venue error -1001 (HTTP 500): Internal error; ..."
//   a body cut short       retried; nothing of it is landed (no answer arrived whole)
// and the plan ends done with every candle of the range exactly once, as the venue serves it.

const MIN = 60_000;
const FROM = Date.UTC(2021, 10, 1);
const TO = Date.UTC(2021, 10, 8);

let db: TestDatabase;
let fake: FakeBinanceHistory;
let workers: HistoryWorkers;

beforeAll(async () => {
  db = await createTestDatabase('badrest');
  // Our budget allows 40 weight a second; the venue only 8 (another client shares our address),
  // so the venue answers 429 and we must honour its Retry-After.
  await db.sql`select ops.set_rate_limit('binance', 'request_weight', 'weight', '1 second'::interval, 40, '100 milliseconds')`;
  fake = new FakeBinanceHistory({ windowMs: 1000, weightLimit: 8, graceMs: 1000, banSeconds: 2, delayMs: 5 });
  await fake.start();
  workers = await startHistoryWorkers(db.url, fake.restUrl, { concurrency: 2, requestsPerJob: 4 });
});
afterAll(async () => {
  await workers?.stop();
  await fake?.stop();
  await db?.drop();
});

/** Decimal text without trailing zeros (the venue's 8-decimal strings and Postgres numerics compare alike). */
const trim = (d: string) => (d.includes('.') ? d.replace(/0+$/, '').replace(/\.$/, '') : d);

describe('bad REST answers in the middle of a backfill', () => {
  it('429, 418, 5xx and a cut body: every candle once, each unusable answer quarantined with its reason', async () => {
    const page = (k: number) => (u: URL) => u.pathname === '/api/v3/klines' && u.searchParams.get('startTime') === String(FROM + k * 1000 * MIN);
    fake.fail(page(2), 'status500', 1);
    fake.fail(page(5), 'status503', 1);
    fake.fail(page(8), 'cut', 1);
    // A ban in the middle of the plan (as if another client on our address had earned it).
    fake.fail(page(6), 'ban418', 1);
    const [p] = await db.sql<{ id: string }[]>`
      select ops.plan_backfill('binance', 'BTC/USDT', 'candles', '1m', ${new Date(FROM).toISOString()}::timestamptz,
                               ${new Date(TO).toISOString()}::timestamptz)::text as id`;
    const progress = await waitFor(async () => {
      const [row] = await db.sql`select state, chunks_failed from ops.backfill_progress where plan_id = ${p!.id}`;
      return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
    }, 'the plan to finish', 50_000, 100);
    expect({ ...progress }).toEqual({ state: 'done', chunks_failed: 0 });

    const answered = (s: number) => fake.requests.filter((r) => r.path === '/api/v3/klines' && r.status === s).length;
    expect(answered(429)).toBeGreaterThan(0);
    expect(answered(418)).toBeGreaterThan(0);
    expect(answered(500)).toBe(1);
    expect(answered(503)).toBe(1);

    // Every candle of the range once, with the values the venue served.
    const rows = await db.sql<{ ms: string; open: string; high: string; low: string; close: string; volume: string }[]>`
      select (extract(epoch from bucket) * 1000)::bigint::text as ms, open::text, high::text, low::text, close::text, volume::text
      from market.candles where bucket >= ${new Date(FROM)} and bucket < ${new Date(TO)} order by bucket`;
    expect(rows).toHaveLength((TO - FROM) / MIN);
    for (const r of rows) {
      const k = JSON.parse(klineRow(Number(r.ms), MIN)) as string[];
      expect([r.open, r.high, r.low, r.close, r.volume].map(trim)).toEqual([k[1]!, k[2]!, k[3]!, k[4]!, k[5]!].map(trim));
    }

    // Each unusable answer that arrived whole is in the quarantine, with the venue's code, the status and its message.
    const q = await db.sql<{ reason: string; request: string }[]>`
      select q.reason, f.request from staging.quarantine q join staging.frames f using (frame_id) where q.stream = 'klines'`;
    const withStatus = (s: number) => q.filter((r) => r.request.endsWith(` ${s}`));
    expect(withStatus(429).length).toBe(answered(429));
    expect(withStatus(418).length).toBe(answered(418));
    expect(withStatus(500).length + withStatus(503).length).toBe(2);
    expect(q).toHaveLength(answered(429) + answered(418) + 2);
    for (const r of withStatus(429)) expect(r.reason).toMatch(/^venue error -1003 \(HTTP 429\): Too much request weight used; /);
    for (const r of withStatus(418)) expect(r.reason).toMatch(/^venue error -1003 \(HTTP 418\): Way too much request weight used; IP banned until \d+/);
    expect(withStatus(500).map((r) => r.reason)).toEqual(['venue error -1001 (HTTP 500): Internal error; unable to process your request. Please try again.']);
    expect(withStatus(503).map((r) => r.reason)).toEqual(['venue error -1001 (HTTP 503): Internal error; unable to process your request. Please try again.']);

    // The throttling is on record for every worker to see.
    const [s] = await db.sql<{ throttled: number; bans: number }[]>`select throttled::int, bans::int from ops.rate_state where venue = 'binance'`;
    expect(s!.throttled).toBe(answered(429));
    expect(s!.bans).toBeGreaterThan(0);
  });
});
