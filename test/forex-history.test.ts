import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeOanda } from './fakes/oanda.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { OANDA_TOKEN, POLYGON_KEY, fixture, landAndNormalize, polygonDocExamples, type RawFrame } from './support/forex.ts';

// History pages as the backfill engine will land them (stream 'candles' / 'aggs', source 'rest',
// request "GET <path and query> <status>", then staging.normalize_batch()). OANDA pages are real
// responses (test/fixtures/oanda); Polygon aggregate pages are the venue's documented examples
// and the official client's recorded mock (no capture of ours exists). The last tests fetch pages
// from the fake venues over HTTP, through 429s and next_url paging, the way the backfill must.

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase('history'); });
afterAll(async () => { await db?.drop(); });
beforeEach(async () => {
  await db.sql`truncate staging.frames, staging.quarantine, market.candles, ops.batches`;
});

const RECEIVED = '2026-11-21T10:00:00.000001Z';
const page = (venue: string, stream: string, request: string, payload: string, receivedAt = RECEIVED): RawFrame =>
  ({ venue, stream, source: 'rest', request, payload, receivedAt });

interface OandaCandle { time: string; volume: number; complete: boolean; mid?: Ohlc; bid?: Ohlc; ask?: Ohlc }
interface Ohlc { o: string; h: string; l: string; c: string }

/** OANDA time (RFC 3339 or UNIX seconds, nanoseconds) to the ISO text Postgres prints for it below. */
function oandaIso(t: string): string {
  if (/^\d+\.\d+$/.test(t)) {
    const [s, f] = t.split('.');
    return `${new Date(Number(s) * 1000).toISOString().slice(0, 19)}.${f!.slice(0, 6)}Z`;
  }
  return `${t.slice(0, 19)}.${(t.slice(20, 26) || '').padEnd(6, '0')}Z`;
}

async function candles(symbol: string) {
  return db.sql`select timeframe, price_side,
                       to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as bucket,
                       open::text, high::text, low::text, close::text, volume::text, volume_kind, complete
                from market.venue_candles where symbol = ${symbol} order by price_side, bucket`;
}

function expectedOanda(body: { candles: OandaCandle[] }, timeframe: string, side: 'mid' | 'bid' | 'ask') {
  return body.candles.map((c) => ({ timeframe, price_side: side, bucket: oandaIso(c.time), open: c[side]!.o, high: c[side]!.h,
    low: c[side]!.l, close: c[side]!.c, volume: String(c.volume), volume_kind: 'tick_count', complete: c.complete }));
}

describe('OANDA candles (REST pages landed as frames)', () => {
  it('stores mid candles of a real H1 page exactly, volume labelled as a tick count', async () => {
    const text = fixture('oanda/oandapyV20-notebook-candles-EUR_USD-H1-from-2017-01-01-count10.json');
    const { counts } = await landAndNormalize(db.sql, [page('oanda', 'candles',
      'GET /v3/instruments/EUR_USD/candles?price=M&granularity=H1&from=2017-01-01T00%3A00%3A00Z&count=10 200', text)]);
    const body = JSON.parse(text) as { candles: OandaCandle[] };
    expect(counts).toMatchObject({ candles: body.candles.length, quarantined: 0 });
    expect((await candles('EUR/USD')).map((r) => ({ ...r }))).toEqual(expectedOanda(body, '1h', 'mid'));
  });

  it('stores ask-only daily candles with the daily alignment the venue served (DST shift kept)', async () => {
    const text = fixture('oanda/mab05k-candles-GBP_USD-D-ask-2018-10-11.json');
    await landAndNormalize(db.sql, [page('oanda', 'candles', 'GET /v3/instruments/GBP_USD/candles?price=A&granularity=D&count=5000 200', text)]);
    const body = JSON.parse(text) as { candles: OandaCandle[] };
    const rows = await candles('GBP/USD');
    expect(rows.map((r) => ({ ...r }))).toEqual(expectedOanda(body, '1d', 'ask'));
    expect(new Set(rows.map((r) => (r.bucket as string).slice(11, 13)))).toEqual(new Set(['00', '01'])); // 00:00Z, then 01:00Z after the US DST change
  });

  it('reads UNIX times with nanoseconds (Accept-Datetime-Format: UNIX) on 5-second candles', async () => {
    const text = fixture('oanda/async_v20-candles-AUD_USD-S5-unixtime-2017-10-27.json');
    const { counts } = await landAndNormalize(db.sql, [page('oanda', 'candles', 'GET /v3/instruments/AUD_USD/candles?price=M&granularity=S5&count=500 200', text)]);
    const body = JSON.parse(text) as { candles: OandaCandle[] };
    expect(counts.candles).toBe(500);
    expect((await candles('AUD/USD')).map((r) => ({ ...r }))).toEqual(expectedOanda(body, '5s', 'mid'));
  });

  it('keeps the last incomplete candle as incomplete and replaces it when the complete one lands, never the reverse', async () => {
    const text = fixture('oanda/oandapyV20-notebook-candles-EUR_USD-H1-from-2017-01-01-count10.json');
    const body = JSON.parse(text) as { instrument: string; granularity: string; candles: OandaCandle[] };
    const last = body.candles.at(-1)!;
    // Derived from the real page: its last candle as it looked while its hour was still open.
    const open = { ...body, candles: [{ ...last, complete: false, volume: 1200, mid: { ...last.mid!, c: '1.04500', l: '1.04480' } }] };
    const req = 'GET /v3/instruments/EUR_USD/candles?price=M&granularity=H1&from=2017-01-03T08%3A00%3A00Z 200';
    await landAndNormalize(db.sql, [page('oanda', 'candles', req, JSON.stringify(open), '2017-01-03T08:40:00.000001Z')]);
    expect((await candles('EUR/USD')).map((r) => [r.close, r.complete])).toEqual([['1.04500', false]]);
    const { counts } = await landAndNormalize(db.sql, [page('oanda', 'candles', req, text, '2017-01-03T09:00:05Z')]);
    expect(counts).toMatchObject({ candles: body.candles.length - 1, candles_updated: 1 });
    const later = await landAndNormalize(db.sql, [page('oanda', 'candles', req, JSON.stringify(open), '2017-01-03T09:10:00Z')]);
    expect(later.counts).toMatchObject({ candles: 0, candles_updated: 0 });
    expect((await candles('EUR/USD')).at(-1)).toMatchObject({ close: last.mid!.c, volume: String(last.volume), complete: true });
  });

  it('quarantines a page whose instrument is not the one requested, and a refused request, with their reasons', async () => {
    const de30 = fixture('oanda/oandapyV20-candles-DE30_EUR-M5-count5-2016-10-17.json'); // says "DE30/EUR"
    const { counts } = await landAndNormalize(db.sql, [
      page('oanda', 'candles', 'GET /v3/instruments/DE30_EUR/candles?count=5&granularity=M5 200', de30),
      page('oanda', 'candles', 'GET /v3/instruments/EUR_USD/candles?granularity=M1&count=5000 429',
        '{"errorMessage":"Rate limit violation of newly established connections."}'),
    ]);
    expect(counts).toMatchObject({ candles: 0, quarantined: 2 });
    const q = await db.sql`select reason from staging.quarantine order by frame_id`;
    expect(q.map((r) => r.reason)).toEqual([
      'instrument "DE30/EUR" is not the requested DE30_EUR',
      'HTTP 429 response: {"errorMessage":"Rate limit violation of newly established connections."}',
    ]);
  });
});

