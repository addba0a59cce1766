import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { FakeBinanceHistory, type RequestRecord } from './fakes/binance-history.ts';

// The venue's request-weight budget is held in Postgres and drawn by every worker: here two
// graphile-worker pools (two "processes") run ten backfill chunks at once against a fake venue
// that enforces the limit like Binance (per fixed window; 429 with Retry-After; 418 when a
// client keeps going). Windows are one second long so the test runs in seconds.
const WINDOW_MS = 1000;
const WEEK = 7 * 1440;

let db: TestDatabase;
let fake: FakeBinanceHistory | undefined;
let workers: HistoryWorkers | undefined;
let week = 0;

/** A fresh range of weekly chunks (weeks not fetched before in this file). */
async function planChunks(n = 10): Promise<string> {
  const from = new Date(Date.UTC(2022, 0, 3) + week * 7 * 86_400_000);
  week += n;
  const to = new Date(from.getTime() + n * 7 * 86_400_000);
  const [p] = await db.sql<{ id: string }[]>`
    select ops.plan_backfill('binance', 'BTC/USDT', 'candles', '1m', ${from.toISOString()}::timestamptz, ${to.toISOString()}::timestamptz)::text as id`;
  return p!.id;
}

async function finished(planId: string) {
  const p = await waitFor(async () => {
    const [row] = await db.sql`select state, chunks, chunks_done, rows_new::int from ops.backfill_progress where plan_id = ${planId}`;
    return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
  }, `plan ${planId}`, 50_000, 100);
  return { ...p! };
}

async function setBudget(max: number, windowMs = WINDOW_MS): Promise<void> {
  await db.sql`select ops.set_rate_limit('binance', 'request_weight', 'weight', ${`${windowMs} milliseconds`}::interval, ${max}, '100 milliseconds')`;
  await db.sql`update ops.rate_state set paused_until = null, banned_until = null, slow_until = null, slow_factor = 1 where venue = 'binance'`;
}

async function start(venue: ConstructorParameters<typeof FakeBinanceHistory>[0], rest = {}): Promise<FakeBinanceHistory> {
  fake = new FakeBinanceHistory({ windowMs: WINDOW_MS, delayMs: 5, banSeconds: 5, ...venue });
  await fake.start();
  workers = await startHistoryWorkers(db.url, fake.restUrl, { pools: 2, concurrency: 5, requestsPerJob: 4, rest });
  return fake;
}

/** Accepted weight per window, recomputed from the request log (not from the fake's own counter). */
function weightPerWindow(log: RequestRecord[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of log) if (r.status === 200) m.set(Math.floor(r.at / WINDOW_MS), (m.get(Math.floor(r.at / WINDOW_MS)) ?? 0) + r.weight);
  return m;
}

beforeAll(async () => { db = await createTestDatabase('ratelimit'); });
afterEach(async () => {
  await workers?.stop(); workers = undefined;
  await fake?.stop(); fake = undefined;
});
afterAll(async () => { await db?.drop(); });

