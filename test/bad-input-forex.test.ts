import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeOanda } from './fakes/oanda.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import {
  OANDA_TEMPLATE, OANDA_TOKEN, POLYGON_KEY, forexConfig, oandaFeedConfig, polygonDocExample, startFeed, type RunningFeed,
} from './support/forex.ts';
import { waitFor } from './support/wait.ts';
import { LineSplitter } from '../ingesters/runtime/transport.ts';

// Bad input from the OANDA pricing stream (HTTP, one JSON object per line) and a Polygon
// WebSocket cluster (frames are arrays of events), over real sockets to the local fakes and into
// the real Postgres. Each case says what must become of it: quarantined with the reason given
// (a Polygon event is quarantined alone, by its index in the frame, and the good events of the
// same frame are stored), stored exactly, or an ops event (the venue's error messages). No case
// may end the connection or fail a batch.

const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '000000Z'); // nanoseconds, as OANDA writes

/** The captured OANDA price line with its time and best bid replaced (fields overridden as raw JSON text). */
function price(ms: number, bid: string, over: Record<string, string> = {}): string {
  let line = OANDA_TEMPLATE.replace(/"time":"[^"]+"/, `"time":"${iso(ms)}"`).replace(/"bids":\[\{"price":"[^"]+"/, `"bids":[{"price":"${bid}"`);
  for (const [k, v] of Object.entries(over)) line = line.replace(new RegExp(`"${k}":("[^"]*"|[^,}]+)`), `"${k}":${v}`);
  return line;
}

interface Case { name: string; payload: string; reason?: string | RegExp }

