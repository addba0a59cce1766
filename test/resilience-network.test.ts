import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinanceHistory } from './fakes/binance-history.ts';
import { FakeOanda } from './fakes/oanda.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { binanceFeed, startBinance } from './support/feeds.ts';
import { OANDA_TOKEN, forexConfig, oandaFeedConfig, oandaLine, startFeed } from './support/forex.ts';
import { waitFor } from './support/wait.ts';
import { quietLog } from './support/feeds.ts';
import { FaultProxy } from './support/faults/proxy.ts';
import { sleep } from './support/faults/processes.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { receiveTime } from '../ingesters/runtime/clock.ts';
import { TradeTape } from './fakes/binance-history.ts';

// Network faults made by a TCP proxy on 127.0.0.1 (test/support/faults/proxy.ts): between the
// feed runtime and a venue, a connection that silently stops carrying bytes (black hole) and an
// HTTP stream broken off in the middle of a line; between the landing writer and Postgres,
// connections reset and a COPY broken off in the middle.

let db: TestDatabase;
let proxy: FaultProxy | undefined;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => { db = await createTestDatabase('netfault'); });
afterAll(async () => { await db?.drop(); });
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await proxy?.stop(); proxy = undefined;
});

describe('a black-holed venue connection', () => {
  it('is detected by the watchdog and replaced within the staleness limit', async () => {
    const STALE_S = 2;
    const fake = new FakeBinanceHistory({ tradesPerSecond: 200 });
    await fake.start();
    cleanups.push(() => fake.stop());
    proxy = new FaultProxy({ targetPort: fake.port });
    const port = await proxy.start();
    const feed = startBinance(db.url, binanceFeed(`ws://127.0.0.1:${port}`, fake.restUrl,
      { channels: ['trade'], staleAfterSeconds: STALE_S }), { backoffBaseMs: 50, backoffCapMs: 200 });
    cleanups.push(() => feed.stop());
    fake.startTape();
    await waitFor(() => feed.ws.messages > 100, 'live trades through the proxy');
    const caught = proxy.blackhole(true);
    const holedAt = performance.now();
    const holed = proxy.open[0]!;
    const before = feed.ws.messages;
    // The replacement is the proxy's next connection; it has data once messages flow again.
    await waitFor(() => proxy!.accepted >= 2 && feed.ws.messages > before + 20, 'a replacement connection with data', 10_000, 10);
    const replacedMs = performance.now() - holedAt;
    await feed.lander.flush();
    expect(caught).toBe(1);
    // The venue never closed the black-holed connection: tickflow did, after the silence.
    const [stale] = await db.sql`select (detail->>'silentMs')::int as silent from ops.session_events where feed = 'binance-test' and kind = 'stale'`;
    expect(stale!.silent).toBeGreaterThanOrEqual(STALE_S * 1000);
    expect(stale!.silent).toBeLessThanOrEqual(STALE_S * 1000 + STALE_S * 1000 / 4 + 750); // checked every limit / 4 (timers run late under load)
    expect(holed.up).toBeGreaterThan(0);
    // Detected at the limit, and a new connection carried data within the limit after that.
    expect(replacedMs).toBeLessThan(2 * STALE_S * 1000);
    const [s] = await db.sql`select close_reason from ops.sessions where feed = 'binance-test' and close_reason like 'stale%'`;
    expect(s).toBeDefined();
    const [g] = await db.sql`select count(*)::int as n from quality.gaps where feed = 'binance-test' and detected_by = 'disconnect' and gap_to is not null`;
    expect(g!.n).toBe(1);
    console.log(`black hole: stale after ${stale!.silent} ms (limit ${STALE_S * 1000}), replaced with data after ${Math.round(replacedMs)} ms`);
  });
});

/** The body of a recorded HTTP/1.1 chunked response (headers skipped, chunk framing removed). */
function dechunk(raw: Buffer): string {
  const text = raw.toString('latin1');
  let at = text.indexOf('\r\n\r\n') + 4;
  let body = '';
  while (at < text.length) {
    const eol = text.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(text.slice(at, eol), 16);
    if (!Number.isFinite(size) || size === 0) break;
    body += text.slice(eol + 2, Math.min(eol + 2 + size, text.length));
    at = eol + 2 + size + 2;
  }
  return Buffer.from(body, 'latin1').toString('utf8');
}

