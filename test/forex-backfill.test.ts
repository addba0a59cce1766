import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.ts';
import { registerHistoryRuntime, restBaseUrl } from '../src/history.ts';
import { RestClient } from '../ingesters/runtime/rest.ts';
import { oandaRest } from '../ingesters/oanda-rest.ts';
import { polygonRest, polygonRestTicker } from '../ingesters/polygon-rest.ts';
import { FakeOanda, OandaCandleHistory, type OandaCandle } from './fakes/oanda.ts';
import { FakePolygon, PolygonAggHistory, type PolygonBar } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { FAST_REST, startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { OANDA_TOKEN, POLYGON_KEY, fixture, forexConfig, oandaFeedConfig, polygonFeedConfig } from './support/forex.ts';
import { waitFor } from './support/wait.ts';

// OANDA candles and Polygon aggregates through the backfill engine: plans of chunks run by a real
// graphile-worker pool against the fake venues on 127.0.0.1, which answer like the venues (the
// Authorization header checked, OANDA's 5,000-candle maximum and future `to` refused, Polygon's
// next_url paging). Expectations come from the fakes' data, read here: the captured OANDA H1 page
// (test/fixtures/oanda) and the fakes' generators (OandaCandleHistory, PolygonAggHistory).

const MIN = 60_000;
const DAY = 1440 * MIN;
const H1_PAGE = 'oanda/oandapyV20-notebook-candles-EUR_USD-H1-from-2017-01-01-count10.json';
const OANDA = new OandaCandleHistory(['EUR_USD', 'GBP_USD'], [fixture(H1_PAGE)], ['GBP_USD']); // GBP_USD open all week (the test may run on a weekend)
const POLYGON = new PolygonAggHistory(['C:EURUSD', 'I:NDX', 'AAPL']);
const PER_PAGE = 2000; // the fake cuts answers at 2,000 bars (the venue gives next_url when it cuts one)

let db: TestDatabase;
let oandaFake: FakeOanda;
let polygonFake: FakePolygon;
let workers: HistoryWorkers;
let config: Config;
const logLines: string[] = [];
// A logger that does not redact: a secret handed to a log call would show here.
const log = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } }));

function useRuntime(c: Config): void {
  registerHistoryRuntime({ url: db.url, config: c, log, rest: FAST_REST });
}

async function plan(venue: string, symbol: string, timeframe: string, from: string, to: string): Promise<Record<string, any>> {
  const [p] = await db.sql<{ id: string }[]>`
    select ops.plan_backfill(${venue}, ${symbol}, 'candles', ${timeframe}, ${from}::timestamptz, ${to}::timestamptz)::text as id`;
  const done = await waitFor(async () => {
    const [row] = await db.sql`select * from ops.backfill_progress where plan_id = ${p!.id}`;
    return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
  }, `plan ${p!.id} to finish`, 40_000, 100);
  return done!;
}

const iso = (ms: number) => new Date(ms).toISOString();
const oandaCandleRequests = (instrument: string) => oandaFake.requests.filter((r) => r.path.startsWith(`/v3/instruments/${instrument}/candles`));

/** Stored venue candles of a venue and symbol, as text. */
async function stored(venue: string, symbol: string, timeframe: string, from: number, to: number) {
  return (await db.sql`
    select price_side, (extract(epoch from bucket) * 1000)::bigint::text as t, open::text, high::text, low::text, close::text,
           volume::text, volume_kind, trade_count::text, complete
    from market.venue_candles
    where venue = ${venue} and symbol = ${symbol} and timeframe = ${timeframe} and bucket >= ${iso(from)} and bucket < ${iso(to)}
    order by bucket, price_side`).map((r) => ({ ...r }));
}

function oandaRows(c: OandaCandle) {
  return (['ask', 'bid', 'mid'] as const).map((side) => ({
    price_side: side, t: String(c.time), open: c[side].o, high: c[side].h, low: c[side].l, close: c[side].c,
    volume: String(c.volume), volume_kind: 'tick_count', trade_count: null, complete: c.complete,
  }));
}

function oandaExpected(instrument: string, granularity: string, width: number, from: number, to: number): OandaCandle[] {
  const out: OandaCandle[] = [];
  for (let t = from; t < to; t += width) {
    const c = OANDA.candle(instrument, granularity, t, Date.now());
    if (c) out.push(c);
  }
  return out;
}