const OANDA_CASES: Case[] = [
  { name: 'malformed JSON', payload: '{"type":"PRICE","instrument":"EUR_USD",,"time":"x"}', reason: 'payload is not valid JSON' },
  { name: 'a line truncated in the middle (then a newline)', payload: price(NOW + 1, '1.18001').slice(0, 70), reason: 'payload is not valid JSON' },
  { name: 'price as a JSON number', payload: price(NOW + 2, '1.18002').replace('"price":"1.18002"', '"price":1.18002'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'liquidity as a string', payload: price(NOW + 3, '1.18003').replace('"liquidity":10000000', '"liquidity":"10000000"'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'price "NaN"', payload: price(NOW + 4, 'NaN'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'price "Infinity"', payload: price(NOW + 5, 'Infinity'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'price NaN as a bare literal', payload: price(NOW + 6, '1.18006').replace('"price":"1.18006"', '"price":NaN'), reason: 'payload is not valid JSON' },
  { name: 'negative price', payload: price(NOW + 7, '-1.18007'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'zero price', payload: price(NOW + 8, '0.00000'), reason: 'a price level is not {price: positive decimal string, liquidity: number}' },
  { name: 'time in 1970', payload: price(0, '1.18009'), reason: /^event time 1970-01-01 00:00:00(\+00)? is before 2009$/ },
  { name: 'time in 2100', payload: price(Date.UTC(2100, 0, 1), '1.18010'), reason: /^event time 2100-01-01 00:00:00(\+00)? is more than a day after it was received$/ },
  { name: 'time not RFC 3339', payload: price(NOW + 11, '1.18011', { time: '"yesterday"' }), reason: 'time is not an RFC 3339 UTC time: "yesterday"' },
  { name: 'time as epoch seconds (a number)', payload: price(NOW + 12, '1.18012', { time: String(Math.floor(NOW / 1000)) }), reason: `time is not an RFC 3339 UTC time: ${Math.floor(NOW / 1000)}` },
  { name: 'an unknown message type', payload: price(NOW + 13, '1.18013', { type: '"PRICE_V2"' }), reason: 'expected type PRICE, received type=PRICE_V2' },
  { name: 'an instrument with SQL metacharacters', payload: price(NOW + 14, '1.18014', { instrument: `"EUR_USD'; drop table market.quotes; --"` }), reason: `missing or malformed instrument: "EUR_USD'; drop table market.quotes; --"` },
  { name: 'no bids and no asks', payload: price(NOW + 15, '1.18015').replace(/"bids":\[[^\]]*\]/, '"bids":[]').replace(/"asks":\[[^\]]*\]/, '"asks":[]'), reason: 'no bid and no ask' },
  { name: 'a JSON array instead of an object', payload: '[1,2,3]', reason: 'expected a JSON object, received array' },
];

const SYM = 'MSFT';
const T = polygonDocExample('/stocks/T');
const Q = polygonDocExample('/stocks/Q');
const tradeEv = (i: number, over: Record<string, unknown> = {}) => ({ ...T, sym: SYM, i: String(i), t: NOW, q: i, ...over });

/** Polygon events each with the reason it must be quarantined with, or none (stored). */
const POLYGON_EVENTS: Array<{ name: string; ev: Record<string, unknown>; reason?: string | RegExp }> = [
  { name: 'trade price as a string', ev: tradeEv(101, { p: '114.125' }), reason: /^price p or size s is not a positive number: / },
  { name: 'negative trade price', ev: tradeEv(102, { p: -114.125 }), reason: /^price p or size s is not a positive number: / },
  { name: 'zero trade size', ev: tradeEv(103, { s: 0 }), reason: /^price p or size s is not a positive number: / },
  { name: 'sequence q beyond 64 bits', ev: tradeEv(104, { q: 18446744073709551616n }), reason: 'sequence q is not an integer that fits 64 bits' },
  { name: 'trade time in 1970', ev: tradeEv(105, { t: 5 }), reason: /^event time 1970-01-01 00:00:00.005(\+00)? is before 2009$/ },
  { name: 'trade time in 2100', ev: tradeEv(106, { t: Date.UTC(2100, 0, 1) }), reason: /is more than a day after it was received$/ },
  { name: 'trade time as a string', ev: tradeEv(107, { t: String(NOW) }), reason: 'time t is not an integer of milliseconds' },
  { name: 'an event type the stocks cluster does not have', ev: { ev: 'XQ', pair: 'BTC-USD', bp: 1, ap: 2, bs: 1, as: 1, t: NOW }, reason: 'event ev=XQ is not read on the stocks cluster' },
  { name: 'a ticker with SQL metacharacters', ev: tradeEv(108, { sym: `MSFT'; drop table market.trades; --` }), reason: `missing or malformed ticker: MSFT'; drop table market.trades; --` },
  { name: 'quote with a zero bid', ev: { ...Q, sym: SYM, t: NOW, bp: 0 }, reason: /^bid or ask is not a positive number: / },
  { name: 'an event that is not an object', ev: 'T.MSFT' as unknown as Record<string, unknown>, reason: /^expected an event object, received "T.MSFT"$/ },
  // Good events with awkward values: stored exactly.
  { name: 'sequence q = 2^53 + 1 (past a double)', ev: tradeEv(109, { q: 9007199254740993n }) },
  { name: 'a duplicate of trade 1 (counted, kept once)', ev: tradeEv(1) },
];

/** JSON with bigint values written as exact integers (JSON.stringify cannot). */
const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `@@${x}@@` : x)).replace(/"@@(\d+)@@"/g, '$1');

let db: TestDatabase;
let running: RunningFeed | undefined;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => { db = await createTestDatabase('badfx'); });
afterAll(async () => { await db?.drop(); });
afterEach(async () => {
  await running?.stop(); running = undefined;
  for (const s of stops.splice(0)) await s();
  await db.sql`truncate staging.frames, staging.quarantine, market.trades, market.quotes, market.candles, ops.sessions,
               ops.session_events, ops.batches, quality.gaps`;
});

async function landedAll(feed: RunningFeed, n: number): Promise<void> {
  await waitFor(async () => { await feed.lander.flush(); return feed.lander.landedFrames >= n; }, `${n} frames landed`);
}

describe('an oversized line in a newline-delimited stream', () => {
  it('is skipped to its newline and reported in order with its size and first bytes, whatever the chunking', () => {
    const long = `{"type":"PRICE","pad":"${'y'.repeat(5000)}"}`;
    const text = Buffer.from(`{"a":1}\n${long}\n{"b":2}\n${'z'.repeat(40)}\n{"c":3}\n{"d":`);
    for (const size of [1, 7, 64, 1000, 4096, text.length]) {
      const seen: string[] = [];
      const s = new LineSplitter(32, (bytes, head) => { seen.push(`oversize ${bytes} ${head.slice(0, 10)}`); });
      for (let at = 0; at < text.length; at += size) s.each(text.subarray(at, at + size), (line) => { seen.push(line); });
      expect(seen, `chunks of ${size}`).toEqual(['{"a":1}', `oversize ${long.length} {"type":"P`, '{"b":2}', `oversize 40 zzzzzzzzzz`, '{"c":3}']);
      expect(s.rest().toString()).toBe('{"d":');
    }
  });
});

