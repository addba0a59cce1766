import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { expectedBook, loadSpotCapture } from './support/binance-capture.ts';
import { binanceFeed, startBinance } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';
import { freePort } from './support/global-setup.ts';

const { frames, snapshot } = loadSpotCapture();
const texts = frames.map((f) => f.text);
const tradeFrames = texts.filter((t) => t.includes('@trade'));

/** Endless trades with consecutive ids, in the real frame format, for connection-level tests. */
function* tradeStream(startId: number): Generator<string> {
  const base = tradeFrames[0]!;
  for (let id = startId; ; id++) yield base.replace(/"t":\d+/, `"t":${id}`);
}

let db: TestDatabase;
let fake: FakeBinance | undefined;
let stopFeed: (() => Promise<void>) | undefined;

beforeAll(async () => { db = await createTestDatabase('rt'); });
afterAll(async () => { await db?.drop(); });
afterEach(async () => {
  await stopFeed?.(); stopFeed = undefined;
  await fake?.stop(); fake = undefined;
  await db.sql`truncate staging.frames, staging.quarantine, market.trades, market.quotes, market.book_levels,
               market.book_state, market.book_snapshots, ops.sessions, ops.session_events, ops.batches, quality.gaps`;
});

async function events(kind: string) {
  return db.sql`select kind, detail from ops.session_events where kind = ${kind} order by event_id`;
}