function polygonExpected(ticker: string, from: number, to: number): PolygonBar[] {
  const out: PolygonBar[] = [];
  for (let t = from; t < to; t += MIN) {
    const b = POLYGON.bar(ticker, MIN, t);
    if (b) out.push(b);
  }
  return out;
}

beforeAll(async () => {
  db = await createTestDatabase('fxbackfill');
  await db.sql`select ops.set_setting('backfill.max_attempts', '2')`;
  oandaFake = new FakeOanda({ token: OANDA_TOKEN, lines: () => [], history: OANDA });
  polygonFake = new FakePolygon({ apiKey: POLYGON_KEY, frames: () => [], history: POLYGON, resultsPerPage: PER_PAGE });
  const oandaUrl = await oandaFake.start();
  const polygonWs = await polygonFake.start();
  config = forexConfig([
    oandaFeedConfig(oandaUrl, { enabled: false }),
    polygonFeedConfig(polygonWs, { enabled: false, urls: { ws: polygonWs, rest: polygonFake.restUrl } }),
  ]);
  workers = await startHistoryWorkers(db.url, polygonFake.restUrl, { config, concurrency: 3 });
  useRuntime(config);
});
afterAll(async () => {
  await workers?.stop();
  await oandaFake?.stop();
  await polygonFake?.stop();
  await db?.drop();
});

describe('hosts and tickers from the configuration', () => {
  it('OANDA: a feed\'s urls.rest, else the REST host of its stream host (live or practice), else the practice host', () => {
    const hosts = (urls: Record<string, string>[]) => restBaseUrl(loadConfig({ env: {}, overrides: { feeds: urls.map((u, k) => ({
      name: `oanda-${k}`, venue: 'oanda', enabled: false, channels: ['pricing'], instruments: ['EUR/USD'], account: '101-004-1234567-001', urls: u })) } }), oandaRest);
    expect(hosts([{ stream: 'https://stream-fxtrade.oanda.com' }])).toBe('https://api-fxtrade.oanda.com');
    expect(hosts([{ stream: 'https://stream-fxpractice.oanda.com/' }])).toBe('https://api-fxpractice.oanda.com');
    expect(hosts([{ stream: 'https://stream-fxtrade.oanda.com' }, { rest: 'http://127.0.0.1:9' }])).toBe('http://127.0.0.1:9');
    expect(hosts([])).toBe('https://api-fxpractice.oanda.com');
    expect(restBaseUrl(loadConfig({ env: {}, overrides: { feeds: [] } }), polygonRest)).toBe('https://api.polygon.io');
  });

  it('Polygon REST tickers: C: forex, X: crypto, I: indices by their index names, stocks as they are', () => {
    expect(['EUR/USD', 'USD/JPY', 'BTC/USD', 'ETH/USDT', 'US30', 'NAS100', 'SPX500', 'AAPL'].map(polygonRestTicker))
      .toEqual(['C:EURUSD', 'C:USDJPY', 'X:BTCUSD', 'X:ETHUSDT', 'I:DJI', 'I:NDX', 'I:SPX', 'AAPL']);
  });
});

describe('request budgets', () => {
  it('OANDA: 100 requests a second (the venue allows 120 per token); Polygon: the free plan\'s 5 a minute, configurable', async () => {
    await RestClient.ensureBudget(db.sql, oandaRest);
    await RestClient.ensureBudget(db.sql, polygonRest);
    const rows = await db.sql`select venue, name, unit, extract(epoch from window_length)::int as seconds, max_per_window
                              from ops.rate_limits where venue in ('oanda', 'polygon') order by venue`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { venue: 'oanda', name: 'requests', unit: 'requests', seconds: 1, max_per_window: 100 },
      { venue: 'polygon', name: 'requests', unit: 'requests', seconds: 60, max_per_window: 5 },
    ]);
    // A paid plan: the operator raises the budget (here, so the tests run fast).
    await db.sql`select ops.set_rate_limit('polygon', 'requests', 'requests', '1 minute', 600)`;
    const [p] = await db.sql`select max_per_window from ops.rate_status where venue = 'polygon'`;
    expect(p!.max_per_window).toBe(600);
  });
});

