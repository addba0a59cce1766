import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { CAPTURED_KLINES, FakeBinanceHistory, fmt8, klineRow } from './fakes/binance-history.ts';
import { historyStatus } from '../src/backfill-cli.ts';

// Backfill plans run by real graphile-worker pools against the fake venue on 127.0.0.1; the
// expected candles come from the captured page and the fake's generator, read here.
const MIN = 60_000;
const DAY = 1440 * MIN;
const HOLE: [number, number] = [Date.UTC(2021, 9, 22, 5, 0), Date.UTC(2021, 9, 22, 5, 30)]; // the venue has no klines here

let db: TestDatabase;
let fake: FakeBinanceHistory;
let workers: HistoryWorkers;

async function plan(kind: string, timeframe: string | null, from: string, to: string): Promise<string> {
  const [p] = await db.sql<{ id: string }[]>`
    select ops.plan_backfill('binance', 'BTC/USDT', ${kind}, ${timeframe}, ${from}::timestamptz, ${to}::timestamptz)::text as id`;
  return p!.id;
}

async function finished(planId: string, timeoutMs = 30_000): Promise<Record<string, any>> {
  const p = await waitFor(async () => {
    const [row] = await db.sql`select * from ops.backfill_progress where plan_id = ${planId}`;
    return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
  }, `plan ${planId} to finish`, timeoutMs, 100);
  return p!;
}

const klineRequests = () => fake.requests.filter((r) => r.path === '/api/v3/klines');

beforeAll(async () => {
  db = await createTestDatabase('backfill');
  await db.sql`select ops.set_setting('backfill.max_attempts', '2')`;
  fake = new FakeBinanceHistory({ klineHoles: [HOLE] });
  await fake.start();
  workers = await startHistoryWorkers(db.url, fake.restUrl, { concurrency: 3 });
});
afterAll(async () => {
  await workers?.stop();
  await fake?.stop();
  await db?.drop();
});

