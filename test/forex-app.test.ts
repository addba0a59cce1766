import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { FakeOanda } from './fakes/oanda.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { quietLog } from './support/feeds.ts';
import { OANDA_TOKEN, POLYGON_KEY, oandaFeedConfig, oandaLine, polygonFeedConfig, polygonQuote } from './support/forex.ts';
import { waitFor } from './support/wait.ts';

// The whole process as `tickflow start` runs it (startApp: feeds, landing writer, worker), with an
// OANDA and a Polygon forex feed on local fakes: quotes land, the worker's bars_refresh job builds
// the mid-price bars of both sources without being asked, and the canonical view reads them.
// Lines derived from the captured OANDA EUR_USD line and the documented Polygon C event.

const BASE = Date.parse('2024-03-04T09:00:00Z');
const OANDA_LINES = Array.from({ length: 72 }, (_, i) =>
  oandaLine({ ms: BASE + i * 2500, micros: 1, nanos: 2, bid: `1.08${500 + (i % 40)}`, ask: `1.08${512 + (i % 40)}`, tradeable: true }));
const POLYGON_FRAMES = Array.from({ length: 60 }, (_, j) => `[${polygonQuote('EUR/USD', BASE + 500 + j * 3000, `1.08${501 + (j % 30)}`, `1.08${515 + (j % 30)}`)}]`);

let db: TestDatabase;
let app: App;
let oanda: FakeOanda;
let polygon: FakePolygon;
const dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-forex-app-'));

beforeAll(async () => {
  db = await createTestDatabase('forexapp');
  oanda = new FakeOanda({ token: OANDA_TOKEN, lines: () => OANDA_LINES, heartbeatMs: 1000 });
  polygon = new FakePolygon({ apiKey: POLYGON_KEY, frames: (_c, n) => (n === 1 ? POLYGON_FRAMES : []) });
  const config = loadConfig({
    env: { DATABASE_URL: db.url, OANDA_TOKEN, POLYGON_API_KEY: POLYGON_KEY },
    overrides: {
      dataDir, clickhouse: { enabled: false }, metrics: { enabled: false }, worker: { concurrency: 1 },
      feeds: [oandaFeedConfig(await oanda.start()), polygonFeedConfig(await polygon.start())],
    },
  });
  app = await startApp(config, quietLog);
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await Promise.all([oanda?.stop(), polygon?.stop()]);
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('OANDA and Polygon feeds in the running process', () => {
  it('builds both sources\' mid-price bars through the worker and serves canonical bars from OANDA', async () => {
    const bars = await waitFor(async () => {
      const rows = await db.sql`select venue, count(*)::int as n, sum(ticks)::int as ticks from market.quote_bars_1m
                                where symbol = 'EUR/USD' group by venue order by venue`;
      return rows.length === 2 && rows[0]!.ticks === OANDA_LINES.length && rows[1]!.ticks === POLYGON_FRAMES.length ? rows : undefined;
    }, 'quote bars of both venues, built by the bars_refresh job', 30_000, 200);
    expect(bars!.map((r) => ({ ...r }))).toEqual([{ venue: 'oanda', n: 3, ticks: 72 }, { venue: 'polygon', n: 3, ticks: 60 }]);
    const canonical = await db.sql`select source, coverage::text, complete from market.canonical_bars('EUR/USD', '1m', '2024-03-04', '2024-03-05')`;
    expect(canonical.map((r) => ({ ...r }))).toEqual(Array(3).fill({ source: 'oanda', coverage: '1.0000', complete: true }));
    const feeds = await db.sql`select feed, state from ops.feed_status order by feed`;
    expect(feeds.map((r) => ({ ...r }))).toEqual([{ feed: 'oanda-test', state: 'connected' }, { feed: 'polygon-forex', state: 'connected' }]);
  });
});