describe('OANDA candles (bid, ask, mid) through the backfill engine', () => {
  const FROM = Date.UTC(2021, 0, 4); // a Monday: two chunks of seven days
  const TO = FROM + 14 * DAY;

  it('lands every M1 candle of two weeks with bid, ask and mid, in windows of at most 5,000 candles, with the bearer token', async () => {
    const p = await plan('oanda', 'EUR/USD', '1m', iso(FROM), iso(TO));
    const want = oandaExpected('EUR_USD', 'M1', MIN, FROM, TO);
    expect(want.length).toBeGreaterThan(12_000); // the fake's week: closed from Friday 22:00 to Sunday 22:00
    expect(await stored('oanda', 'EUR/USD', '1m', FROM, TO)).toEqual(want.flatMap(oandaRows));
    // Three requests per 7-day chunk (5,000 + 5,000 + 80 minutes), each asking bid, ask and mid.
    const reqs = oandaCandleRequests('EUR_USD');
    expect(reqs.map((r) => new URL(r.path, 'http://x').searchParams.get('from')).sort()).toEqual(
      [0, 5000, 10_000, 10_080, 15_080, 20_080].map((m) => iso(FROM + m * MIN).replace('.000Z', 'Z')));
    for (const r of reqs) {
      const q = new URL(r.path, 'http://x').searchParams;
      expect({ price: q.get('price'), granularity: q.get('granularity'), auth: r.authorization })
        .toEqual({ price: 'MBA', granularity: 'M1', auth: `Bearer ${OANDA_TOKEN}` });
      expect((Date.parse(q.get('to')!) - Date.parse(q.get('from')!)) / MIN).toBeLessThan(5000);
    }
    expect({ state: p.state, chunks: p.chunks, pages: String(p.pages), rows_new: String(p.rows_new), rows_received: String(p.rows_received) })
      .toEqual({ state: 'done', chunks: 2, pages: '6', rows_new: String(3 * want.length), rows_received: String(3 * want.length) });
    // Requests in flight from both chunks, yet new connections come at most two a second (kept alive after).
    const conns = oandaFake.tcpConnections;
    expect(conns.length).toBeGreaterThan(1);
    expect(conns.length).toBeLessThanOrEqual(reqs.length);
    expect(Math.min(...conns.slice(1).map((t, k) => t - conns[k]!))).toBeGreaterThanOrEqual(450);
  });

  it('running it again makes no request', async () => {
    const before = oandaFake.requests.length;
    const again = await plan('oanda', 'EUR/USD', '1m', iso(FROM), iso(TO));
    expect(again.state).toBe('done');
    expect(oandaFake.requests.length).toBe(before);
  });

  it('serves the captured H1 page\'s candles exactly (mid as captured), the rest of the range generated', async () => {
    const from = Date.UTC(2017, 0, 2);
    const to = Date.UTC(2017, 0, 4);
    const p = await plan('oanda', 'EUR/USD', '1h', iso(from), iso(to));
    expect(p.state).toBe('done');
    const page = JSON.parse(fixture(H1_PAGE)) as { candles: Array<{ time: string; volume: number; mid: { o: string; h: string; l: string; c: string } }> };
    const mids = (await stored('oanda', 'EUR/USD', '1h', from, to)).filter((r) => r.price_side === 'mid');
    for (const c of page.candles) {
      expect(mids.find((r) => r.t === String(Date.parse(c.time)))).toMatchObject({
        open: c.mid.o, high: c.mid.h, low: c.mid.l, close: c.mid.c, volume: String(c.volume), volume_kind: 'tick_count', complete: true });
    }
    expect(mids).toHaveLength(oandaExpected('EUR_USD', 'H1', 3_600_000, from, to).length);
  });

  it('keeps the candle still open as incomplete, and replaces it when a later run finds it complete', async () => {
    const W = 10_000;
    // Start 1.5 to 3 s into a 10-second bucket: the open bucket is inside the request's `to` (one
    // second before now) and the request has 7 s to reach the venue before the bucket closes.
    await waitFor(() => Date.now() % W >= 1500 && Date.now() % W < 3000, 'the start of a 10-second bucket', 15_000, 10);
    const open = Math.floor(Date.now() / W) * W;
    const from = open - 60_000;
    const to = open + 60_000;
    const first = await plan('oanda', 'GBP/USD', '10s', iso(from), iso(to));
    expect(first.state).toBe('done');
    const [chunk] = await db.sql`select state from ops.backfill_chunks where venue = 'oanda' and symbol = 'GBP/USD'`;
    expect(chunk!.state).toBe('partial'); // it ends in the future
    const servedOpen = oandaFake.served.find((s) => s.instrument === 'GBP_USD' && s.candle.time === open);
    expect(servedOpen?.candle.complete).toBe(false);
    const before = await stored('oanda', 'GBP/USD', '10s', open, open + W);
    expect(before).toEqual(oandaRows(servedOpen!.candle));

    await waitFor(() => Date.now() >= open + W + 1500, 'the bucket to close', 20_000, 20);
    const second = await plan('oanda', 'GBP/USD', '10s', iso(from), iso(to));
    expect(second.state).toBe('done');
    const complete = OANDA.candle('GBP_USD', 'S10', open, Date.now())!;
    expect(complete.complete).toBe(true);
    expect(complete.mid.c).not.toBe(servedOpen!.candle.mid.c);
    expect(await stored('oanda', 'GBP/USD', '10s', open, open + W)).toEqual(oandaRows(complete));
    // Every bucket before it once, as served last.
    const all = await stored('oanda', 'GBP/USD', '10s', from, open);
    expect(all).toEqual(oandaExpected('GBP_USD', 'S10', W, from, open).flatMap(oandaRows));
  });

  it('429s pause the venue\'s budget for every worker and the pages are fetched again; the answers are kept', async () => {
    oandaFake.throttleNext(2);
    const from = Date.UTC(2021, 1, 1);
    const p = await plan('oanda', 'EUR/USD', '1m', iso(from), iso(from + 2 * 3_600_000));
    expect(p.state).toBe('done');
    expect(await stored('oanda', 'EUR/USD', '1m', from, from + 2 * 3_600_000))
      .toEqual(oandaExpected('EUR_USD', 'M1', MIN, from, from + 2 * 3_600_000).flatMap(oandaRows));
    const [s] = await db.sql`select throttled::int, last_status from ops.rate_state where venue = 'oanda'`;
    expect({ ...s }).toEqual({ throttled: 2, last_status: 429 });
    const q = await db.sql`select reason from staging.quarantine where venue = 'oanda' order by frame_id`;
    expect(q.map((r) => r.reason)).toEqual(Array(2).fill('HTTP 429 response: {"errorMessage":"Rate limit violation of newly established connections."}'));
    await db.sql`delete from staging.quarantine where venue = 'oanda'`;
  });

  it('a wrong token is refused by the venue (401): the chunk fails at once with the venue\'s answer, quarantined', async () => {
    const wrong = 'oanda-wrong-token-0000';
    useRuntime(loadConfig({ env: { OANDA_TOKEN: wrong, POLYGON_API_KEY: POLYGON_KEY }, overrides: { feeds: config.feeds } }));
    try {
      const before = oandaFake.requests.length;
      const p = await plan('oanda', 'EUR/USD', '1m', '2021-03-01T00:00:00Z', '2021-03-01T06:00:00Z');
      expect(p).toMatchObject({ state: 'failed', chunks_failed: 1 });
      expect(p.errors[0]).toMatch(/refused the request with HTTP 401: \{"errorMessage":"Insufficient authorization to perform request\."\}/);
      expect(oandaFake.requests.slice(before).map((r) => r.authorization)).toEqual([`Bearer ${wrong}`]);
      const q = await db.sql`select reason from staging.quarantine where venue = 'oanda'`;
      expect(q.map((r) => r.reason)).toEqual(['HTTP 401 response: {"errorMessage":"Insufficient authorization to perform request."}']);
    } finally { useRuntime(config); }
  });

  it('without a token nothing is sent: the chunk fails at once saying what is missing', async () => {
    useRuntime(loadConfig({ env: {}, overrides: { feeds: config.feeds } }));
    try {
      const before = oandaFake.requests.length;
      const p = await plan('oanda', 'EUR/USD', '1m', '2021-03-02T00:00:00Z', '2021-03-02T06:00:00Z');
      expect(p).toMatchObject({ state: 'failed', chunks_failed: 1 });
      expect(p.errors[0]).toMatch(/expected OANDA_TOKEN \(or OANDA_TOKEN_FILE\) in the environment, received nothing/);
      expect(oandaFake.requests.length).toBe(before);
    } finally { useRuntime(config); }
  });
});