describe('an OANDA stream cut in the middle of a line', () => {
  it('loses no complete line: every line that arrived whole lands, the fragment does not', async () => {
    const base = Date.parse('2017-09-21T02:00:00Z');
    const lineAt = (i: number) => oandaLine({ ms: base + i * 100, micros: i % 1000, nanos: 7, bid: `1.1${8700 + (i % 90)}`,
      ask: `1.1${8712 + (i % 90)}`, tradeable: true });
    const FIRST = 2000;
    const SECOND = 40;
    const fake = new FakeOanda({ token: OANDA_TOKEN, heartbeatMs: 200, intervalMs: 2,
      lines: (n) => Array.from({ length: n === 1 ? FIRST : SECOND }, (_, k) => lineAt(n === 1 ? k : FIRST + k)) });
    await fake.start();
    cleanups.push(() => fake.stop());
    proxy = new FaultProxy({ targetPort: fake.port, recordDown: true });
    const port = await proxy.start();
    const config = forexConfig([oandaFeedConfig(`http://127.0.0.1:${port}`)]);
    const r = startFeed(db.url, config, config.feeds[0]!);
    cleanups.push(() => r.stop());
    await waitFor(() => r.feed.messages >= 100, 'price lines through the proxy');
    // A cut at a byte count that falls inside a line: 5,000 more bytes, then FIN.
    proxy.truncate('down', 5000 + Math.floor(Math.random() * 300), 'cut');
    const first = proxy.connections[0]!;
    await waitFor(() => first.closed || first.down > 0, 'the cut');
    await waitFor(async () => {
      await r.lander.flush();
      const [n] = await db.sql`select count(*)::int as n from staging.frames f join ops.sessions s using (session_id)
                               where s.feed = 'oanda-test'
                                 and s.session_id <> (select session_id from ops.sessions where feed = 'oanda-test' order by opened_at limit 1)`;
      return n!.n === SECOND;
    }, 'the second connection\'s lines', 20_000);
    // What reached tickflow on the first connection, decoded here: its whole lines (price lines;
    // heartbeats do not land) and the fragment after the last newline.
    const body = dechunk(Buffer.concat(first.received));
    const parts = body.split('\n');
    const fragment = parts.pop()!;
    const whole = parts.filter((l) => l.includes('"type":"PRICE"'));
    expect(fragment.length).toBeGreaterThan(0); // the cut fell inside a line
    expect(whole.length).toBeGreaterThan(100);
    expect(whole.length).toBeLessThan(FIRST);
    const landed = await db.sql<{ payload: string; session: number }[]>`
      select f.payload, dense_rank() over (order by s.opened_at)::int as session
      from staging.frames f join ops.sessions s using (session_id) where s.feed = 'oanda-test' order by f.frame_id`;
    expect(landed.filter((l) => l.session === 1).map((l) => l.payload)).toEqual(whole);
    expect(landed.filter((l) => l.session === 2).map((l) => l.payload))
      .toEqual(Array.from({ length: SECOND }, (_, k) => lineAt(FIRST + k)));
    expect(await db.sql`select reason from staging.quarantine where venue = 'oanda'`).toEqual([]);
    const [d] = await db.sql`select detail from ops.session_events where feed = 'oanda-test' and kind = 'disconnected' order by event_id limit 1`;
    expect((d!.detail as { discardedBytes: number }).discardedBytes).toBe(Buffer.byteLength(fragment));
    console.log(`oanda cut: ${whole.length} whole lines landed from the cut connection, a ${Buffer.byteLength(fragment)}-byte fragment discarded`);
  });
});

describe('the landing writer\'s Postgres connection reset and cut mid-COPY', () => {
  it('lands every accepted frame exactly once, in whole batches', async () => {
    const target = new URL(db.url);
    proxy = new FaultProxy({ targetPort: Number(target.port) });
    const port = await proxy.start();
    target.port = String(port);
    const lander = new Lander(target.toString(), { maxBatchFrames: 500, flushIntervalMs: 10, maxBufferedBytes: 64 << 20 }, quietLog);
    cleanups.push(() => lander.close());
    const tape = new TradeTape('BTCUSDT', 1n, '60000.00000000', 1n);
    let seq = 0;
    const producer = setInterval(() => {
      for (let k = 0; k < 40; k++) {
        seq++;
        lander.offer({ venue: 'binance', stream: 'trade', sessionId: null, seq, receivedAt: receiveTime(), source: 'ws',
          request: null, payload: TradeTape.tradeMessage('BTCUSDT', tape.produce(Date.now())) });
      }
    }, 10);
    const faults = { resets: 0, cuts: 0 };
    try {
      for (let k = 0; k < 10; k++) {
        await sleep(150 + Math.random() * 150);
        if (k % 2 === 0) faults.resets += proxy.reset();
        else { proxy.truncate('up', 2000 + Math.floor(Math.random() * 20_000), k % 4 === 1 ? 'cut' : 'reset'); faults.cuts++; }
      }
      await sleep(300);
    } finally {
      clearInterval(producer);
    }
    proxy.heal();
    await lander.flush();
    expect(lander.failedAttempts).toBeGreaterThan(0); // the faults really hit the writer
    const [r] = await db.sql`select count(*)::int as frames, count(distinct seq)::int as seqs, min(seq)::int as first, max(seq)::int as last
                             from staging.frames where session_id is null and venue = 'binance'`;
    expect({ ...r }).toEqual({ frames: seq, seqs: seq, first: 1, last: seq });
    const partial = await db.sql`select b.batch_id from ops.batches b left join staging.frames f using (batch_id)
                                 group by b.batch_id, b.frames having count(f.frame_id) <> b.frames`;
    expect(partial).toEqual([]);
    console.log(`landing through faults: ${seq} frames, ${faults.resets} connections reset, ${faults.cuts} cuts mid-stream, ${lander.failedAttempts} failed attempts retried`);
  });
});
