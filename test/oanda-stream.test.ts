import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LineSplitter } from '../ingesters/runtime/transport.ts';
import { oanda } from '../ingesters/oanda.ts';
import { isTickflowError } from '../src/errors.ts';
import { FakeOanda } from './fakes/oanda.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import {
  OANDA_TOKEN, capturedOandaLines, forexConfig, nonTradeablePrice, oandaFeedConfig, oandaLine, startFeed, units,
  type RunningFeed,
} from './support/forex.ts';
import { waitFor } from './support/wait.ts';

// The OANDA v20 pricing stream over a real HTTP connection to a local fake that speaks the
// protocol (chunked transfer, one JSON object per line, heartbeats). The price lines are the
// real ones in test/fixtures/oanda; where a test needs more lines it derives them from the
// captured 2017 EUR_USD line by changing only its time and prices, and says so.

let db: TestDatabase;
let fake: FakeOanda | undefined;
let running: RunningFeed[] = [];

beforeAll(async () => { db = await createTestDatabase('oanda'); });
afterAll(async () => { await db?.drop(); });
afterEach(async () => {
  await Promise.all(running.map((r) => r.stop())); running = [];
  await fake?.stop(); fake = undefined;
  await db.sql`truncate staging.frames, staging.quarantine, market.quotes, market.quote_bar_invalidations, ops.sessions,
               ops.session_events, ops.batches, quality.gaps`;
});

const events = (kind: string) => db.sql`select kind, detail from ops.session_events where kind = ${kind} order by event_id`;
const pricingFrames = () => db.sql<{ payload: string }[]>`select payload from staging.frames where venue = 'oanda' order by frame_id`;

function start(streamUrl: string, over: Record<string, unknown> = {}, runtime = {}) {
  const config = forexConfig([oandaFeedConfig(streamUrl, over)]);
  const r = startFeed(db.url, config, config.feeds[0]!, runtime);
  running.push(r);
  return r;
}

/** Derived lines (captured 2017 EUR_USD line, generated times and prices) for connection-level tests. */
function* derived(fromMs: number, count: number): Generator<string> {
  for (let i = 0; i < count; i++) {
    yield oandaLine({ ms: fromMs + i * 250, micros: 123, nanos: 456, bid: `1.1${8700 + (i % 50)}`, ask: `1.1${8712 + (i % 50)}`, tradeable: true });
  }
}

describe('line splitter', () => {
  it('reassembles a line split across chunks (even inside a UTF-8 character) and keeps a trailing fragment out', () => {
    const s = new LineSplitter(1 << 20);
    const text = Buffer.from('{"a":"é"}\n{"b":2}\r\n\n{"c":3}\n{"d":');
    const cuts = [3, 6, 7, 11, 19, 20, 30];
    const lines: string[] = [];
    let at = 0;
    for (const c of [...cuts, text.length]) { lines.push(...s.push(text.subarray(at, c))); at = c; }
    expect(lines).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}']);
    expect(s.rest().toString()).toBe('{"d":');
  });

  it('refuses a line longer than the payload limit instead of growing without bound', () => {
    const s = new LineSplitter(16);
    expect(() => s.push(Buffer.from('x'.repeat(17)))).toThrow(/longer than 16 bytes/);
  });
});