/** The results of a Polygon aggregates page with each number's text exactly as sent. */
function rawResults(text: string): Array<Record<string, string>> {
  const results = text.slice(text.indexOf('"results"'));
  return [...results.matchAll(/\{[^{}]*\}/g)].map((m) =>
    Object.fromEntries([...m[0].matchAll(/"(\w+)":\s*(-?[0-9.]+)/g)].map((f) => [f[1]!, f[2]!])));
}

const docAggs = (ticker: string) => {
  const e = polygonDocExamples().find((x) => x.path?.startsWith('/v2/aggs/ticker/') && x.payload.ticker === ticker);
  return JSON.stringify(e!.payload);
};

describe('Polygon aggregates (REST pages landed as frames)', () => {
  it('stores forex (bid side, tick volume), crypto (trade side, trade count) and index (value side, no volume) bars', async () => {
    const fx = docAggs('C:EURUSD');
    const btc = docAggs('X:BTCUSD');
    const ndx = docAggs('I:NDX');
    const { counts } = await landAndNormalize(db.sql, [
      page('polygon', 'aggs', 'GET /v2/aggs/ticker/C:EURUSD/range/1/day/2021-07-22/2021-07-22?adjusted=true&sort=asc&limit=50000 200', fx),
      page('polygon', 'aggs', 'GET /v2/aggs/ticker/X:BTCUSD/range/1/day/2020-06-01/2020-06-02?adjusted=true&sort=asc&limit=50000 200', btc),
      page('polygon', 'aggs', 'GET /v2/aggs/ticker/I:NDX/range/1/day/2023-03-09/2023-03-10?sort=asc&limit=50000 200', ndx),
    ]);
    expect(counts).toMatchObject({ candles: 5, quarantined: 0 });
    const row = (r: Record<string, string>, side: string, kind: string | null, trades: string | null) => ({
      timeframe: '1d', price_side: side, bucket: new Date(Number(r.t)).toISOString().replace('.000Z', '.000000Z'),
      open: r.o, high: r.h, low: r.l, close: r.c, volume: kind ? r.v : null, volume_kind: kind, trade_count: trades, complete: true });
    const got = async (symbol: string) => (await db.sql`
      select timeframe, price_side, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as bucket,
             open::text, high::text, low::text, close::text, volume::text, volume_kind, trade_count::text, complete
      from market.venue_candles where symbol = ${symbol} order by bucket`).map((r) => ({ ...r }));
    expect(await got('EUR/USD')).toEqual(rawResults(fx).map((r) => row(r, 'bid', 'tick_count', null)));
    expect(await got('BTC/USD')).toEqual(rawResults(btc).map((r) => row(r, 'trade', 'base', r.n!)));
    expect(await got('NAS100')).toEqual(rawResults(ndx).map((r) => row(r, 'value', null, null)));
  });

  it('refuses adjusted stock bars (prices as traded only) and pages that do not state adjusted', async () => {
    const aapl = fixture('polygon/client-python-mock-v2-aggs-AAPL-range-1-day-2005-04-01-2005-04-04.json');
    const unstated = aapl.replace('"adjusted": true,', '');
    const { counts } = await landAndNormalize(db.sql, [
      page('polygon', 'aggs', 'GET /v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04?adjusted=true 200', aapl),
      page('polygon', 'aggs', 'GET /v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04 200', unstated),
    ]);
    expect(counts).toMatchObject({ candles: 0, quarantined: 2 });
    const q = await db.sql`select reason from staging.quarantine order by frame_id`;
    expect(q.map((r) => r.reason)).toEqual([
      'adjusted stock aggregates are not stored (market.candles keeps prices as traded: request adjusted=false)',
      'a stock aggregates page must state adjusted',
    ]);
  });
});