describe('bad input from the OANDA pricing stream', () => {
  it('quarantines each bad line with its reason; the stream stays up and every good neighbour lands', async () => {
    const good = Array.from({ length: 30 }, (_, k) => price(NOW - 60_000 + k * 1000, `1.17${String(100 + k)}`));
    const errorLine = '{"errorMessage":"Invalid value specified for \'instruments\'"}';
    const lines: string[] = [];
    for (const [k, g] of good.entries()) {
      lines.push(g);
      if (k < OANDA_CASES.length) lines.push(OANDA_CASES[k]!.payload);
      if (k === 20) lines.push(errorLine);
    }
    lines.push(good[5]!); // a duplicate: the same price again (kept once, counted)
    lines.push(price(NOW - 120_000, '1.17050')); // out of order: older than everything before it (stored)
    const huge = price(NOW - 30, '1.17999', { closeoutAsk: `"${'9'.repeat(9 * 1024 * 1024)}"` });
    lines.push(huge);
    lines.push(price(NOW - 20, '1.17998'));
    const fake = new FakeOanda({ token: OANDA_TOKEN, lines: (n) => (n === 1 ? lines : []), intervalMs: 1, heartbeatMs: 200 });
    const url = await fake.start();
    stops.push(() => fake.stop());
    const config = forexConfig([oandaFeedConfig(url)]);
    running = startFeed(db.url, config, config.feeds[0]!);
    await landedAll(running, lines.length - 1);
    await running.stop(); running = undefined;

    expect(fake.connections).toBe(1);
    expect(await db.sql`select normalize_error from ops.batches where frames > 0 and (normalized_at is null or normalize_error is not null)`).toEqual([]);
    // Every good price once (30 + the out-of-order one + the one after the huge line), with its exact bid.
    const quotes = await db.sql<{ bid: string }[]>`select trim_scale(q.bid)::text as bid from market.quotes q order by q.quoted_at`;
    expect(quotes.map((q) => q.bid)).toEqual(['1.1705', ...good.map((_, k) => `1.17${String(100 + k)}`.replace(/0+$/, '')), '1.17998']);
    const [d] = await db.sql<{ n: string }[]>`select sum((counts->>'quotes_duplicate')::int)::text as n from ops.batches`;
    expect(d!.n).toBe('1');

    const rows = await db.sql<{ payload: string; reason: string; stream: string }[]>`
      select payload, reason, stream from staging.quarantine order by frame_id`;
    expect(rows.map((r) => r.payload).slice(0, OANDA_CASES.length)).toEqual(OANDA_CASES.map((c) => c.payload));
    for (const [k, c] of OANDA_CASES.entries()) {
      if (typeof c.reason === 'string') expect(rows[k]!.reason, c.name).toBe(c.reason);
      else expect(rows[k]!.reason, c.name).toMatch(c.reason!);
    }
    // The line over the payload limit (8 MiB): skipped to its newline, a stand-in quarantined with its size.
    expect(rows).toHaveLength(OANDA_CASES.length + 1);
    expect(rows.at(-1)!.stream).toBe('oversize');
    expect(rows.at(-1)!.reason).toBe(`frame of ${Buffer.byteLength(huge)} bytes is over the payload limit of ${8 * 1024 * 1024} bytes (its first bytes are kept)`);
    // The venue's error message: an ops event with its text.
    const errors = await db.sql<{ detail: { raw: string } }[]>`select detail from ops.session_events where kind = 'error_frame'`;
    expect(errors.map((e) => e.detail.raw)).toEqual([errorLine]);
  });
});