describe('OANDA pricing stream against a fake venue', () => {
  it('lands the captured price lines raw and normalizes them exactly; heartbeats count but do not land', async () => {
    const lines = capturedOandaLines();
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => lines, heartbeatMs: 200 });
    const url = await fake.start();
    const r = start(url, { instruments: ['EUR/USD', 'EUR/JPY', 'USD/JPY'] });
    const prices = lines.filter((l) => l.includes('"type":"PRICE"'));
    await waitFor(async () => { await r.lander.flush(); return (await pricingFrames()).length === prices.length; }, 'every price line');
    await new Promise((res) => setTimeout(res, 500)); // heartbeats keep arriving
    await r.lander.flush();
    expect((await pricingFrames()).map((f) => f.payload)).toEqual(prices);
    const [src] = await db.sql`select distinct source from staging.frames where venue = 'oanda'`;
    expect(src!.source).toBe('stream');

    // Expected quotes from the raw lines: best bid = highest bids price, best ask = lowest asks price.
    const want = prices.map((l) => {
      const p = JSON.parse(l) as { instrument: string; time: string; status: string; tradeable?: boolean;
        bids: Array<{ price: string; liquidity: number }>; asks: Array<{ price: string; liquidity: number }> };
      const best = (xs: typeof p.bids, dir: 1 | -1) => [...xs].sort((a, b) => dir * Number(units(b.price, 9) - units(a.price, 9)))[0]!;
      const bid = best(p.bids, 1);
      const ask = best(p.asks, -1);
      return {
        symbol: p.instrument.replace('_', '/'),
        // nanoseconds cut to microseconds, never rounded
        quoted_at: p.time.slice(0, 26) + 'Z',
        bid: bid.price, bid_size: String(bid.liquidity), ask: ask.price, ask_size: String(ask.liquidity),
        tradeable: p.tradeable ?? p.status === 'tradeable',
      };
    });
    const rows = await db.sql`
      select symbol, to_char(quoted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as quoted_at,
             bid::text, bid_size::text, ask::text, ask_size::text, tradeable
      from market.bbo where venue = 'oanda' order by quoted_at`;
    expect(rows.map((x) => ({ ...x }))).toEqual(want.sort((a, b) => a.quoted_at.localeCompare(b.quoted_at)));
    const [inst] = await db.sql`select count(*)::int as n from market.instruments where venue = 'oanda' and asset_class = 'forex'
                                and venue_symbol in ('EUR_USD', 'EUR_JPY', 'USD_JPY')`;
    expect(inst!.n).toBe(3);
    expect(await db.sql`select reason from staging.quarantine`).toEqual([]);
    // The URL carries no secret; the token went only in the header.
    const [s] = await db.sql`select url from ops.sessions`;
    expect(s!.url).toBe(`${url}/v3/accounts/101-004-1234567-001/pricing/stream?instruments=EUR_USD%2CEUR_JPY%2CUSD_JPY`);
    expect(fake.requests[0]!.authorization).toBe(`Bearer ${OANDA_TOKEN}`);
  });

  it('keeps a non-tradeable price, flagged, and makes no bar from it', async () => {
    const price = nonTradeablePrice(); // real ClientPrice from a weekend snapshot, as a stream line carries it
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => [price], heartbeatMs: 1000 });
    const r = start(await fake.start());
    await waitFor(async () => { await r.lander.flush(); return (await pricingFrames()).length === 1; }, 'the price line');
    const rows = await db.sql`select bid::text, ask::text, tradeable,
                                     to_char(quoted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as at
                              from market.bbo where venue = 'oanda'`;
    expect(rows.map((x) => ({ ...x }))).toEqual([{ bid: '1.13582', ask: '1.13659', tradeable: false, at: '2019-01-18T21:59:58.547847' }]);
    expect(await db.sql`select * from market.quote_bar_invalidations`).toEqual([]);
    await db.sql`select market.refresh_quote_bars_window(null, '2019-01-18 21:00+00', '2019-01-18 23:00+00')`;
    expect(await db.sql`select * from market.quote_bars_1m where symbol = 'EUR/USD'`).toEqual([]);
  });

  it('reassembles a price line the venue split across two chunks', async () => {
    const lines = [...derived(Date.parse('2017-09-21T02:00:00Z'), 6)];
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => lines, intervalMs: 60, heartbeatMs: 1000 });
    fake.splitNextLine(Math.floor(lines[0]!.length / 2)); // inside the price string of the first line
    const r = start(await fake.start());
    await waitFor(async () => { await r.lander.flush(); return (await pricingFrames()).length === lines.length; }, 'all lines');
    expect((await pricingFrames()).map((f) => f.payload)).toEqual(lines);
    expect(await db.sql`select reason from staging.quarantine`).toEqual([]);
    const [q] = await db.sql`select count(*)::int as n from market.quotes`;
    expect(q!.n).toBe(lines.length);
  });

  it('never lands the fragment of a stream cut in the middle of a line, and reconnects', async () => {
    const first = [...derived(Date.parse('2017-09-21T02:00:00Z'), 4)];
    const second = [...derived(Date.parse('2017-09-21T02:01:00Z'), 4)];
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: (n) => (n === 1 ? first : second), intervalMs: 30, heartbeatMs: 1000 });
    fake.cutNextLine(70);
    const r = start(await fake.start());
    await waitFor(async () => { await r.lander.flush(); return (await pricingFrames()).length === second.length; }, 'the second connection');
    await r.lander.flush();
    // The first line was cut after 70 bytes: nothing of it landed; the next connection's lines did.
    expect((await pricingFrames()).map((f) => f.payload)).toEqual(second);
    const [d] = await events('disconnected');
    expect(d!.detail).toMatchObject({ discardedBytes: 70, discardedHead: first[0]!.slice(0, 70), hadData: false });
    expect(fake.connections).toBe(2);
    expect(await db.sql`select reason from staging.quarantine`).toEqual([]);
  });

  it('treats 10 s without a price or heartbeat as a dead stream, while heartbeats alone keep it alive', async () => {
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => [], heartbeatMs: 2000 });
    // The feed allows 15 s of silence; the venue file caps it at 10 s (heartbeats come every 5 s).
    const r = start(await fake.start(), { staleAfterSeconds: 15 });
    await waitFor(() => fake!.openStreams === 1, 'the stream');
    await new Promise((res) => setTimeout(res, 11_000)); // a quiet market: heartbeats, no prices
    await r.lander.flush();
    expect(await events('stale')).toEqual([]);
    expect(fake.connections).toBe(1);
    const silentFrom = performance.now();
    fake.setSilent(true);
    await waitFor(async () => { await r.lander.flush(); return (await events('stale')).length > 0; }, 'the stale event', 15_000, 100);
    const detected = performance.now() - silentFrom;
    fake.setSilent(false);
    await waitFor(() => fake!.connections === 2, 'the reconnect', 5_000);
    const [s] = await events('stale');
    expect((s!.detail as { silentMs: number }).silentMs).toBeGreaterThan(10_000);
    expect(detected).toBeGreaterThan(7_500); // the last heartbeat came up to 2 s before the silence began
    expect(detected).toBeLessThan(12_500);
  }, 45_000);

  it('refuses a rejected token slowly (circuit breaker), never in a tight loop, and never records the token', async () => {
    fake = new FakeOanda({ token: 'the-right-token', lines: () => [] });
    const r = start(await fake.start(), {}, { circuitRetryMs: 60_000 });
    await waitFor(async () => { await r.lander.flush(); return (await events('circuit_open')).length === 1; }, 'the circuit to open');
    await new Promise((res) => setTimeout(res, 1_000));
    expect(fake.connections).toBe(1);
    expect(r.feed.state).toBe('circuit_open');
    const [e] = await events('error_frame');
    expect(e!.detail).toMatchObject({ status: 401, raw: '{"errorMessage":"Insufficient authorization to perform request."}' });
    const [c] = await events('circuit_open');
    expect(c!.detail).toMatchObject({ refused: true, retryEveryMs: 60_000 });
    const dump = await db.sql`select (select string_agg(detail::text, ' ') from ops.session_events) as ev,
                                     (select string_agg(url || coalesce(close_reason, ''), ' ') from ops.sessions) as s`;
    expect(JSON.stringify(dump)).not.toContain(OANDA_TOKEN);
  });

  it('paces new connections to the venue limit (2 per second) across feeds', async () => {
    fake = new FakeOanda({ token: OANDA_TOKEN, lines: () => [], heartbeatMs: 1000 });
    const url = await fake.start();
    const config = forexConfig([1, 2, 3, 4].map((k) => oandaFeedConfig(url, { name: `oanda-${k}` })));
    for (const f of config.feeds) running.push(startFeed(db.url, config, f));
    await waitFor(() => fake!.connections === 4, 'four connections', 5_000);
    const gaps = fake.connectTimes.slice(1).map((t, k) => t - fake!.connectTimes[k]!);
    for (const g of gaps) expect(g).toBeGreaterThan(450);
  });

  it('refuses a feed without an account or a token at start', () => {
    const noAccount = forexConfig([oandaFeedConfig('http://127.0.0.1:1', { account: undefined })]);
    expect(() => oanda.validate!(noAccount.feeds[0]!, noAccount.secrets)).toThrow(/account/);
    let caught: unknown;
    try { oanda.validate!(noAccount.feeds[0]!, {}); } catch (err) { caught = err; }
    expect(isTickflowError(caught, 'CONFIG_INVALID')).toBe(true);
  });
});