describe('connection runtime against a fake venue', () => {
  it('reconnects after a dropped connection and records the disconnect as a gap', async () => {
    fake = new FakeBinance({ frames: () => tradeStream(1), intervalMs: 2, snapshots: { BTCUSDT: snapshot } });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'] }));
    stopFeed = f.stop;
    await waitFor(() => f.ws.messages > 50, 'first frames');
    fake.dropAll();
    await waitFor(() => fake!.connections >= 2 && f.ws.state === 'connected', 'a new connection with data');
    await f.lander.flush();
    await waitFor(async () => (await events('disconnected')).length >= 1, 'the disconnect event');
    const [d] = await events('disconnected');
    expect(String((d!.detail as { reason: string }).reason)).toMatch(/closed|error/);
    const gaps = await waitFor(async () => {
      await f.lander.flush();
      const g = await db.sql`select detected_by, gap_from, gap_to from quality.gaps where detected_by = 'disconnect'`;
      return g.length === 1 && g[0]!.gap_to !== null ? g : undefined;
    }, 'the disconnect gap to be closed by the next session');
    expect(gaps![0]!.gap_to.getTime()).toBeGreaterThanOrEqual(gaps![0]!.gap_from.getTime());
  });

  it('detects a black-holed connection with the watchdog and replaces it', async () => {
    fake = new FakeBinance({ frames: () => tradeStream(1), intervalMs: 5 });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'], staleAfterSeconds: 1 }));
    stopFeed = f.stop;
    await waitFor(() => f.ws.messages > 20, 'first frames');
    const started = performance.now();
    fake.blackhole(true);
    await waitFor(async () => { await f.lander.flush(); return (await events('stale')).length > 0; }, 'the stale event', 10_000);
    const detectedAfter = performance.now() - started;
    fake.blackhole(false);
    await waitFor(() => fake!.connections >= 2 && f.ws.state === 'connected', 'a replacement connection', 10_000);
    expect(detectedAfter).toBeLessThan(3_000); // staleness limit 1 s, checked every 250 ms
    const [s] = await db.sql`select close_reason from ops.sessions where close_reason like 'stale%'`;
    expect(s).toBeDefined();
  });

  it('refetches a REST snapshot that does not line up with the buffered diffs', async () => {
    // The first snapshot is older than the first diff the capture has: it cannot be continued.
    const stale = snapshot.replace(/"lastUpdateId":\d+/, '"lastUpdateId":50093239000');
    fake = new FakeBinance({ frames: () => texts, intervalMs: 1, snapshots: { BTCUSDT: stale } });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl));
    stopFeed = f.stop;
    await waitFor(async () => { await f.lander.flush(); return (await events('resync')).length > 0; }, 'a resync');
    fake.setSnapshot('BTCUSDT', snapshot);
    await waitFor(async () => {
      const [r] = await db.sql`select count(*)::int as n from staging.frames where stream = 'depth'`;
      return r!.n === texts.filter((t) => t.includes('@depth')).length;
    }, 'all diffs landed');
    await f.stop(); stopFeed = undefined;
    expect(fake.restRequests.filter((r) => r.startsWith('/api/v3/depth')).length).toBeGreaterThanOrEqual(2);
    const want = expectedBook(frames, snapshot);
    const [state] = await db.sql`select last_update_id::text, in_sync from market.book_state`;
    expect(state).toEqual({ last_update_id: want.lastUpdateId.toString(), in_sync: true });
    const [{ n }] = await db.sql`select count(*)::int as n from market.book_levels` as unknown as [{ n: number }];
    expect(n).toBe(want.bids.size + want.asks.size);
  });

  it('quarantines malformed frames with a reason and keeps the frames around them', async () => {
    const good = tradeFrames.slice(0, 6);
    const bad = [
      '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":1,"p":"NaN","q":"0.1","T":1723161255342,"m":true}}',
      '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":2,"p":"-5.0","q":"0.1","T":1723161255342,"m":true}}',
      '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":3,"p":"61837.63",',
      '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":99999999999999999999,"p":"1.0","q":"0.1","T":1723161255342,"m":true}}',
      '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":4,"p":"1.0","q":"0.1","T":1000,"m":false}}',
      'not json at all',
    ];
    const mixed = [good[0]!, bad[0]!, good[1]!, bad[1]!, good[2]!, bad[2]!, good[3]!, bad[3]!, good[4]!, bad[4]!, good[5]!, bad[5]!];
    fake = new FakeBinance({ frames: () => mixed, intervalMs: 1 });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'] }));
    stopFeed = f.stop;
    await waitFor(async () => { await f.lander.flush(); return f.lander.landedFrames >= mixed.length; }, 'all frames landed');
    const trades = await db.sql`select trade_id from market.trades order by seq`;
    expect(trades.map((t) => t.trade_id)).toEqual(good.map((g) => /"t":(\d+)/.exec(g)![1]));
    const q = await db.sql`select payload, reason from staging.quarantine order by frame_id`;
    expect(q.map((r) => r.payload)).toEqual(bad);
    expect(q.map((r) => r.reason)).toEqual([
      expect.stringMatching(/price p is not a positive decimal string: "NaN"/),
      expect.stringMatching(/price p is not a positive decimal string: "-5.0"/),
      'payload is not valid JSON',
      expect.stringMatching(/trade id t is not an integer that fits 64 bits/),
      expect.stringMatching(/before 2009/),
      'payload is not valid JSON',
    ]);
  });

  it('rotates a connection by opening the new one first: no gap, no duplicate trades', async () => {
    fake = new FakeBinance({ frames: () => tradeStream(1), intervalMs: 2 });
    const url = await fake.start();
    const f = startBinance(db.url, binanceFeed(url, fake.restUrl, { channels: ['trade'], rotateAfterSeconds: 1 }),
      { rotationOverlapMs: 300 });
    stopFeed = f.stop;
    await waitFor(async () => { await f.lander.flush(); return (await events('rotating')).length > 0; }, 'a scheduled rotation');
    await waitFor(async () => {
      await f.lander.flush();
      const [r] = await db.sql`select count(*)::int as n from ops.sessions where close_reason = 'rotated'`;
      return r!.n >= 1;
    }, 'the old connection closed after the new one had data');
    await f.stop(); stopFeed = undefined;
    // Each connection replays the same ids from 1: the overlap is deduplicated by the natural key.
    const [t] = await db.sql`select count(*)::int as n, count(distinct trade_id)::int as d from market.trades`;
    expect(t!.n).toBe(t!.d);
    const [dups] = await db.sql`select coalesce(sum((counts->>'trades_duplicate')::int), 0)::int as n from ops.batches`;
    expect(dups!.n).toBeGreaterThan(0); // duplicates are counted, not silently swallowed
    const gaps = await db.sql`select * from quality.gaps where detected_by = 'disconnect'`;
    expect(gaps).toEqual([]);
  });

  it('opens the circuit breaker for a feed that keeps failing, and says so in status', async () => {
    // Nothing listens on this port: every attempt fails at once.
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const f = startBinance(db.url, binanceFeed(dead, 'http://127.0.0.1:1', { channels: ['trade'] }),
      { backoffBaseMs: 10, backoffCapMs: 20, circuitAfter: 3, circuitAfterMs: 0, circuitRetryMs: 60_000 });
    stopFeed = f.stop;
    await waitFor(() => f.ws.state === 'circuit_open', 'the circuit to open', 10_000);
    await f.lander.flush();
    const opened = await events('circuit_open');
    expect(opened).toHaveLength(1);
    expect(opened[0]!.detail).toMatchObject({ failures: 3, retryEveryMs: 60_000 });
    const attempts = await events('connecting');
    expect(attempts.length).toBe(3); // no hammering after the breaker opened
    const [st] = await db.sql`select state from ops.feed_status where feed = 'binance-test'`;
    expect(st!.state).toBe('circuit_open');
  });

  it('rides out a short outage on the backoff alone: the circuit opens only once the feed has failed for long enough', async () => {
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const f = startBinance(db.url, binanceFeed(dead, 'http://127.0.0.1:1', { channels: ['trade'] }),
      { backoffBaseMs: 10, backoffCapMs: 20, circuitAfter: 3, circuitAfterMs: 1_500, circuitRetryMs: 60_000 });
    stopFeed = f.stop;
    await new Promise((r) => setTimeout(r, 800));
    expect(f.ws.state).not.toBe('circuit_open'); // many more than 3 failures, but for less than 1.5 s
    await waitFor(() => f.ws.state === 'circuit_open', 'the circuit to open', 10_000);
    await f.lander.flush();
    const attempts = await events('connecting');
    expect(attempts.length).toBeGreaterThan(3);
    const [opened] = await events('circuit_open');
    expect((opened!.detail as { failingMs: number }).failingMs).toBeGreaterThanOrEqual(1_500);
  });
});