describe('backfill as a plan of chunks', () => {
  it('lands every kline of the range once, captured and generated, minus the venue\'s own hole', async () => {
    const id = await plan('candles', '1m', '2021-10-20T00:00:00Z', '2021-10-28T00:00:00Z');
    const p = await finished(id);
    const from = Date.UTC(2021, 9, 20);
    const expected: string[] = [];
    for (let t = from; t < from + 8 * DAY; t += MIN) {
      if (t >= HOLE[0] && t < HOLE[1]) continue;
      const captured = CAPTURED_KLINES.find((k) => k[0] === t);
      expected.push(captured ? JSON.stringify(captured) : klineRow(t, MIN));
    }
    expect(expected).toHaveLength(8 * 1440 - 30);
    const rows = await db.sql<{ t: string; open: string; high: string; low: string; close: string; volume: string; n: number }[]>`
      select (extract(epoch from bucket) * 1000)::bigint::text as t, open::text, high::text, low::text, close::text,
             volume::text, trade_count::int as n
      from market.venue_candles where symbol = 'BTC/USDT' and timeframe = '1m' order by bucket`;
    expect(rows.map((r) => JSON.stringify([Number(r.t), r.open, r.high, r.low, r.close, r.volume, r.n])))
      .toEqual(expected.map((e) => { const k = JSON.parse(e) as unknown[]; return JSON.stringify([k[0], k[1], k[2], k[3], k[4], k[5], k[8]]); }));
    // Two chunks (the grid cell from Monday 2021-10-18 clipped to the range, then the next one), one request per 1,000 minutes.
    expect({ state: p.state, chunks: p.chunks, chunks_done: p.chunks_done, rows_new: String(p.rows_new), pages: String(p.pages), weight: String(p.weight) })
      .toEqual({ state: 'done', chunks: 2, chunks_done: 2, rows_new: String(8 * 1440 - 30), pages: String(8 + 5), weight: String(13 * 2) });
    expect(klineRequests()).toHaveLength(13);
  });

  it('running the same backfill again fetches nothing; a wider one fetches only the days it adds', async () => {
    const before = klineRequests().length;
    const again = await finished(await plan('candles', '1m', '2021-10-20T00:00:00Z', '2021-10-28T00:00:00Z'));
    expect(again.state).toBe('done');
    expect(klineRequests().length).toBe(before);
    const wider = await finished(await plan('candles', '1m', '2021-10-18T00:00:00Z', '2021-10-29T00:00:00Z'));
    expect(wider).toMatchObject({ state: 'done', chunks: 4, chunks_done: 4 });
    const added = klineRequests().slice(before).map((r) => new URLSearchParams(r.query).get('startTime'));
    // 2 days before (3 pages) and 1 day after (2 pages); nothing inside the first range again.
    expect(added.map(Number).sort()).toEqual([
      Date.UTC(2021, 9, 18), Date.UTC(2021, 9, 18) + 1000 * MIN, Date.UTC(2021, 9, 18) + 2000 * MIN,
      Date.UTC(2021, 9, 28), Date.UTC(2021, 9, 28) + 1000 * MIN,
    ]);
    const [n] = await db.sql`select count(*)::int as n from market.candles`;
    expect(n!.n).toBe(11 * 1440 - 30);
    const [dup] = await db.sql`select count(*)::int as n from (select bucket from market.candles group by 1 having count(*) > 1) d`;
    expect(dup!.n).toBe(0);
  });

  it('retries a 5xx, a cut response and a timeout; quarantines the venue\'s error body', async () => {
    const start = Date.UTC(2021, 10, 1);
    const page = (k: number) => (u: URL) => u.pathname === '/api/v3/klines' && u.searchParams.get('startTime') === String(start + k * 1000 * MIN);
    fake.fail(page(1), 'status503', 1);
    fake.fail(page(4), 'cut', 1);
    fake.fail(page(7), 'hang', 1);
    const before = klineRequests().length;
    const p = await finished(await plan('candles', '1m', '2021-11-01T00:00:00Z', '2021-11-08T00:00:00Z'));
    expect(p).toMatchObject({ state: 'done', chunks: 1, chunks_failed: 0 });
    expect(klineRequests().length - before).toBe(11 + 3);
    const [n] = await db.sql`select count(*)::int as n from market.candles where bucket >= '2021-11-01' and bucket < '2021-11-08'`;
    expect(n!.n).toBe(7 * 1440);
    const q = await db.sql`select reason from staging.quarantine where stream = 'klines'`;
    expect(q.map((r) => r.reason)).toEqual(['venue error -1001 (HTTP 503): Internal error; unable to process your request. Please try again.']);
    fake.clearFaults();
  });

  it('a chunk that keeps failing ends failed with its error in ops and in status; the rest of the plan completes', async () => {
    const bad = (u: URL) => u.pathname === '/api/v3/klines' && Number(u.searchParams.get('startTime')) >= Date.UTC(2021, 11, 6)
      && Number(u.searchParams.get('startTime')) < Date.UTC(2021, 11, 13);
    fake.fail(bad, 'status500');
    const p = await finished(await plan('candles', '1m', '2021-12-01T00:00:00Z', '2021-12-15T00:00:00Z'), 45_000);
    expect(p).toMatchObject({ state: 'failed', chunks: 3, chunks_done: 2, chunks_failed: 1 });
    expect(p.errors).toEqual([expect.stringMatching(/^2021-12-06 00:00:00\+00: VENUE_REST: GET \/api\/v3\/klines\?.* HTTP 500/)]);
    const [c] = await db.sql`select attempts, state from ops.backfill_chunks where chunk_from = '2021-12-06'`;
    expect({ ...c }).toEqual({ attempts: 2, state: 'failed' }); // backfill.max_attempts
    const [n] = await db.sql`select count(*)::int as n from market.candles where bucket >= '2021-12-01' and bucket < '2021-12-15'`;
    expect(n!.n).toBe(7 * 1440);
    expect(await historyStatus(db.sql)).toMatch(/failed chunk 2021-12-06 00:00:00\+00: VENUE_REST: .*HTTP 500/);
    fake.clearFaults();
  });

  it('a request the venue refuses (4xx) fails its chunk at once, without retrying', async () => {
    fake.fail((u) => u.pathname === '/api/v3/klines' && u.searchParams.get('startTime') === String(Date.UTC(2021, 0, 4)), 'error400');
    const before = klineRequests().length;
    const p = await finished(await plan('candles', '1m', '2021-01-04T00:00:00Z', '2021-01-04T12:00:00Z'));
    expect(p).toMatchObject({ state: 'failed', chunks_failed: 1 });
    expect(p.errors[0]).toMatch(/refused the request with HTTP 400: \{"code":-1121,"msg":"Invalid symbol."\}/);
    expect(klineRequests().length - before).toBe(1);
    const [c] = await db.sql`select attempts from ops.backfill_chunks where chunk_from = '2021-01-04'`;
    expect(c!.attempts).toBe(1);
    fake.clearFaults();
  });

  it('holes in stored candles become gaps: refetched and recovered, or a venue outage when the venue has none either', async () => {
    // Ours lost ten minutes (deleted here); the venue itself never had 05:00-05:30 of 2021-10-22.
    await db.sql`delete from market.candles where bucket >= '2021-10-23 12:00' and bucket < '2021-10-23 12:10'`;
    const [found] = await db.sql`select quality.scan_candle_gaps('binance', 'BTC/USDT', '1m', '2021-10-20', '2021-10-28') as n`;
    expect(found!.n).toBe(2);
    const gaps = await waitFor(async () => {
      const rows = await db.sql`select gap_from, gap_to, state, rows_recovered::int, last_error from quality.gaps
                                where stream = 'candles' order by gap_from`;
      return rows.length === 2 && rows.every((r) => r.state !== 'detected' && r.state !== 'queued' && r.state !== 'recovering')
        ? rows : undefined;
    }, 'the candle gaps to be resolved', 20_000, 100);
    expect(gaps!.map((g) => ({ ...g }))).toEqual([
      { gap_from: new Date(HOLE[0]), gap_to: new Date(HOLE[1]), state: 'venue_outage', rows_recovered: 0,
        last_error: '30 buckets have no candle at the venue either' },
      { gap_from: new Date('2021-10-23T12:00:00Z'), gap_to: new Date('2021-10-23T12:10:00Z'), state: 'recovered', rows_recovered: 10,
        last_error: null },
    ]);
    const [n] = await db.sql`select count(*)::int as n from market.candles where bucket >= '2021-10-23 12:00' and bucket < '2021-10-23 12:10'`;
    expect(n!.n).toBe(10);
    const [again] = await db.sql`select quality.scan_candle_gaps('binance', 'BTC/USDT', '1m', '2021-10-20', '2021-10-28') as n`;
    expect(again!.n).toBe(0); // the venue's own hole is on the ledger already
  });

  it('trades by id between the first trades at both ends, and the bars of exactly that window rebuilt', async () => {
    const t0 = Date.UTC(2026, 0, 5, 10, 0);
    fake.produceAt(3000, t0, 1000); // 50 minutes of trades, one a second (by the tape's own generator)
    const tape = fake.tapes.get('BTCUSDT')!;
    const p = await finished(await plan('trades', null, new Date(t0 + 10 * MIN).toISOString(), new Date(t0 + 40 * MIN).toISOString()));
    expect(p).toMatchObject({ state: 'done', chunks: 1 });
    const want = tape.trades.filter((t) => t.time >= t0 + 10 * MIN && t.time < t0 + 40 * MIN);
    const rows = await db.sql`select seq::text, price::text, size::text, side, (extract(epoch from traded_at) * 1000)::bigint::text as t
                              from market.ticks where symbol = 'BTC/USDT' order by seq`;
    expect(rows.map((r) => ({ ...r }))).toEqual(want.map((t) => ({
      seq: String(t.id), price: fmt8(t.price), size: fmt8(t.qty), side: t.buyerMaker ? 'sell' : 'buy', t: String(t.time),
    })));
    // 1,800 trades: two pages of historicalTrades (25 each) and the two aggTrades lookups (4 each).
    expect(String(p.weight)).toBe(String(2 * 25 + 2 * 4));
    const bars = await db.sql`select (extract(epoch from bucket) * 1000)::bigint::text as t, open::text, close::text, volume::text, trades::int
                              from market.bars('BTC/USDT', '1m', '-infinity', 'infinity')`;
    const byMinute = new Map<number, typeof want>();
    for (const t of want) byMinute.set(Math.floor(t.time / MIN) * MIN, [...(byMinute.get(Math.floor(t.time / MIN) * MIN) ?? []), t]);
    const trim = (s: string) => s.replace(/\.?0+$/, '');
    expect(bars.map((b) => ({ ...b }))).toEqual([...byMinute].map(([m, ts]) => ({
      t: String(m), open: trim(fmt8(ts[0]!.price)), close: trim(fmt8(ts.at(-1)!.price)),
      volume: trim(fmt8(ts.reduce((s, t) => s + t.qty, 0n))), trades: ts.length,
    })));
  });
});