describe('history pages fetched from the fake venues (429s, paging), as the backfill will', () => {
  /** GET with retries on 429 (after Retry-After, or 50 ms), landing nothing but the 200 page. */
  async function fetchPage(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; tries: number }> {
    for (let tries = 1; ; tries++) {
      const res = await request(url, { headers });
      const body = await res.body.text();
      if (res.statusCode !== 429) return { status: res.statusCode, body, tries };
      await sleep(Number(res.headers['retry-after'] ?? 0) * 1000 || 50);
    }
  }
  const requestLine = (url: string, status: number) => {
    const u = new URL(url);
    u.searchParams.delete('apiKey');
    return `GET ${u.pathname}${u.search} ${status}`;
  };

  it('OANDA: retries 429s, then lands the page with its request and normalizes it', async () => {
    const text = fixture('oanda/oandapyV20-notebook-candles-EUR_USD-H1-from-2017-01-01-count10.json');
    const fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => [], candles: { EUR_USD: [text] }, rest429: 2 });
    const base = await fake.start();
    try {
      const url = `${base}/v3/instruments/EUR_USD/candles?price=M&granularity=H1&from=2017-01-01T00%3A00%3A00Z&count=5000`;
      const got = await fetchPage(url, { authorization: `Bearer ${OANDA_TOKEN}`, 'accept-datetime-format': 'RFC3339' });
      expect(got.tries).toBe(3);
      const { counts } = await landAndNormalize(db.sql, [page('oanda', 'candles', requestLine(url, got.status), got.body)]);
      expect(counts).toMatchObject({ candles: 9, quarantined: 0 });
    } finally { await fake.stop(); }
  });

  it('Polygon: follows next_url until the last page, through a 429, and stores every bar once', async () => {
    // The documented AAPL example (with its next_url), adjusted flag set false to take the stored
    // path, split into two pages served by the fake.
    const example = JSON.parse(docAggs('AAPL')) as { results: unknown[]; next_url?: string } & Record<string, unknown>;
    const path = '/v2/aggs/ticker/AAPL/range/1/day/2020-01-01/2020-01-10';
    const first = JSON.stringify({ ...example, adjusted: false, results: [example.results[0]],
      next_url: `{NEXT_URL_BASE}${path}?cursor=1` });
    const second = JSON.stringify({ ...example, adjusted: false, results: [example.results[1]], next_url: undefined });
    const fake = new FakePolygon({ apiKey: POLYGON_KEY, frames: () => [], aggs: { [path]: [first, second] }, rest429: 1 });
    await fake.start();
    try {
      const frames: RawFrame[] = [];
      let url: string | undefined = `${fake.restUrl}${path}?adjusted=false&sort=asc&limit=50000`;
      while (url) {
        const withKey = new URL(url);
        withKey.searchParams.set('apiKey', POLYGON_KEY);
        const got = await fetchPage(withKey.toString());
        frames.push(page('polygon', 'aggs', requestLine(url, got.status), got.body));
        url = (JSON.parse(got.body) as { next_url?: string }).next_url;
      }
      expect(frames.map((f) => f.request)).toEqual([`GET ${path}?adjusted=false&sort=asc&limit=50000 200`, `GET ${path}?cursor=1 200`]);
      expect(frames.some((f) => f.request!.includes(POLYGON_KEY) || f.payload.includes(POLYGON_KEY))).toBe(false);
      const { counts } = await landAndNormalize(db.sql, frames);
      expect(counts).toMatchObject({ candles: 2, quarantined: 0 });
      const again = await landAndNormalize(db.sql, frames);
      expect(again.counts).toMatchObject({ candles: 0, candles_duplicate: 2 });
      const rows = await db.sql`select price_side, close::text, volume::text, volume_kind, trade_count::text from market.venue_candles where symbol = 'AAPL' order by bucket`;
      const want = rawResults(docAggs('AAPL'));
      expect(rows.map((r) => ({ ...r }))).toEqual(want.map((r) => ({ price_side: 'trade', close: r.c, volume: r.v, volume_kind: 'base', trade_count: r.n })));
    } finally { await fake.stop(); }
  });
});
