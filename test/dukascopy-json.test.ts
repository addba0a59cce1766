import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dukascopyFrame } from '../ingesters/dukascopy/land.ts';
import { loadConfig } from '../src/config.ts';
import type { Sql } from '../src/db.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { FakeDukascopy } from './fakes/dukascopy.ts';

// Dukascopy's JSON API (the venue's history since 2026) as an ingest path: the captured answers
// (test/fixtures/dukascopy/jetta-json-api) landed verbatim and normalized by SQL, compared with
// an independent reading of the same JSON written here (running sums of the delta columns in
// integer points), with the .bi5 files where both sources cover the same period, and fetched
// through the backfill engine from a local server.

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'dukascopy');
const read = (rel: string): Buffer => readFileSync(path.join(FIXTURES, rel));
const readJson = <T>(rel: string): T => JSON.parse(read(rel).toString('utf8')) as T;

interface JsonTicks { timestamp: number; multiplier: number; ask: number; bid: number; times: number[]; asks: number[];
  bids: number[]; askVolumes: number[]; bidVolumes: number[] }
interface JsonCandles { timestamp: number; multiplier: number; shift: number; open: number; high: number; low: number;
  close: number; times: number[]; opens: number[]; highs: number[]; lows: number[]; closes: number[]; volumes: number[] }

/** Answers by request path (v1/..., month 1-based) and the fixture that was recorded for it. */
const ANSWERS = {
  'v1/ticks/EUR-USD/2026/7/13/12': 'jetta-json-api/ticks-EUR-USD-2026-7-13-12.json',
  'v1/candles/minute/BTC-USD/BID/2023/2/19': 'jetta-json-api/candles-minute-BTC-USD-BID-2023-2-19.json',
  'v1/candles/day/BTC-USD/BID/2022': 'jetta-json-api/candles-day-BTC-USD-BID-2022.json',
  'v1/candles/minute/EUR-USD/BID/2026/7/11': 'jetta-json-api/candles-minute-EUR-USD-BID-2026-7-11-empty.json',
} as const;

