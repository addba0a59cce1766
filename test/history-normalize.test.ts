import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { quietLog } from './support/feeds.ts';
import { Lander, type Frame } from '../ingesters/runtime/lander.ts';

// Binance REST pages as the venue answered them (captured responses, verbatim) landed the way a
// backfill lands them, normalized by SQL; expected rows are read from the fixtures here.
const FIX = path.join(import.meta.dirname, 'fixtures', 'binance');
const klinesText = readFileSync(path.join(FIX, 'nautilus-http_spot_market_klines.json'), 'utf8');
const tradesText = readFileSync(path.join(FIX, 'nautilus-http_spot_market_trades.json'), 'utf8');
const aggText = readFileSync(path.join(FIX, 'nautilus-http_spot_market_agg_trades.json'), 'utf8');
const klines = JSON.parse(klinesText) as Array<[number, string, string, string, string, string, number, string, number]>;
const trades = JSON.parse(tradesText) as Array<{ id: number; price: string; qty: string; time: number; isBuyerMaker: boolean }>;
const aggs = JSON.parse(aggText) as Array<{ a: number; p: string; q: string; f: number; l: number; T: number; m: boolean }>;

const KLINES_REQ = 'GET /api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=1634943780000&endTime=1634944379999&limit=1000';
let db: TestDatabase;
let lander: Lander;
const results: Array<Record<string, number> | null> = [];

function frame(stream: string, request: string, payload: string, receivedAt = '2026-11-21T10:00:00.000001Z'): Frame {
  return { venue: 'binance', stream, sessionId: null, seq: 1, receivedAt, source: 'rest', request, payload };
}

async function land(...frames: Frame[]): Promise<Record<string, number>> {
  results.length = 0;
  for (const f of frames) lander.offer(f);
  await lander.flush();
  return results.reduce<Record<string, number>>((acc, r) => {
    for (const [k, v] of Object.entries(r ?? {})) acc[k] = (acc[k] ?? 0) + Number(v);
    return acc;
  }, {});
}

beforeAll(async () => {
  db = await createTestDatabase('histnorm');
  lander = new Lander(db.url, { maxBatchFrames: 100, flushIntervalMs: 5, maxBufferedBytes: 16 << 20 }, quietLog);
  lander.onBatch((r) => results.push(r.counts));
});
afterAll(async () => { await lander?.close(); await db?.drop(); });
beforeEach(async () => { await db.sql`truncate market.candles, market.trades, market.agg_trades, staging.quarantine, staging.frames, market.bar_invalidations`; });

