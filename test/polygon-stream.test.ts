import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lander } from '../ingesters/runtime/lander.ts';
import { WsFeed } from '../ingesters/runtime/connection.ts';
import { POLYGON_INDEX_TICKERS, polygon, polygonWsTicker } from '../ingesters/polygon.ts';
import { loadConfig } from '../src/config.ts';
import { isTickflowError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { POLYGON_KEY, fixtureLines, forexConfig, polygonDocExample, startFeed, type RunningFeed } from './support/forex.ts';
import { quietLog } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// Polygon's WebSocket clusters against a local fake with the real handshake. Frames replayed:
// the real crypto XQ capture (test/fixtures/polygon); for forex, indices and stocks no capture
// exists, so those frames are the venue's documented examples (docs-examples.jsonl) and the
// trade frames of the official client's test mock (client-python-test-mock-ws-session.jsonl).

const doc = (p: string) => JSON.stringify(polygonDocExample(p));
const XQ_FRAMES = fixtureLines('polygon/arbitragegainer-crypto-XQ-quotes-2023-07-26-part1.jsonl');
const MOCK_TRADE_FRAMES = fixtureLines('polygon/client-python-test-mock-ws-session.jsonl')
  .map((l) => JSON.parse(l) as { payload: Array<{ ev: string }> })
  .filter((l) => l.payload[0]!.ev === 'T').map((l) => JSON.stringify(l.payload));

const FRAMES: Record<string, string[]> = {
  // one frame with two event types, as the venue mixes them
  forex: [`[${doc('/forex/C')},${doc('/forex/CA')}]`],
  indices: [`[${doc('/indices/V')}]`, `[${doc('/indices/AM')}]`],
  stocks: [`[${doc('/stocks/T')},${doc('/stocks/Q')}]`, `[${doc('/stocks/AM')}]`, ...MOCK_TRADE_FRAMES],
  crypto: [...XQ_FRAMES, `[${doc('/crypto/XT')}]`, `[${doc('/crypto/XA')}]`],
};
const XQ_PAIRS = [...new Set(XQ_FRAMES.map((f) => (JSON.parse(f) as Array<{ pair: string }>)[0]!.pair))];

const FEEDS = (ws: string) => [
  { name: 'pg-forex', venue: 'polygon', channels: ['forex:C', 'forex:CA'], instruments: ['USD/CNH', 'USD/EUR'], urls: { ws } },
  { name: 'pg-indices', venue: 'polygon', channels: ['indices:V', 'indices:AM'], instruments: ['SPX500'], urls: { ws } },
  { name: 'pg-stocks', venue: 'polygon', channels: ['stocks:T', 'stocks:Q', 'stocks:AM'], instruments: ['MSFT', 'GTE', 'AAPL', 'AMZN'], urls: { ws } },
  { name: 'pg-crypto', venue: 'polygon', channels: ['crypto:XQ', 'crypto:XT', 'crypto:XA'],
    instruments: [...XQ_PAIRS.map((p) => p.replace('-', '/')), 'BTC/USD', 'BCD/USD'], urls: { ws } },
];

let db: TestDatabase;
let fake: FakePolygon;
let lander: Lander;
const running: RunningFeed[] = [];

/**
 * The decimal value of a JSON number field, exactly as sent: plain text as is, exponent forms
 * (the XQ capture has "as":7e-06) written out the way Postgres numeric prints them (0.000007).
 */
function raw(frame: string, field: string): string {
  const text = new RegExp(`"${field}":(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)`).exec(frame)![1]!;
  const m = /^(\d+)(?:\.(\d+))?[eE]([-+]?\d+)$/.exec(text);
  if (!m) return text;
  const digits = m[1]! + (m[2] ?? '');
  const point = m[1]!.length + Number(m[3]); // position of the decimal point in digits
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  return point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
}

beforeAll(async () => {
  db = await createTestDatabase('polygon');
  fake = new FakePolygon({ apiKey: POLYGON_KEY, frames: (cluster) => FRAMES[cluster] ?? [], intervalMs: 0 });
  const ws = await fake.start();
  const config = forexConfig(FEEDS(ws));
  lander = new Lander(db.url, { maxBatchFrames: 2000, flushIntervalMs: 10, maxBufferedBytes: 32 << 20 }, quietLog);
  for (const f of config.feeds) running.push(startFeed(db.url, config, f, {}, lander));
  const total = Object.values(FRAMES).reduce((n, f) => n + f.length, 0);
  await waitFor(async () => {
    await lander.flush();
    const [r] = await db.sql`select count(*)::int as n from staging.frames where venue = 'polygon'`;
    return r!.n === total;
  }, 'every frame of every cluster');
  for (const r of running) await r.stop();
  await lander.close();
});

afterAll(async () => {
  await fake?.stop();
  await db?.drop();
});

describe('Polygon WebSocket clusters against a fake venue', () => {
  it('opens one connection per cluster and greets each in order: connected, auth, auth_success, subscribe', () => {
    expect(fake.connections).toEqual({ forex: 1, indices: 1, stocks: 1, crypto: 1 });
    const sent = (cluster: string) => fake.received.filter((r) => r.cluster === cluster).map((r) => JSON.parse(r.text) as { action: string; params: string });
    for (const cluster of ['forex', 'indices', 'stocks', 'crypto']) {
      expect(sent(cluster).map((m) => m.action)).toEqual(['auth', 'subscribe']);
      expect(sent(cluster)[0]!.params).toBe(POLYGON_KEY);
    }
    expect(sent('forex')[1]!.params).toBe('C.USD/CNH,C.USD/EUR,CA.USD/CNH,CA.USD/EUR');
    expect(sent('indices')[1]!.params).toBe('V.I:SPX,AM.I:SPX');
    expect(sent('stocks')[1]!.params.split(',').slice(0, 2)).toEqual(['T.MSFT', 'T.GTE']);
    expect(sent('crypto')[1]!.params.split(',')[0]).toBe(`XQ.${XQ_PAIRS[0]}`);
  });

  it('records the handshake and subscription acks as events, and the key nowhere', async () => {
    const acks = await db.sql`select detail->>'raw' as raw from ops.session_events where kind = 'ack' order by event_id`;
    const texts = acks.map((a) => a.raw as string);
    expect(texts.filter((t) => t.includes('"status":"connected"'))).toHaveLength(4);
    expect(texts.filter((t) => t.includes('"status":"auth_success"'))).toHaveLength(4);
    expect(texts.filter((t) => t.includes('"status":"success"'))).toHaveLength(4);
    const everything = await db.sql`select (select string_agg(detail::text, ' ') from ops.session_events) as e,
                                           (select string_agg(url, ' ') from ops.sessions) as s,
                                           (select string_agg(payload || coalesce(request, ''), ' ') from staging.frames) as f`;
    expect(JSON.stringify(everything)).not.toContain(POLYGON_KEY);
    const urls = await db.sql`select url from ops.sessions order by url`;
    expect(urls.map((u) => new URL(u.url as string).pathname)).toEqual(['/crypto', '/forex', '/indices', '/stocks']);
  });

  it('lands every frame raw under its cluster and quarantines nothing but the malformed documented index minute', async () => {
    const rows = await db.sql`select stream, payload from staging.frames where venue = 'polygon' order by frame_id`;
    for (const [cluster, frames] of Object.entries(FRAMES)) {
      expect(rows.filter((r) => r.stream === cluster).map((r) => r.payload)).toEqual(frames);
    }
    const q = await db.sql`select stream, item, reason from staging.quarantine order by quarantine_id`;
    // The documented indices AM example carries s = e = 1678220675805 (copied from the per-second
    // event): not a minute, so it is kept and quarantined rather than stored as a 1m candle.
    expect(q.map((x) => ({ ...x }))).toEqual([{ stream: 'indices', item: 0, reason: 'minute aggregate start s=1678220675805 is not on a minute' }]);
  });

  it('normalizes forex quotes and minute aggregates (bid side, tick volume) from one mixed frame', async () => {
    const c = doc('/forex/C');
    const [quote] = await db.sql`select symbol, bid::text, ask::text, bid_size, seq::text, (extract(epoch from quoted_at) * 1000)::bigint::text as ms
                                 from market.bbo where venue = 'polygon' and symbol = 'USD/CNH'`;
    expect({ ...quote }).toEqual({ symbol: 'USD/CNH', bid: raw(c, 'b'), ask: raw(c, 'a'), bid_size: null,
      seq: `${raw(c, 't')}000`, ms: raw(c, 't') });
    const ca = doc('/forex/CA');
    const [candle] = await db.sql`select symbol, timeframe, price_side, open::text, high::text, low::text, close::text, volume::text,
                                         volume_kind, complete, (extract(epoch from bucket) * 1000)::bigint::text as s
                                  from market.venue_candles where venue = 'polygon' and symbol = 'USD/EUR'`;
    expect({ ...candle }).toEqual({ symbol: 'USD/EUR', timeframe: '1m', price_side: 'bid', open: raw(ca, 'o'), high: raw(ca, 'h'),
      low: raw(ca, 'l'), close: raw(ca, 'c'), volume: raw(ca, 'v'), volume_kind: 'tick_count', complete: true, s: raw(ca, 's') });
    const inst = await db.sql`select venue_symbol, symbol, asset_class from market.instruments where venue = 'polygon' and asset_class = 'forex' order by 1`;
    expect(inst.map((i) => ({ ...i }))).toEqual([
      { venue_symbol: 'C:USDCNH', symbol: 'USD/CNH', asset_class: 'forex' },
      { venue_symbol: 'C:USDEUR', symbol: 'USD/EUR', asset_class: 'forex' },
    ]);
  });

  it('normalizes index values and stock trades, quotes and minute aggregates', async () => {
    const v = doc('/indices/V');
    const [value] = await db.sql`select i.symbol, i.venue_symbol, i.asset_class, v.value::text, (extract(epoch from v.valued_at) * 1000)::bigint::text as ms
                                 from market.index_values v join market.instruments i using (instrument_id)`;
    expect({ ...value }).toEqual({ symbol: 'SPX500', venue_symbol: 'I:SPX', asset_class: 'index', value: raw(v, 'val'), ms: raw(v, 't') });

    const tradeFrames = [doc('/stocks/T'), ...MOCK_TRADE_FRAMES.flatMap((f) => (JSON.parse(f) as unknown[]).map((e) => JSON.stringify(e)))];
    const want = tradeFrames.map((t) => ({ symbol: /"sym":"([A-Z]+)"/.exec(t)![1], trade_id: `${raw(t, 'x')}-${/"i":"(\d+)"/.exec(t)![1]}`,
      seq: raw(t, 'q'), price: raw(t, 'p'), size: raw(t, 's'), side: null, ms: raw(t, 't') }));
    const trades = await db.sql`select symbol, trade_id, seq::text, price::text, size::text, side,
                                       (extract(epoch from traded_at) * 1000)::bigint::text as ms
                                from market.ticks where venue = 'polygon' and symbol <> 'BTC/USD' order by traded_at, trade_id`;
    expect(trades.map((t) => ({ ...t }))).toEqual(want.sort((a, b) => a.ms.localeCompare(b.ms) || a.trade_id.localeCompare(b.trade_id)));

    const q = doc('/stocks/Q');
    const [quote] = await db.sql`select bid::text, ask::text, bid_size, ask_size, seq::text from market.bbo where venue = 'polygon' and symbol = 'MSFT'`;
    // bs/as are round lots (their share count depends on the security): not mapped to a size.
    expect({ ...quote }).toEqual({ bid: raw(q, 'bp'), ask: raw(q, 'ap'), bid_size: null, ask_size: null, seq: raw(q, 'q') });

    const am = doc('/stocks/AM');
    const [candle] = await db.sql`select symbol, price_side, open::text, close::text, volume::text, volume_kind
                                  from market.venue_candles where venue = 'polygon' and symbol = 'GTE'`;
    expect({ ...candle }).toEqual({ symbol: 'GTE', price_side: 'trade', open: raw(am, 'o'), close: raw(am, 'c'), volume: raw(am, 'v'), volume_kind: 'base' });
  });

  it('keeps every distinct crypto quote of the real XQ capture once, keyed by millisecond and rank', async () => {
    // Expected: per pair and millisecond, the distinct (bid, ask, sizes) in arrival order get k = 0, 1, ...
    const seen = new Map<string, string[]>();
    const want: Array<Record<string, string>> = [];
    for (const f of XQ_FRAMES) {
      const key = [raw(f, 'bp'), raw(f, 'ap'), raw(f, 'bs'), raw(f, 'as')].join('|');
      const pair = /"pair":"([^"]+)"/.exec(f)![1]!;
      const at = `${pair}@${raw(f, 't')}`;
      const ks = seen.get(at) ?? [];
      if (ks.includes(key)) continue;
      ks.push(key);
      seen.set(at, ks);
      want.push({ symbol: pair.replace('-', '/'), seq: (BigInt(raw(f, 't')) * 1000n + BigInt(ks.length - 1)).toString(),
        bid: raw(f, 'bp'), ask: raw(f, 'ap'), bid_size: raw(f, 'bs'), ask_size: raw(f, 'as') });
    }
    const rows = await db.sql`select b.symbol, b.seq::text, b.bid::text, b.ask::text, b.bid_size::text, b.ask_size::text
                              from market.bbo b join market.instruments i using (instrument_id)
                              where b.venue = 'polygon' and i.asset_class = 'crypto' order by b.symbol, b.seq`;
    const sorted = want.sort((a, b) => a.symbol!.localeCompare(b.symbol!) || (BigInt(a.seq!) < BigInt(b.seq!) ? -1 : 1));
    expect(rows.map((r) => ({ ...r }))).toEqual(sorted);
    expect(want.length).toBe(XQ_FRAMES.length); // every quote of the capture is distinct
    expect(want.filter((w) => !w.seq!.endsWith('000')).length).toBeGreaterThan(0); // several in one millisecond
    const [{ n }] = await db.sql`select count(*)::int as n from market.instruments where venue = 'polygon' and venue_symbol = 'X:CHZUSD' and symbol = 'CHZ/USD'` as unknown as [{ n: number }];
    expect(n).toBe(1);
    const xt = doc('/crypto/XT');
    const [trade] = await db.sql`select symbol, trade_id, price::text, size::text, side from market.ticks where venue = 'polygon' and symbol = 'BTC/USD'`;
    expect({ ...trade }).toEqual({ symbol: 'BTC/USD', trade_id: `${raw(xt, 'x')}-${raw(xt, 'i')}`, price: raw(xt, 'p'), size: raw(xt, 's'), side: 'buy' });
  });

  it('re-normalizing the same frames adds nothing (natural keys) and counts the duplicates', async () => {
    const before = await db.sql`select (select count(*) from market.quotes) as q, (select count(*) from market.trades) as t,
                                       (select count(*) from market.candles) as c, (select count(*) from market.index_values) as v`;
    const batches = await db.sql`select batch_id from ops.batches where frames > 0`;
    const counts: Array<Record<string, number>> = [];
    for (const b of batches) {
      const [r] = await db.sql`select staging.normalize_batch(${b.batch_id}) as counts`;
      counts.push(r!.counts as Record<string, number>);
    }
    const after = await db.sql`select (select count(*) from market.quotes) as q, (select count(*) from market.trades) as t,
                                      (select count(*) from market.candles) as c, (select count(*) from market.index_values) as v`;
    expect(after).toEqual(before);
    const sum = (k: string) => counts.reduce((a, c) => a + Number(c[k] ?? 0), 0);
    expect(sum('quotes')).toBe(0);
    expect(sum('trades')).toBe(0);
    expect(sum('quotes_duplicate')).toBe(XQ_FRAMES.length + 2);
  });

  it('maps canonical instruments to WebSocket and REST tickers and back, the same in TypeScript and SQL', async () => {
    const idx = await db.sql`select symbol, ticker from market.polygon_index_names() order by 1`;
    expect(Object.fromEntries(idx.map((r) => [r.symbol, r.ticker]))).toEqual(POLYGON_INDEX_TICKERS);
    const cases = [['forex', 'C', 'EUR/USD', 'C:EURUSD'], ['crypto', 'XT', 'BTC/USD', 'X:BTCUSD'], ['indices', 'V', 'SPX500', 'I:SPX'],
      ['indices', 'V', 'US30', 'I:DJI'], ['indices', 'AM', 'NAS100', 'I:NDX'], ['stocks', 'T', 'AAPL', 'AAPL']] as const;
    for (const [cluster, ev, canonical, rest] of cases) {
      const ws = polygonWsTicker(cluster, canonical);
      const [r] = await db.sql`select market.polygon_ws_ticker(${cluster}, ${ev}, ${ws}) as ticker,
                                      (market.polygon_symbol(market.polygon_ws_ticker(${cluster}, ${ev}, ${ws}), ${cluster === 'crypto' ? ws : null})).symbol`;
      expect({ ...r }, `${cluster} ${canonical}`).toEqual({ ticker: rest, symbol: canonical });
    }
  });
});

