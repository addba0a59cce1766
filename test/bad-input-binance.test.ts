import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { expectedBook, loadSpotCapture } from './support/binance-capture.ts';
import { binanceFeed, startBinance } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';
import { loadConfig } from '../src/config.ts';
import { TickflowError } from '../src/errors.ts';

// Bad input from a Binance WebSocket, over a real socket to the local fake venue, landed in the
// real Postgres: each case says what must happen to it. The promises: no bad frame ends the
// connection or fails a batch, the good frames around it land and normalize, and each bad
// payload sits in staging.quarantine with its reason (venue error frames, which are control
// messages and not data, are ops events with their text instead).

const { frames: capture, snapshot } = loadSpotCapture();
const TRADE = capture.map((f) => f.text).find((t) => t.includes('@trade'))!;
const TICKER = capture.map((f) => f.text).find((t) => t.includes('@bookTicker'))!;
const NOW = Date.now();

/** The captured trade frame with its id and times replaced (and any field overridden as raw JSON text). */
function trade(id: string, over: Record<string, string> = {}): string {
  let text = TRADE.replace(/"t":\d+/, `"t":${id}`).replace(/"T":\d+/, `"T":${NOW}`).replace(/"E":\d+/, `"E":${NOW}`);
  for (const [k, v] of Object.entries(over)) text = text.replace(new RegExp(`"${k}":("[^"]*"|[^,}]+)`), `"${k}":${v}`);
  return text;
}

interface Case {
  name: string;
  frame: string;
  /** The quarantine reason this frame must get (undefined: it must not be quarantined). */
  reason?: RegExp | string;
}