describe('landing writer memory bound', () => {
  it('reports back-pressure past its buffer limit and releases it once the batch lands', async () => {
    const { Lander } = await import('../ingesters/runtime/lander.ts');
    const { quietLog } = await import('./support/feeds.ts');
    const lander = new Lander(db.url, { maxBatchFrames: 100_000, flushIntervalMs: 50, maxBufferedBytes: 1_000_000 }, quietLog);
    const payload = tradeFrames[0]!;
    let accepted = 0;
    let ok = true;
    while (ok) {
      ok = lander.offer({ venue: 'binance', stream: 'trade', sessionId: null, seq: ++accepted, receivedAt: '2026-11-21T00:00:00.000001Z',
        source: 'ws', request: null, payload: payload.replace(/"t":\d+/, `"t":${accepted}`) });
    }
    expect(accepted).toBeLessThan(5_000); // about 1 MB of frames, then it asks the caller to pause
    await lander.drain();
    await lander.close();
    const [r] = await db.sql`select count(*)::int as n from staging.frames`;
    expect(r!.n).toBe(accepted);
  });
});


describe('the last frame of a session a killed run left open', () => {
  it('is found however long before the next run it was, and frames of other sessions do not count', async () => {
    const session = '0190a000-0000-7000-8000-000000000001';
    const other = '0190a000-0000-7000-8000-000000000002';
    const batch = '0190a000-0000-7000-8000-0000000000ff';
    const next = Date.UTC(2026, 0, 10, 12);
    const opened = next - 30 * 3_600_000;
    // The session's frames end 7 hours before the next run (past the first windows read); the
    // other session has frames after that, up to the next run.
    const at = (ms: number) => new Date(ms).toISOString();
    const rows = [
      ...[29, 20, 7.25, 7].map((h) => [session, at(next - h * 3_600_000)]),
      ...[6, 1, 0.01].map((h) => [other, at(next - h * 3_600_000)]),
    ];
    await db.sql`insert into staging.frames (batch_id, venue, stream, session_id, seq, received_at, source, payload)
                 select ${batch}, 'binance', 'trade', r.s::uuid, r.n, r.t::timestamptz, 'ws', '{}'
                 from unnest(${rows.map((r) => r[0]!)}::text[], ${rows.map((r) => r[1]!)}::text[]) with ordinality r(s, t, n)`;
    const last = async (before: number) => (await db.sql<{ at: Date | null }[]>`
      select ops.session_last_frame_at(${session}, ${at(opened)}, ${at(before)}) as at`)[0]!.at;
    expect(await last(next)).toEqual(new Date(next - 7 * 3_600_000));
    // Restarted within minutes, and with the wall clock stepped back below the last frame.
    expect(await last(next - 7 * 3_600_000 + 60_000)).toEqual(new Date(next - 7 * 3_600_000));
    expect(await last(next - 8 * 3_600_000)).toEqual(new Date(next - 7 * 3_600_000));
    // A session that landed nothing.
    expect((await db.sql`select ops.session_last_frame_at(${other.replace(/2$/, '3')}, ${at(opened)}, ${at(next)}) as at`)[0]!.at).toBeNull();
  });
});