describe('Polygon aggregates through the backfill engine', () => {
  const FROM = Date.UTC(2021, 0, 11);
  const TO = FROM + 7 * DAY;

  it('follows next_url until the window is complete and stores every forex bar once (bid side, tick volume)', async () => {
    const p = await plan('polygon', 'EUR/USD', '1m', iso(FROM), iso(TO));
    const want = polygonExpected('C:EURUSD', FROM, TO);
    const pages = Math.ceil(want.length / PER_PAGE);
    expect(pages).toBeGreaterThan(2);
    expect(await stored('polygon', 'EUR/USD', '1m', FROM, TO)).toEqual(want.map((b) => ({
      price_side: 'bid', t: String(b.t), open: b.o, high: b.h, low: b.l, close: b.c, volume: b.v, volume_kind: 'tick_count',
      trade_count: null, complete: true })));
    const reqs = polygonFake.restRequests.filter((r) => r.startsWith('/v2/aggs/ticker/C:EURUSD/'));
    expect(reqs).toHaveLength(pages);
    expect(reqs[0]).toBe(`/v2/aggs/ticker/C:EURUSD/range/1/minute/${FROM}/${TO - 1}?adjusted=false&sort=asc&limit=50000`);
    // Each next page starts at the first bar the previous one did not hold, with the venue's cursor.
    expect(reqs.slice(1).map((r) => r.split('?')[0])).toEqual(
      Array.from({ length: pages - 1 }, (_, k) => `/v2/aggs/ticker/C:EURUSD/range/1/minute/${want[(k + 1) * PER_PAGE]!.t}/${TO - 1}`));
    expect(reqs.slice(1).every((r) => /\?cursor=[A-Za-z0-9_-]+$/.test(r))).toBe(true);
    expect(polygonFake.restAuthorizations.every((a) => a === `Bearer ${POLYGON_KEY}`)).toBe(true);
    expect({ state: p.state, chunks: p.chunks, pages: String(p.pages), rows_new: String(p.rows_new) })
      .toEqual({ state: 'done', chunks: 1, pages: String(pages), rows_new: String(want.length) });
    const landed = await db.sql`select request from staging.frames where venue = 'polygon' order by frame_id`;
    expect(landed.map((r) => r.request)).toEqual(reqs.map((r) => `GET ${r} 200`));
  });

  it('running it again makes no request', async () => {
    const before = polygonFake.restRequests.length;
    expect((await plan('polygon', 'EUR/USD', '1m', iso(FROM), iso(TO))).state).toBe('done');
    expect(polygonFake.restRequests.length).toBe(before);
  });

  it('indices (value side, no volume) and stocks (trade side, shares, trade count)', async () => {
    const from = Date.UTC(2021, 0, 12);
    const to = from + 2 * DAY;
    expect((await plan('polygon', 'NAS100', '1m', iso(from), iso(to))).state).toBe('done');
    expect((await plan('polygon', 'AAPL', '1m', iso(from), iso(to))).state).toBe('done');
    expect(await stored('polygon', 'NAS100', '1m', from, to)).toEqual(polygonExpected('I:NDX', from, to).map((b) => ({
      price_side: 'value', t: String(b.t), open: b.o, high: b.h, low: b.l, close: b.c, volume: null, volume_kind: null,
      trade_count: null, complete: true })));
    expect(await stored('polygon', 'AAPL', '1m', from, to)).toEqual(polygonExpected('AAPL', from, to).map((b) => ({
      price_side: 'trade', t: String(b.t), open: b.o, high: b.h, low: b.l, close: b.c, volume: b.v, volume_kind: 'base',
      trade_count: b.n, complete: true })));
    expect(polygonFake.restRequests.some((r) => r.startsWith('/v2/aggs/ticker/I:NDX/range/1/minute/'))).toBe(true);
  });

  it('a 429 (over the plan\'s limit, no Retry-After) pauses the venue for one budget window, then the page is fetched', async () => {
    await db.sql`select ops.set_rate_limit('polygon', 'requests', 'requests', '1 second', 10)`;
    polygonFake.throttleNext(1);
    const from = Date.UTC(2021, 1, 2);
    const started = Date.now();
    const p = await plan('polygon', 'EUR/USD', '1m', iso(from), iso(from + DAY));
    expect(p.state).toBe('done');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(await stored('polygon', 'EUR/USD', '1m', from, from + DAY)).toHaveLength(polygonExpected('C:EURUSD', from, from + DAY).length);
    const [s] = await db.sql`select throttled::int from ops.rate_state where venue = 'polygon'`;
    expect(s!.throttled).toBe(1);
    await db.sql`select ops.set_rate_limit('polygon', 'requests', 'requests', '1 minute', 600)`;
  });

  it('a wrong key is refused (401 Unknown API Key) and fails the chunk at once', async () => {
    useRuntime(loadConfig({ env: { OANDA_TOKEN, POLYGON_API_KEY: 'polygon-wrong-key-0000' }, overrides: { feeds: config.feeds } }));
    try {
      const p = await plan('polygon', 'EUR/USD', '1m', '2021-03-01T00:00:00Z', '2021-03-01T06:00:00Z');
      expect(p).toMatchObject({ state: 'failed', chunks_failed: 1 });
      expect(p.errors[0]).toMatch(/refused the request with HTTP 401: .*"error":"Unknown API Key"/);
    } finally { useRuntime(config); }
  });
});