describe('Binance REST pages -> market, through the one normalization path', () => {
  it('klines become venue candles exactly as served (price side trade, base volume, trade count, complete)', async () => {
    const counts = await land(frame('klines', `${KLINES_REQ} 200`, klinesText));
    expect(counts).toMatchObject({ rest_pages: 1, klines: 10, candles: 10, candles_updated: 0, candles_duplicate: 0, quarantined: 0 });
    const rows = await db.sql`
      select symbol, timeframe, price_side, (extract(epoch from bucket) * 1000)::bigint::text as t, open::text, high::text,
             low::text, close::text, volume::text, volume_kind, trade_count::int, complete, source
      from market.venue_candles order by bucket`;
    expect(rows.map((r) => ({ ...r }))).toEqual(klines.map((k) => ({
      symbol: 'BTC/USDT', timeframe: '1m', price_side: 'trade', t: String(k[0]), open: k[1], high: k[2], low: k[3], close: k[4],
      volume: k[5], volume_kind: 'base', trade_count: k[8], complete: true, source: 'rest',
    })));
    expect(await land(frame('klines', `${KLINES_REQ} 200`, klinesText))).toMatchObject({ candles: 0, candles_duplicate: 10 });
    const [n] = await db.sql`select count(*)::int as n from market.candles`;
    expect(n!.n).toBe(10);
  });

  it('a kline served while its minute was open is replaced by its final values, never the reverse', async () => {
    const last = klines.at(-1)!;
    const openPage = JSON.stringify([[...last.slice(0, 4), last[1], '1.00000000', ...last.slice(6)]]);
    // Received during the last minute (23:12:30), so that kline is still open.
    const during = new Date(last[0] + 30_000).toISOString();
    expect(await land(frame('klines', `${KLINES_REQ} 200`, openPage, during))).toMatchObject({ candles: 1 });
    const [open] = await db.sql`select complete, close::text, volume::text from market.candles`;
    expect({ ...open }).toEqual({ complete: false, close: last[1], volume: '1.00000000' });
    expect(await land(frame('klines', `${KLINES_REQ} 200`, klinesText))).toMatchObject({ candles: 9, candles_updated: 1 });
    const [closed] = await db.sql`select complete, close::text, volume::text from market.candles where bucket = ${new Date(last[0])}`;
    expect({ ...closed }).toEqual({ complete: true, close: last[4], volume: last[5] });
    // An open kline arriving after the final one changes nothing.
    expect(await land(frame('klines', `${KLINES_REQ} 200`, openPage, during))).toMatchObject({ candles: 0, candles_duplicate: 1 });
    const [still] = await db.sql`select complete, close::text from market.candles where bucket = ${new Date(last[0])}`;
    expect({ ...still }).toEqual({ complete: true, close: last[4] });
  });

  it('quarantines a bad kline with its reason and keeps the rest of the page', async () => {
    const bad = klines.map((k) => [...k]);
    bad[2]![3] = '99999999.00000000'; // low above open and close
    bad[5]![0] = 'soon' as unknown as number; // open time not an integer
    const counts = await land(frame('klines', `${KLINES_REQ} 200`, JSON.stringify(bad)));
    expect(counts).toMatchObject({ klines: 10, candles: 8, quarantined: 2 });
    const q = await db.sql`select item, reason, normalizer from staging.quarantine order by item`;
    expect(q.map((r) => ({ ...r }))).toEqual([
      { item: 2, reason: expect.stringMatching(/^low or high does not bound open and close/), normalizer: 'normalize_binance_klines_v1' },
      { item: 5, reason: expect.stringMatching(/^open time, close time or trade count is not an integer/), normalizer: 'normalize_binance_klines_v1' },
    ]);
  });

  it('every check the fast way leaves to a cast, a JSON type test or a constraint of market.candles refuses that kline alone', async () => {
    // One fault per page (each page its own batch): the fast way raises, the careful way keeps
    // the other nine klines and names the fault.
    const faults: Array<[string, (k: unknown[]) => void, RegExp]> = [
      ['close as a JSON number', (k) => { k[4] = Number(k[4]); }, /^open, high, low, close and volume must be decimal strings/],
      ['NaN volume', (k) => { k[5] = 'NaN'; }, /^volume is not a non-negative decimal/],
      ['Infinity high', (k) => { k[2] = 'Infinity'; }, /^open, high, low or close is not a positive finite decimal/],
      ['negative trade count', (k) => { k[8] = -5; }, /^trade count is negative/],
      ['fractional open time', (k) => { k[0] = Number(k[0]) + 0.5; }, /^open time, close time or trade count is not an integer/],
      ['open time as a string', (k) => { k[0] = String(k[0]); }, /^open time, close time or trade count is not an integer/],
      ['a short kline', (k) => { k.length = 8; }, /^expected a kline array/],
    ];
    for (const [what, spoil, reason] of faults) {
      await db.sql`truncate market.candles, staging.quarantine, staging.frames`;
      const page = klines.map((k) => [...k] as unknown[]);
      spoil(page[3]!);
      const counts = await land(frame('klines', `${KLINES_REQ} 200`, JSON.stringify(page)));
      expect(counts, what).toMatchObject({ klines: 10, candles: 9, quarantined: 1 });
      const q = await db.sql`select item, reason from staging.quarantine`;
      expect(q.map((r) => ({ ...r })), what).toEqual([{ item: 3, reason: expect.stringMatching(reason) }]);
      const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from market.candles where bucket = to_timestamp(${klines[3]![0] / 1000})`;
      expect(n!.n, what).toBe(0);
    }
  });

  it('historicalTrades become trades with the venue id as sequence, the same rows the live stream makes', async () => {
    const counts = await land(frame('historicalTrades', 'GET /api/v3/historicalTrades?symbol=BTCUSDT&fromId=1111468873&limit=1000 200', tradesText));
    expect(counts).toMatchObject({ rest_pages: 1, trades: 10, trades_duplicate: 0, quarantined: 0 });
    const rows = await db.sql`
      select symbol, trade_id, seq::text, price::text, size::text, side, (extract(epoch from traded_at) * 1000)::bigint::text as t, source
      from market.ticks order by seq`;
    expect(rows.map((r) => ({ ...r }))).toEqual(trades.map((t) => ({
      symbol: 'BTC/USDT', trade_id: String(t.id), seq: String(t.id), price: t.price, size: t.qty,
      side: t.isBuyerMaker ? 'sell' : 'buy', t: String(t.time), source: 'rest',
    })));
    const [inv] = await db.sql`select count(*)::int as n from market.bar_invalidations`;
    expect(inv!.n).toBe(new Set(trades.map((t) => Math.floor(t.time / 60_000))).size);
  });

  it('aggTrades become aggregate trades with the trade id range each covers', async () => {
    const counts = await land(frame('aggTrades', 'GET /api/v3/aggTrades?symbol=BTCUSDT&fromId=966492862&limit=1000 200', aggText));
    expect(counts).toMatchObject({ agg_trades: 10, quarantined: 0 });
    const rows = await db.sql`select agg_id::text, first_trade_seq::text, last_trade_seq::text, price::text, size::text, side,
                                     (extract(epoch from traded_at) * 1000)::bigint::text as t from market.agg_trades order by agg_id`;
    expect(rows.map((r) => ({ ...r }))).toEqual(aggs.map((a) => ({
      agg_id: String(a.a), first_trade_seq: String(a.f), last_trade_seq: String(a.l), price: a.p, size: a.q,
      side: a.m ? 'sell' : 'buy', t: String(a.T),
    })));
  });

  it('quarantines venue error bodies and cut pages whole, with the reason, and stores nothing from them', async () => {
    const counts = await land(
      frame('klines', `${KLINES_REQ} 429`, '{"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE."}'),
      frame('historicalTrades', 'GET /api/v3/historicalTrades?symbol=NOPE&fromId=1&limit=1000 400', '{"code":-1121,"msg":"Invalid symbol."}'),
      frame('aggTrades', 'GET /api/v3/aggTrades?symbol=BTCUSDT&fromId=1&limit=1000 503', '<html><body>503 Service Unavailable</body></html>'),
      frame('klines', `${KLINES_REQ} 200`, klinesText.slice(0, 700)),
    );
    expect(counts.quarantined).toBe(4);
    const q = await db.sql`select stream, item, reason from staging.quarantine order by quarantine_id`;
    expect(q.map((r) => ({ ...r }))).toEqual(expect.arrayContaining([
      { stream: 'klines', item: -1, reason: 'venue error -1003 (HTTP 429): Too much request weight used; current limit is 6000 request weight per 1 MINUTE.' },
      { stream: 'historicalTrades', item: -1, reason: 'venue error -1121 (HTTP 400): Invalid symbol.' },
      { stream: 'aggTrades', item: -1, reason: 'HTTP 503: <html><body>503 Service Unavailable</body></html>' },
      { stream: 'klines', item: -1, reason: expect.stringMatching(/^payload is not valid JSON \(a cut response\?\)/) },
    ]));
    const [n] = await db.sql`select (select count(*) from market.candles) + (select count(*) from market.trades)
                                    + (select count(*) from market.agg_trades) as n`;
    expect(Number(n!.n)).toBe(0);
    // The raw pages stay in staging: they are the evidence.
    const [f] = await db.sql`select count(*)::int as n from staging.frames where source = 'rest'`;
    expect(f!.n).toBe(4);
  });
});