describe('Polygon handshake refusals and configuration', () => {
  it('a rejected key is an error event and a slow retry (circuit open), never a tight loop; the key is in no log or row', async () => {
    const db2 = await createTestDatabase('polygon_auth');
    const f2 = new FakePolygon({ apiKey: 'the-right-key', frames: () => [] });
    const ws = await f2.start();
    const config = loadConfig({ env: { POLYGON_API_KEY: 'a-wrong-polygon-key-0193' }, overrides: { feeds: [FEEDS(ws)[0]] } });
    let logged = '';
    const log = createLogger({ level: 'trace', destination: new Writable({ write(c, _e, cb) { logged += String(c); cb(); } }) });
    const l = new Lander(db2.url, { maxBatchFrames: 100, flushIntervalMs: 10, maxBufferedBytes: 1 << 24 }, log);
    const feed = new WsFeed(polygon, config.feeds[0]!, l, log, { secrets: config.secrets, backoffBaseMs: 20, circuitRetryMs: 60_000 });
    try {
      feed.start();
      await waitFor(async () => {
        await l.flush();
        return (await db2.sql`select 1 from ops.session_events where kind = 'circuit_open'`).length === 1;
      }, 'the circuit to open');
      await new Promise((r) => setTimeout(r, 1_000));
      expect(f2.connections.forex).toBe(1);
      expect(f2.authFailures).toBe(1);
      expect(feed.state).toBe('circuit_open');
      const [e] = await db2.sql`select detail from ops.session_events where kind = 'error_frame' and detail ? 'reason'`;
      expect((e!.detail as { reason: string }).reason).toBe('handshake refused: authentication failed (auth_failed)');
      const [s] = await db2.sql`select close_reason from ops.sessions`;
      expect(s!.close_reason).toBe('refused: authentication failed (auth_failed)');
      await feed.stop();
      await l.flush();
      const rows = await db2.sql`select (select string_agg(detail::text, ' ') from ops.session_events) as e,
                                        (select string_agg(url || coalesce(close_reason, ''), ' ') from ops.sessions) as s`;
      expect(JSON.stringify(rows) + logged).not.toContain('a-wrong-polygon-key-0193');
      expect(logged).toContain('circuit open');
    } finally {
      await feed.stop();
      await l.close();
      await f2.stop();
      await db2.drop();
    }
  });

  it('refuses a feed whose channels name two clusters (one connection per cluster), or without a key', () => {
    const mixed = forexConfig([{ name: 'pg-mixed', venue: 'polygon', channels: ['forex:C', 'stocks:T'], instruments: ['EUR/USD'], urls: {} }]);
    let caught: unknown;
    try { polygon.validate!(mixed.feeds[0]!, mixed.secrets); } catch (err) { caught = err; }
    expect(isTickflowError(caught, 'CONFIG_INVALID')).toBe(true);
    expect(String((caught as Error).message)).toMatch(/one Polygon cluster/);
    const ok = forexConfig([FEEDS('ws://127.0.0.1:1')[0]]);
    expect(() => polygon.validate!(ok.feeds[0]!, {})).toThrow(/POLYGON_API_KEY/);
  });
});