describe('backfilled history in the canonical bars, and secrets nowhere', () => {
  it('canonical EUR/USD minutes come from OANDA\'s candles, and from Polygon\'s where OANDA has none', async () => {
    const from = Date.UTC(2021, 0, 11);
    const to = from + 7 * DAY;
    const rows = await db.sql`select (extract(epoch from bucket) * 1000)::bigint::text as t, source, price_basis, open::text, close::text,
                                     ticks::int, complete
                              from market.canonical_bars('EUR/USD', '1m', ${iso(from)}, ${iso(to)})`;
    const trim = (s: string) => s.replace(/0+$/, '').replace(/\.$/, '');
    const want: Array<Record<string, unknown>> = [];
    for (let t = from; t < to; t += MIN) {
      const o = OANDA.candle('EUR_USD', 'M1', t, Date.now());
      const b = POLYGON.bar('C:EURUSD', MIN, t);
      if (o) want.push({ t: String(t), source: 'oanda', price_basis: 'mid', open: trim(o.mid.o), close: trim(o.mid.c), ticks: o.volume, complete: true });
      else if (b) want.push({ t: String(t), source: 'polygon', price_basis: 'bid', open: b.o, close: b.c, ticks: Number(b.v), complete: true });
    }
    expect(want.filter((w) => w.source === 'polygon').length).toBeGreaterThan(50);
    expect(rows.map((r) => ({ ...r }))).toEqual(want);
    const [idx] = await db.sql`select count(*)::int as n, min(source) as source from market.canonical_bars('NAS100', '1m', '2021-01-12', '2021-01-14')`;
    expect(idx).toEqual({ n: polygonExpected('I:NDX', Date.UTC(2021, 0, 12), Date.UTC(2021, 0, 14)).length, source: 'polygon' });
  });

  it('the token and the key appear in no staging row, ops row, job row or log line', async () => {
    for (const secret of [OANDA_TOKEN, POLYGON_KEY]) {
      const [r] = await db.sql`
        select (select count(*) from staging.frames where strpos(coalesce(request, ''), ${secret}) > 0 or strpos(payload, ${secret}) > 0)::int
                 + (select count(*) from staging.quarantine where strpos(payload, ${secret}) > 0 or strpos(reason, ${secret}) > 0)::int
                 + (select count(*) from ops.backfill_chunks where strpos(coalesce(last_error, ''), ${secret}) > 0)::int
                 + (select count(*) from ops.session_events where strpos(coalesce(detail::text, ''), ${secret}) > 0)::int
                 + (select count(*) from graphile_worker.jobs where strpos(coalesce(last_error, ''), ${secret}) > 0)::int as n`;
      expect(r!.n).toBe(0);
    }
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((l) => l.includes(OANDA_TOKEN) || l.includes(POLYGON_KEY))).toEqual([]);
    const [n] = await db.sql`select count(*)::int as n from staging.frames where venue in ('oanda', 'polygon')`;
    expect(n!.n).toBeGreaterThan(10);
  });
});