describe('venue budgets held in Postgres', () => {
  it('ten parallel chunks in two worker pools never exceed the venue\'s weight per window', async () => {
    await setBudget(40);
    const venue = await start({ weightLimit: 40 });
    const result = await finished(await planChunks());
    expect(result).toEqual({ state: 'done', chunks: 10, chunks_done: 10, rows_new: 10 * WEEK });
    const [n] = await db.sql`select count(*)::int as n from market.candles`;
    expect(n!.n).toBe(10 * WEEK);
    const statuses = new Set(venue.requests.map((r) => r.status));
    expect([...statuses]).toEqual([200]);
    expect(venue.requests.filter((r) => r.path === '/api/v3/klines')).toHaveLength(10 * 11);
    const windows = weightPerWindow(venue.requests);
    const excess = [...windows].filter(([, w]) => w > 40);
    expect(excess).toEqual([]);
    expect(Math.max(...windows.values())).toBeGreaterThan(20); // the budget was actually used, not idled away
  });

  it('a 429 pauses every worker until Retry-After and slows the budget down; no ban follows', async () => {
    // Another client on our address uses half the venue's limit: our budget says 40, the venue
    // allows 20 per two-second window. Requests already in flight when the first 429 comes back
    // arrive within the venue's grace (one second) and get 429 too; nothing is sent after it.
    const windowMs = 2000;
    await setBudget(40, windowMs);
    const venue = await start({ weightLimit: 20, windowMs, graceMs: 1000 });
    const result = await finished(await planChunks(3));
    expect(result).toEqual({ state: 'done', chunks: 3, chunks_done: 3, rows_new: 3 * WEEK });
    const throttled = venue.requests.filter((r) => r.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    expect(venue.requests.filter((r) => r.status === 418)).toEqual([]);
    for (const first of throttled) {
      const windowEnd = (Math.floor(first.at / windowMs) + 1) * windowMs;
      const during = venue.requests.filter((r) => r.at > first.at + 1000 && r.at < windowEnd);
      expect(during).toEqual([]);
    }
    const [s] = await db.sql`select throttled::int, slow_factor::text from ops.rate_state where venue = 'binance'`;
    expect(s!.throttled).toBe(throttled.length);
    expect(Number(s!.slow_factor)).toBeLessThan(1);
  });

  it('a 418 stops the venue for the ban: no request until it ends, then the plan completes', async () => {
    await setBudget(40);
    const venue = await start({ weightLimit: 40 });
    const banned: string[] = [];
    const planId = await planChunks();
    await waitFor(() => venue.requests.length >= 10, 'the first requests');
    venue.banFor(2);
    await waitFor(async () => {
      const [r] = await db.sql`select state from ops.rate_status where venue = 'binance'`;
      if (r?.state === 'banned') banned.push(r.state);
      return banned.length > 0;
    }, 'the ban to show in ops.rate_status', 10_000, 20);
    const result = await finished(planId);
    expect(result).toEqual({ state: 'done', chunks: 10, chunks_done: 10, rows_new: 10 * WEEK });
    const first418 = venue.requests.find((r) => r.status === 418)!;
    const banEnd = first418.at + 2000;
    // Requests in flight when the ban began may still arrive (and get 418); none is sent after.
    const during = venue.requests.filter((r) => r.at > first418.at + 200 && r.at < banEnd - 50);
    expect(during).toEqual([]);
    expect(venue.requests.filter((r) => r.at >= banEnd && r.status === 200).length).toBeGreaterThan(0);
  });

  it('a ban longer than a job should wait defers the job to the ban\'s end instead of sleeping in it', async () => {
    await setBudget(40);
    const venue = await start({ weightLimit: 40 }, { maxInlineWaitMs: 500 });
    venue.banFor(3);
    const planId = await planChunks(2);
    const deferred = await waitFor(async () => {
      const rows = await db.sql`select state, last_error from ops.backfill_chunks c join ops.backfill_plan_chunks using (chunk_id)
                                where plan_id = ${planId} and last_error like '%waiting%'`;
      return rows.length > 0 ? rows : undefined;
    }, 'a chunk deferred to the end of the ban', 10_000, 50);
    expect(deferred![0]!.last_error).toMatch(/venue budget exhausted or venue banned us: waiting \d+ s/);
    const result = await finished(planId);
    expect(result).toEqual({ state: 'done', chunks: 2, chunks_done: 2, rows_new: 2 * WEEK });
    const firstBan = venue.requests.find((r) => r.status === 418)!;
    expect(venue.requests.filter((r) => r.at > firstBan.at + 200 && r.at < firstBan.at + 2950)).toEqual([]);
    const [c] = await db.sql`select count(*)::int as n from ops.backfill_chunks join ops.backfill_plan_chunks using (chunk_id)
                             where plan_id = ${planId} and last_error is not null`;
    expect(c!.n).toBe(0);
  });
});