// Each bad frame and what must become of it.
const CASES: Case[] = [
  { name: 'malformed JSON (a doubled comma)', frame: '{"stream":"btcusdt@trade","data":{"e":"trade",,"t":1}}', reason: 'payload is not valid JSON' },
  { name: 'a frame truncated in the middle', frame: trade('900001').slice(0, 90), reason: 'payload is not valid JSON' },
  { name: 'not JSON at all', frame: 'Internal Server Error', reason: 'payload is not valid JSON' },
  { name: 'price as a JSON number instead of a string', frame: trade('900002', { p: '61837.63' }), reason: 'price p is not a positive decimal string: 61837.63' },
  { name: 'trade id as a string', frame: trade('900003').replace('"t":900003', '"t":"900003"'), reason: 'trade id t is not an integer that fits 64 bits: "900003"' },
  { name: 'maker flag as a string', frame: trade('900004', { m: '"true"' }), reason: 'maker flag m is not a boolean: "true"' },
  { name: 'trade time as a string', frame: trade('900005', { T: `"${NOW}"` }), reason: `trade time T is not an integer of milliseconds: "${NOW}"` },
  { name: 'size as null', frame: trade('900006', { q: 'null' }), reason: 'size q is not a positive decimal string: null' },
  { name: 'price "NaN"', frame: trade('900007', { p: '"NaN"' }), reason: 'price p is not a positive decimal string: "NaN"' },
  { name: 'price NaN as a bare JSON literal', frame: trade('900008', { p: 'NaN' }), reason: 'payload is not valid JSON' },
  { name: 'price "Infinity"', frame: trade('900009', { p: '"Infinity"' }), reason: 'price p is not a positive decimal string: "Infinity"' },
  { name: 'size "-Infinity"', frame: trade('900010', { q: '"-Infinity"' }), reason: 'size q is not a positive decimal string: "-Infinity"' },
  { name: 'price Infinity as a bare JSON literal', frame: trade('900011', { p: 'Infinity' }), reason: 'payload is not valid JSON' },
  { name: 'negative price', frame: trade('900012', { p: '"-61837.63000000"' }), reason: 'price p is not a positive decimal string: "-61837.63000000"' },
  { name: 'zero price', frame: trade('900013', { p: '"0.00000000"' }), reason: 'price p is not a positive decimal string: "0.00000000"' },
  { name: 'zero size', frame: trade('900014', { q: '"0"' }), reason: 'size q is not a positive decimal string: "0"' },
  { name: 'trade id 2^64 (beyond 64 bits)', frame: trade('18446744073709551616'), reason: 'trade id t is not an integer that fits 64 bits: 18446744073709551616' },
  { name: 'trade id 2^63 (one past bigint)', frame: trade('9223372036854775808'), reason: 'trade id t is not an integer that fits 64 bits: 9223372036854775808' },
  { name: 'trade time 0 (1970)', frame: trade('900015', { T: '0' }), reason: /^event time 1970-01-01 00:00:00(\+00)? is before 2009$/ },
  { name: 'trade time in 2100', frame: trade('900016', { T: '4102444800000' }), reason: /^event time 2100-01-01 00:00:00(\+00)? is more than a day after it was received$/ },
  { name: 'trade time in microseconds (a unit change)', frame: trade('900017', { T: `${NOW}000` }), reason: /is more than a day after it was received$/ },
  { name: 'unknown event type on the trade stream', frame: trade('900018', { e: '"trade2"' }), reason: 'expected event e=trade, received e=trade2' },
  { name: 'an unknown stream', frame: '{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","s":"BTCUSDT","p":"1"}}', reason: /^unknown event type: \{"stream":"btcusdt@markPrice"/ },
  { name: 'a frame without the combined-stream envelope', frame: '{"e":"trade","s":"BTCUSDT","t":5}', reason: 'unknown event type: {"e":"trade","s":"BTCUSDT","t":5}' },
  { name: 'a symbol with SQL metacharacters', frame: trade('900019', { s: `"BTC'USDT; drop table market.trades; --"` }), reason: `missing or unknown symbol s=BTC'USDT; drop table market.trades; --` },
  { name: 'a stream name with SQL metacharacters', frame: `{"stream":"btc'usdt@trade","data":{"e":"trade"}}`, reason: `unknown event type: {"stream":"btc'usdt@trade","data":{"e":"trade"}}` },
  { name: 'a bookTicker with a negative bid', frame: TICKER.replace(/"b":"[^"]+"/, '"b":"-1.0"'), reason: 'bid b or ask a is not a positive decimal string' },
  { name: 'a bookTicker with update id beyond 64 bits', frame: TICKER.replace(/"u":\d+/, '"u":99999999999999999999'), reason: 'update id u is not an integer that fits 64 bits: 99999999999999999999' },
  // Good frames with awkward values: stored, exactly.
  { name: 'trade id 2^53 + 1 (beyond a double: must stay exact)', frame: trade('9007199254740993') },
  { name: 'trade id 2^63 - 1 (the largest bigint)', frame: trade('9223372036854775807') },
  { name: 'a duplicate of good trade 3 (counted, not stored twice)', frame: trade('3') },
];

let db: TestDatabase;
let fake: FakeBinance | undefined;
let stopFeed: (() => Promise<void>) | undefined;

beforeAll(async () => { db = await createTestDatabase('badbn'); });
afterAll(async () => { await db?.drop(); });
afterEach(async () => {
  await stopFeed?.(); stopFeed = undefined;
  await fake?.stop(); fake = undefined;
  await db.sql`truncate staging.frames, staging.quarantine, market.trades, market.quotes, market.book_levels,
               market.book_state, market.book_snapshots, ops.sessions, ops.session_events, ops.batches, quality.gaps`;
});

describe('bad input from a Binance WebSocket', () => {
  it('quarantines each bad frame with its reason; the connection stays up and every good neighbour lands', async () => {
    // Good trades 1..40 with consecutive ids; a case after every good one; trades 11 and 12 swapped (out of order: both stored).
    const good = Array.from({ length: 40 }, (_, k) => trade(String(k + 1)));
    [good[10], good[11]] = [good[11]!, good[10]!];
    const goodTicker = TICKER;
    const errorFrame = '{"code":2,"msg":"Invalid request: unknown variant `SUBSCRIBEX`"}';
    const stream: string[] = [goodTicker];
    for (const [k, g] of good.entries()) {
      stream.push(g);
      if (k < CASES.length) stream.push(CASES[k]!.frame);
      if (k === 20) stream.push(errorFrame);
    }
    fake = new FakeBinance({ frames: () => stream, intervalMs: 1, sendUnsubscribed: true });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade', 'bookTicker'] }));
    stopFeed = f.stop;
    // The error frame is an event, not a frame: everything else lands.
    await waitFor(async () => { await f.lander.flush(); return f.lander.landedFrames >= stream.length - 1; }, 'every frame landed');
    await f.stop(); stopFeed = undefined;

    // One connection, never closed by bad input; no batch failed to normalize.
    expect(fake.connections).toBe(1);
    const sessions = await db.sql`select close_reason from ops.sessions`;
    expect(sessions.map((s) => s.close_reason)).toEqual(['shutdown']);
    expect(await db.sql`select normalize_error from ops.batches where frames > 0 and (normalized_at is null or normalize_error is not null)`).toEqual([]);

    // Every good trade once (the duplicate counted), with the exact ids, plus the awkward good ones.
    const trades = await db.sql<{ trade_id: string; seq: string }[]>`select t.trade_id, t.seq::text as seq from market.trades t order by t.seq`;
    const wantIds = [...Array.from({ length: 40 }, (_, k) => String(k + 1)), '9007199254740993', '9223372036854775807'];
    expect(trades.map((t) => t.trade_id)).toEqual(wantIds);
    expect(trades.map((t) => t.seq)).toEqual(wantIds);
    const [dup] = await db.sql<{ n: string }[]>`select sum((counts->>'trades_duplicate')::int)::text as n from ops.batches`;
    expect(dup!.n).toBe('1');
    const [q] = await db.sql<{ n: number }[]>`select count(*)::int as n from market.quotes`;
    expect(q!.n).toBe(1);

    // Each bad frame quarantined once, whole, with the reason its case names.
    const rows = await db.sql<{ payload: string; reason: string; item: number }[]>`
      select payload, reason, item from staging.quarantine order by frame_id`;
    const bad = CASES.filter((c) => c.reason !== undefined);
    expect(rows.map((r) => r.payload)).toEqual(bad.map((c) => c.frame));
    for (const [k, c] of bad.entries()) {
      if (typeof c.reason === 'string') expect(rows[k]!.reason, c.name).toBe(c.reason);
      else expect(rows[k]!.reason, c.name).toMatch(c.reason!);
      expect(rows[k]!.item, c.name).toBe(-1);
    }

    // The venue's error frame: an error_frame event with its text; the connection went on.
    const errors = await db.sql<{ detail: { raw: string } }[]>`select detail from ops.session_events where kind = 'error_frame'`;
    expect(errors.map((e) => e.detail.raw)).toEqual([errorFrame]);
  });

  it('applies duplicate and out-of-order order-book diffs by their sequence: the book is the documented one', async () => {
    // The capture with every 5th depth diff sent twice, and an old diff replayed later.
    const texts = capture.map((c) => c.text);
    const depthAt = texts.map((t, k) => (t.includes('@depth') ? k : -1)).filter((k) => k >= 0);
    const replayed = texts[depthAt[3]!]!;
    const stream: string[] = [];
    for (const [k, t] of texts.entries()) {
      stream.push(t);
      if (depthAt.includes(k) && depthAt.indexOf(k) % 5 === 0) stream.push(t);
      if (k === depthAt[20]) stream.push(replayed);
    }
    fake = new FakeBinance({ frames: () => stream, intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['depth'] }));
    stopFeed = f.stop;
    const depthFrames = stream.filter((t) => t.includes('@depth')).length;
    await waitFor(async () => {
      await f.lander.flush();
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from staging.frames where stream = 'depth'`;
      return r!.n === depthFrames;
    }, 'every diff landed, duplicates too');
    await f.stop(); stopFeed = undefined;
    expect(fake.connections).toBe(1);
    const want = expectedBook(capture, snapshot); // the procedure on the capture without the repeats
    const [state] = await db.sql`select last_update_id::text, in_sync, breaks::int from market.book_state`;
    expect(state).toEqual({ last_update_id: want.lastUpdateId.toString(), in_sync: true, breaks: 0 });
    const levels = await db.sql<{ side: string; price: string; size: string }[]>`select side, price::text, size::text from market.book`;
    expect(new Map(levels.filter((l) => l.side === 'bid').map((l) => [l.price, l.size]))).toEqual(want.bids);
    expect(new Map(levels.filter((l) => l.side === 'ask').map((l) => [l.price, l.size]))).toEqual(want.asks);
    // The repeats are counted as skipped, never applied twice, never quarantined.
    const [c] = await db.sql<{ skipped: string }[]>`select sum((counts->>'book_diffs_skipped')::int)::text as skipped from ops.batches`;
    expect(Number(c!.skipped)).toBeGreaterThanOrEqual(stream.length - texts.length);
    expect(await db.sql`select reason from staging.quarantine`).toEqual([]);
  });

  it('quarantines a frame over the payload limit (8 MiB) with its size; the connection goes on and its neighbours land', async () => {
    // A real-shaped trade frame padded to 9 MiB, between good trades 1..20.
    const huge = trade('777', { M: `true,"pad":"${'x'.repeat(9 * 1024 * 1024)}"` });
    const good = Array.from({ length: 20 }, (_, k) => trade(String(k + 1)));
    const stream = [...good.slice(0, 10), huge, ...good.slice(10)];
    fake = new FakeBinance({ frames: () => stream, intervalMs: 1 });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'] }));
    stopFeed = f.stop;
    await waitFor(async () => { await f.lander.flush(); return f.lander.landedFrames >= stream.length; }, 'every frame landed');
    await f.stop(); stopFeed = undefined;
    expect(fake.connections).toBe(1);
    const trades = await db.sql<{ trade_id: string }[]>`select t.trade_id from market.trades t order by t.seq`;
    expect(trades.map((t) => t.trade_id)).toEqual(good.map((_, k) => String(k + 1)));
    // The frame itself is not landed (over the limit); a stand-in with its size and first 1024 bytes is, and quarantined.
    const q = await db.sql<{ stream: string; reason: string; payload: string }[]>`select stream, reason, payload from staging.quarantine`;
    expect(q).toHaveLength(1);
    expect(q[0]!.stream).toBe('oversize');
    expect(q[0]!.reason).toBe(`frame of ${Buffer.byteLength(huge)} bytes is over the payload limit of ${8 * 1024 * 1024} bytes (its first bytes are kept)`);
    expect(JSON.parse(q[0]!.payload)).toEqual({ bytes: Buffer.byteLength(huge), limit: 8 * 1024 * 1024, head: huge.slice(0, 1024) });
  });

  it('a frame past the WebSocket\'s own limit ends the connection with 1009: the reason and the gap are recorded, the feed reconnects', async () => {
    let n = 0;
    function* frames(): Generator<string> {
      n++;
      for (let id = 1; id <= 10; id++) yield trade(String((n - 1) * 100 + id));
      if (n === 1) yield trade('999', { M: `true,"pad":"${'x'.repeat(300 * 1024)}"` });
    }
    fake = new FakeBinance({ frames, intervalMs: 1 });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'] }),
      { maxPayloadBytes: 64 * 1024, maxReceiveBytes: 256 * 1024 });
    stopFeed = f.stop;
    await waitFor(async () => { await f.lander.flush(); return f.lander.landedFrames >= 20; }, 'both connections\' trades');
    await f.stop(); stopFeed = undefined;
    expect(fake.connections).toBe(2);
    const [d] = await db.sql<{ detail: { reason: string; code: number } }[]>`
      select detail from ops.session_events where kind = 'disconnected' order by event_id limit 1`;
    // ws sends the venue a 1009 close and drops the socket (locally 1006): the reason says why.
    expect(d!.detail.reason).toBe('error: Max payload size exceeded');
    const trades = await db.sql<{ trade_id: string }[]>`select t.trade_id from market.trades t order by t.seq`;
    expect(trades.map((t) => t.trade_id)).toEqual([...Array.from({ length: 10 }, (_, k) => String(k + 1)), ...Array.from({ length: 10 }, (_, k) => String(101 + k))]);
    const gaps = await db.sql`select detected_by from quality.gaps`;
    expect(gaps.map((g) => g.detected_by)).toEqual(['disconnect']);
  });

  it('refuses instruments with SQL metacharacters in the configuration, naming the key and the value', () => {
    for (const bad of [`BTC/USDT'; drop table market.trades; --`, 'BTC/USDT"', 'BTC/USDT;', 'BTC/US DT', 'btc/usdt']) {
      let err: unknown;
      try {
        loadConfig({ env: {}, overrides: { feeds: [{ name: 'x', venue: 'binance', channels: ['trade'], instruments: [bad] }] } });
      } catch (e) { err = e; }
      expect(err, bad).toBeInstanceOf(TickflowError);
      expect((err as TickflowError).code).toBe('CONFIG_INVALID');
      expect((err as Error).message).toContain('feeds.0.instruments.0');
    }
  });
});