/** The exact decimal of integer points: 114277 at point 1e5 -> "1.14277". */
function decimal(points: number, point: number): string {
  const scale = String(point).length - 1;
  if (scale === 0) return String(points);
  const digits = String(points).padStart(scale + 1, '0');
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** Our own reading of a ticks answer: [ms, bid, ask, bidSize, askSize] with exact decimal prices. */
function readTicks(j: JsonTicks): string[][] {
  const point = Math.round(1 / j.multiplier);
  let [ms, ask, bid] = [j.timestamp, Math.round(j.ask * point), Math.round(j.bid * point)];
  return j.times.map((dt, i) => {
    ms += dt; ask += j.asks[i]!; bid += j.bids[i]!;
    return [String(ms), decimal(bid, point), decimal(ask, point), String(j.bidVolumes[i]), String(j.askVolumes[i])];
  });
}

/** Our own reading of a candles answer: [ms, open, high, low, close] exact, and the volume in millions as written. */
function readCandles(j: JsonCandles): Array<{ ms: number; prices: string[]; volume: number }> {
  const point = Math.round(1 / j.multiplier);
  let ms = j.timestamp;
  let [o, h, l, c] = [j.open, j.high, j.low, j.close].map((p) => Math.round(p * point)) as [number, number, number, number];
  return j.times.map((dt, i) => {
    ms += dt * j.shift; o += j.opens[i]!; h += j.highs[i]!; l += j.lows[i]!; c += j.closes[i]!;
    return { ms, prices: [o, h, l, c].map((p) => decimal(p, point)), volume: j.volumes[i]! };
  });
}

interface Frame { venue: string; stream: string; request: string; payload: string; receivedAt: string }

async function landAndNormalize(sql: Sql, frames: Frame[]): Promise<{ batchId: string; counts: Record<string, number> }> {
  const batchId = randomUUID();
  const receivedAt = frames[0]!.receivedAt;
  await sql`insert into ops.batches (batch_id, frames, first_received_at, last_received_at)
            values (${batchId}, ${frames.length}, ${receivedAt}, ${receivedAt})`;
  for (const [i, f] of frames.entries()) {
    await sql`insert into staging.frames (batch_id, venue, stream, session_id, seq, received_at, source, request, payload)
              values (${batchId}, ${f.venue}, ${f.stream}, null, ${i}, ${f.receivedAt}, 'rest', ${f.request}, ${f.payload})`;
  }
  const [row] = await sql<{ counts: Record<string, number> }[]>`select staging.normalize_batch(${batchId}) as counts`;
  return { batchId, counts: row!.counts };
}

const RECEIVED = '2026-11-21T00:00:00.000Z';
const STREAM: Record<string, string> = { ticks: 'ticks', minute: 'candles_m1', hour: 'candles_h1', day: 'candles_d1' };
const jsonFrame = (rel: string, payload = read(ANSWERS[rel as keyof typeof ANSWERS]).toString('utf8')): Frame => ({
  venue: 'dukascopy-json', stream: STREAM[rel.split('/')[rel.startsWith('v1/ticks') ? 1 : 2]!]!, request: `GET /${rel} 200`, payload,
  receivedAt: RECEIVED,
});

async function quotes(sql: Sql, symbol: string): Promise<string[][]> {
  const rows = await sql<{ ms: string; bid: string; ask: string; bid_size: string; ask_size: string }[]>`
    select (extract(epoch from quoted_at) * 1000)::bigint::text as ms, bid::text, ask::text, bid_size::text, ask_size::text
    from market.bbo where venue = 'dukascopy' and symbol = ${symbol} order by seq`;
  return rows.map((r) => [r.ms, r.bid, r.ask, r.bid_size, r.ask_size]);
}

async function candles(sql: Sql, symbol: string, timeframe: string, side = 'bid') {
  return sql<{ ms: string; open: string; high: string; low: string; close: string; volume: string }[]>`
    select (extract(epoch from bucket) * 1000)::bigint::text as ms, open::text, high::text, low::text, close::text, volume::text
    from market.venue_candles where venue = 'dukascopy' and symbol = ${symbol} and timeframe = ${timeframe} and price_side = ${side}
    order by bucket`;
}

describe('dukascopy JSON API answers through staging into market', () => {
  let db: TestDatabase;
  let counts: Record<string, number>;
  beforeAll(async () => {
    db = await createTestDatabase('dukjs');
    ({ counts } = await landAndNormalize(db.sql, Object.keys(ANSWERS).map((rel) => jsonFrame(rel))));
  });
  afterAll(async () => { await db?.drop(); });

  it('normalizes every element of every answer, quarantining none', async () => {
    const ticks = readJson<JsonTicks>(ANSWERS['v1/ticks/EUR-USD/2026/7/13/12']).times.length;
    const m1 = readJson<JsonCandles>(ANSWERS['v1/candles/minute/BTC-USD/BID/2023/2/19']).times.length;
    const d1 = readJson<JsonCandles>(ANSWERS['v1/candles/day/BTC-USD/BID/2022']).times.length;
    expect([ticks, m1, d1]).toEqual([3551, 1437, 365]);
    expect(counts).toEqual({ files: 4, files_empty: 1, hours_empty_open: 0, rows_received: ticks + m1 + d1, rows_new: ticks + m1 + d1,
      quotes: ticks, quotes_duplicate: 0, candles: m1 + d1, candles_updated: 0, candles_duplicate: 0, pages_quarantined: 0, quarantined: 0 });
    const files = await db.sql`select path, stream, records, complete from market.venue_files where venue = 'dukascopy-json' order by path`;
    expect(files).toEqual([
      { path: 'v1/candles/day/BTC-USD/BID/2022', stream: 'candles_d1', records: 365, complete: true },
      { path: 'v1/candles/minute/BTC-USD/BID/2023/2/19', stream: 'candles_m1', records: 1437, complete: true },
      { path: 'v1/candles/minute/EUR-USD/BID/2026/7/11', stream: 'candles_m1', records: 0, complete: true },
      { path: 'v1/ticks/EUR-USD/2026/7/13/12', stream: 'ticks', records: 3551, complete: true },
    ]);
    const instruments = await db.sql`select venue, venue_symbol, symbol, asset_class from market.instruments order by venue_symbol`;
    expect(instruments).toEqual([
      { venue: 'dukascopy', venue_symbol: 'BTCUSD', symbol: 'BTC/USD', asset_class: 'crypto' },
      { venue: 'dukascopy', venue_symbol: 'EURUSD', symbol: 'EUR/USD', asset_class: 'forex' },
    ]);
  });

  it('keeps the ticks equal to our own reading of the answer: exact prices, sizes in units', async () => {
    const expected = readTicks(readJson<JsonTicks>(ANSWERS['v1/ticks/EUR-USD/2026/7/13/12']));
    expect(await quotes(db.sql, 'EUR/USD')).toEqual(expected);
  });

  it('keeps the candles equal to our own reading of the answers: exact prices, volumes in units', async () => {
    for (const [rel, timeframe] of [['v1/candles/minute/BTC-USD/BID/2023/2/19', '1m'], ['v1/candles/day/BTC-USD/BID/2022', '1d']] as const) {
      const expected = readCandles(readJson<JsonCandles>(ANSWERS[rel]));
      const rows = await candles(db.sql, 'BTC/USD', timeframe);
      expect(rows.length, rel).toBe(expected.length);
      rows.forEach((r, i) => {
        expect([+r.ms, r.open, r.high, r.low, r.close], `${rel} #${i}`).toEqual([expected[i]!.ms, ...expected[i]!.prices]);
        // Millions to six decimals: a whole number of units.
        expect(r.volume, `${rel} #${i}`).toBe(String(Math.round(expected[i]!.volume * 1e6)));
      });
    }
  });

  it('lands an hour from both sources once (the keys are the same)', async () => {
    const again = await landAndNormalize(db.sql, [jsonFrame('v1/ticks/EUR-USD/2026/7/13/12')]);
    expect(again.counts).toMatchObject({ quotes: 0, quotes_duplicate: 3551, rows_new: 0 });
  });

  it('quarantines answers that do not fit their request, and bad elements with everything after them', async () => {
    const j = readJson<JsonTicks>(ANSWERS['v1/ticks/EUR-USD/2026/7/13/12']);
    const rel = 'v1/ticks/EUR-USD/2026/7/13/13';
    const wrongHour = jsonFrame(rel, JSON.stringify(j)); // the 12h answer under the 13h request
    const badStep = jsonFrame('v1/ticks/EUR-USD/2026/7/13/14', JSON.stringify({ ...j, timestamp: j.timestamp + 2 * 3_600_000,
      times: [5, 'x', 7], asks: [0, 1, 2], bids: [0, 1, 2], askVolumes: [1, 1, 1], bidVolumes: [1, 1, 1] }));
    const badMultiplier = jsonFrame('v1/ticks/EUR-USD/2026/7/13/15', JSON.stringify({ ...j, timestamp: j.timestamp + 3 * 3_600_000, multiplier: 3e-5 }));
    const badPath = { ...jsonFrame('v1/ticks/EUR-USD/2026/7/13/16', '{}'), request: 'GET /v1/ticks/EUR-USD/2026/7/13 200' };
    const { batchId, counts } = await landAndNormalize(db.sql, [wrongHour, badStep, badMultiplier, badPath]);
    expect(counts).toMatchObject({ files: 1, quotes: 1, pages_quarantined: 3, quarantined: 5 });
    const rows = await db.sql<{ request: string; item: number; reason: string }[]>`
      select f.request, q.item, q.reason from staging.quarantine q join staging.frames f using (frame_id)
      where q.batch_id = ${batchId} order by f.seq, q.item`;
    expect(rows.map((r) => [r.request.split(' ')[1], r.item, r.reason])).toEqual([
      [`/${rel}`, -1, `timestamp ${j.timestamp} is not the start of the period of GET /${rel} 200`],
      ['/v1/ticks/EUR-USD/2026/7/13/14', 1, 'time step, ask or bid step is not an integer (time steps not negative): ["x", 1, 1]'],
      ['/v1/ticks/EUR-USD/2026/7/13/14', 2, 'follows a bad element of the same answer'],
      ['/v1/ticks/EUR-USD/2026/7/13/15', -1, 'multiplier is not 1 / a power of ten up to 1e9: 0.00003'],
      ['/v1/ticks/EUR-USD/2026/7/13', -1, 'request GET /v1/ticks/EUR-USD/2026/7/13 200: expected a year, month, day and hour (month 1-based)'],
    ]);
  });
});

describe('dukascopy JSON API and .bi5 files for the same periods', () => {
  // The captured answers that overlap captured files: BTC/USD BID minute candles of 2023-02-19
  // (JSON v1/candles/minute/BTC-USD/BID/2023/2/19, file BTCUSD/2023/01/19/BID_candles_min_1.bi5)
  // and BTC/USD BID daily candles of 2022 (v1/candles/day/BTC-USD/BID/2022,
  // BTCUSD/2022/BID_candles_day_1.bi5). No tick hour was captured from both (the JSON ticks are
  // of 2026-07-13 12h, the files' of 2012, 2019 and 2023). Each source is normalized into its own
  // database; compared are the stored rows, bucket by bucket.
  let json: TestDatabase;
  let files: TestDatabase;
  beforeAll(async () => {
    [json, files] = await Promise.all([createTestDatabase('dukjo'), createTestDatabase('dukbo')]);
    await landAndNormalize(json.sql, ['v1/candles/minute/BTC-USD/BID/2023/2/19', 'v1/candles/day/BTC-USD/BID/2022'].map((rel) => jsonFrame(rel)));
    const bi5 = ['BTCUSD/2023/01/19/BID_candles_min_1.bi5', 'BTCUSD/2022/BID_candles_day_1.bi5'].map((rel) =>
      dukascopyFrame({ path: rel, body: read(rel), point: 10, receivedAt: RECEIVED }));
    await landAndNormalize(files.sql, bi5.map((f) => ({ ...f, receivedAt: RECEIVED })));
  });
  afterAll(async () => { await json?.drop(); await files?.drop(); });

  it('gives the same open, high, low and close for every bucket both have, and the same minute volumes', async () => {
    // Prices: exact equality of the stored decimals. Volumes: minute candles exactly equal (both in
    // whole units); daily candles within 1e-3 relative, since the API's daily volume is its own
    // re-aggregation, not the file's float32. On 2022-10-18 the two sources disagree entirely
    // (every price and the volume): named here so that it stays visible.
    for (const { timeframe, volumeTolerance, disagree } of [
      { timeframe: '1m', volumeTolerance: 0, disagree: [] as string[] },
      { timeframe: '1d', volumeTolerance: 1e-3, disagree: ['2022-10-18T00:00:00.000Z'] },
    ]) {
      const fromJson = await candles(json.sql, 'BTC/USD', timeframe);
      const fromFiles = new Map((await candles(files.sql, 'BTC/USD', timeframe)).map((r) => [r.ms, r]));
      expect(fromJson.length).toBeGreaterThan(300);
      const differing: string[] = [];
      for (const r of fromJson) {
        const f = fromFiles.get(r.ms);
        const at = new Date(+r.ms).toISOString();
        expect(f, `${timeframe} ${at} is in the file`).toBeDefined();
        if ([r.open, r.high, r.low, r.close].join() !== [f!.open, f!.high, f!.low, f!.close].join()) { differing.push(at); continue; }
        if (volumeTolerance === 0) expect(r.volume, `${timeframe} ${at}`).toBe(f!.volume);
        else expect(Math.abs(+r.volume - +f!.volume) / +f!.volume, `${timeframe} ${at}`).toBeLessThanOrEqual(volumeTolerance);
      }
      expect(differing).toEqual(disagree);
      // Buckets only the file has are its flat, volume-0 fillers for minutes without ticks.
      const jsonMs = new Set(fromJson.map((r) => r.ms));
      const onlyFile = [...fromFiles.values()].filter((r) => !jsonMs.has(r.ms));
      for (const r of onlyFile) expect([r.volume, r.open, r.high, r.low]).toEqual(['0', r.close, r.close, r.close]);
      expect(onlyFile.length).toBe(fromFiles.size - fromJson.length);
    }
  });
});

describe('dukascopy JSON API through the backfill engine', () => {
  let db: TestDatabase;
  let fake: FakeDukascopy;
  let workers: HistoryWorkers;
  beforeAll(async () => {
    db = await createTestDatabase('dukje');
    await db.sql`select ops.set_rate_limit('dukascopy-json', 'answers', 'requests', interval '1 second', 60, interval '0')`;
    fake = new FakeDukascopy();
    await fake.start();
    const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'dukascopy-api', venue: 'dukascopy-json', enabled: false,
      channels: ['ticks'], instruments: ['EUR/USD'], urls: { rest: fake.jsonUrl } }] } });
    workers = await startHistoryWorkers(db.url, fake.jsonUrl, { config, concurrency: 2 });
  });
  afterAll(async () => { await workers?.stop(); await fake?.stop(); await db?.drop(); });

  async function backfill(symbol: string, kind: string, timeframe: string | null, from: string, to: string) {
    const [p] = await db.sql<{ id: string }[]>`
      select ops.plan_backfill('dukascopy-json', ${symbol}, ${kind}, ${timeframe}, ${from}::timestamptz, ${to}::timestamptz)::text as id`;
    return (await waitFor(async () => {
      const [row] = await db.sql`select * from ops.backfill_progress where plan_id = ${p!.id}`;
      return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
    }, 'the plan to finish', 30_000, 100))!;
  }

  it('fetches an hour of ticks and days of BID and ASK candles, equal to our reading of the answers; a rerun fetches nothing', async () => {
    const ticks = await backfill('EUR/USD', 'ticks', null, '2026-07-13T12:00:00Z', '2026-07-13T13:00:00Z');
    const m1 = await backfill('BTC/USD', 'candles', '1m', '2023-02-19T00:00:00Z', '2023-02-20T00:00:00Z');
    const empty = await backfill('EUR/USD', 'candles', '1m', '2026-07-11T00:00:00Z', '2026-07-12T00:00:00Z');
    expect([ticks.state, m1.state, empty.state]).toEqual(['done', 'done', 'done']);
    expect([...fake.requests].sort()).toEqual(['v1/candles/minute/BTC-USD/ASK/2023/2/19', 'v1/candles/minute/BTC-USD/BID/2023/2/19',
      'v1/candles/minute/EUR-USD/ASK/2026/7/11', 'v1/candles/minute/EUR-USD/BID/2026/7/11', 'v1/ticks/EUR-USD/2026/7/13/12']);
    expect(await quotes(db.sql, 'EUR/USD')).toEqual(readTicks(readJson<JsonTicks>(ANSWERS['v1/ticks/EUR-USD/2026/7/13/12'])));
    for (const side of ['bid', 'ask']) {
      const served = JSON.parse(fake.served.get(`v1/candles/minute/BTC-USD/${side.toUpperCase()}/2023/2/19`)!.toString('utf8')) as JsonCandles;
      const expected = readCandles(served);
      const rows = await candles(db.sql, 'BTC/USD', '1m', side);
      expect(rows.map((r) => [+r.ms, r.open, r.high, r.low, r.close]), side).toEqual(expected.map((c) => [c.ms, ...c.prices]));
    }
    expect(ticks).toMatchObject({ rows_received: '3551', rows_new: '3551', pages: '1' });
    const before = fake.requests.length;
    const again = await backfill('EUR/USD', 'ticks', null, '2026-07-13T12:00:00Z', '2026-07-13T13:00:00Z');
    expect(again.state).toBe('done');
    expect(fake.requests.length).toBe(before);
  });
});