describe('bad input from a Polygon WebSocket cluster', () => {
  it('quarantines each bad event alone with its reason and keeps the good events of the same frame', async () => {
    const goodTrades = Array.from({ length: 20 }, (_, k) => tradeEv(k + 1));
    // One frame per case: [good trade, the case, good trade], so every case has good neighbours in its own frame.
    const frames: string[] = [];
    let g = 0;
    for (const c of POLYGON_EVENTS) frames.push(json([goodTrades[g++ % 20], c.ev, goodTrades[g++ % 20]]));
    const malformed = '[{"ev":"T","sym":"MSFT",,}]';
    const nanFrame = json([goodTrades[0]]).replace(/"p":[0-9.]+/, '"p":NaN');
    const truncated = json([goodTrades[1], goodTrades[2]]).slice(0, 150);
    const statusError = '[{"ev":"status","status":"error","message":"Your plan doesn\'t include websocket access."}]';
    frames.push(malformed, nanFrame, truncated, statusError);
    const huge = json([{ ...tradeEv(200), pad: 'x'.repeat(9 * 1024 * 1024) }]);
    frames.push(huge, json([tradeEv(201)]));
    const fake = new FakePolygon({ apiKey: POLYGON_KEY, frames: (_c, n) => (n === 1 ? frames : []), intervalMs: 1 });
    const url = await fake.start();
    stops.push(() => fake.stop());
    const config = forexConfig([{ name: 'polygon-stocks', venue: 'polygon', channels: ['stocks:T', 'stocks:Q'], instruments: [SYM], urls: { ws: url } }]);
    running = startFeed(db.url, config, config.feeds[0]!);
    await landedAll(running, frames.length - 1);
    await running.stop(); running = undefined;

    expect(fake.connections.stocks).toBe(1);
    expect(await db.sql`select normalize_error from ops.batches where frames > 0 and (normalized_at is null or normalize_error is not null)`).toEqual([]);

    // Good trades: 1..20, 109 (its sequence exact past 2^53) and 201; the duplicate of 1 counted once.
    const trades = await db.sql<{ trade_id: string; seq: string }[]>`select trade_id, seq::text as seq from market.trades t order by t.frame_id, t.trade_id`;
    const ids = new Map(trades.map((t) => [t.trade_id, t.seq]));
    expect(ids.size).toBe(trades.length);
    expect([...ids.keys()].sort()).toEqual([...Array.from({ length: 20 }, (_, k) => `4-${k + 1}`), '4-109', '4-201'].sort());
    expect(ids.get('4-109')).toBe('9007199254740993');
    // 26 good neighbours cycle through trades 1..20 (6 sent twice) and the duplicate case: 7 duplicates.
    const [d] = await db.sql<{ n: string }[]>`select sum((counts->>'trades_duplicate')::int)::text as n from ops.batches`;
    expect(d!.n).toBe(String(2 * POLYGON_EVENTS.length - 20 + 1));

    const rows = await db.sql<{ item: number; reason: string; payload: string; stream: string }[]>`
      select item, reason, payload, stream from staging.quarantine order by frame_id, item`;
    const bad = POLYGON_EVENTS.filter((c) => c.reason !== undefined);
    // Each bad event: item 1 of its frame (between two good trades), its own text as the payload.
    for (const [k, c] of bad.entries()) {
      expect(rows[k]!.item, c.name).toBe(1);
      if (typeof c.reason === 'string') expect(rows[k]!.reason, c.name).toBe(c.reason);
      else expect(rows[k]!.reason, c.name).toMatch(c.reason!);
    }
    // Frames that are not JSON are quarantined whole (item -1): the malformed one, the one with a bare NaN, the truncated one.
    expect(rows.slice(bad.length, bad.length + 3).map((r) => [r.item, r.reason, r.payload])).toEqual([
      [-1, 'payload is not valid JSON', malformed], [-1, 'payload is not valid JSON', nanFrame], [-1, 'payload is not valid JSON', truncated]]);
    // The frame over the payload limit: a stand-in with its size; the next frame landed and normalized.
    expect(rows.at(-1)!.stream).toBe('oversize');
    expect(rows.at(-1)!.reason).toBe(`frame of ${Buffer.byteLength(huge)} bytes is over the payload limit of ${8 * 1024 * 1024} bytes (its first bytes are kept)`);
    expect(rows).toHaveLength(bad.length + 4);
    // The venue's status error: an ops event with its text, the connection went on.
    const errors = await db.sql<{ detail: { raw: string } }[]>`select detail from ops.session_events where kind = 'error_frame'`;
    expect(errors.map((e) => e.detail.raw)).toEqual([statusError]);
  });
});
