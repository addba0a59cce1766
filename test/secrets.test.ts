import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startApp, type App } from '../src/app.ts';
import { createLogger } from '../src/log.ts';
import { feedStatus, formatStatus } from '../src/status.ts';
import { FakeBinance } from './fakes/binance.ts';
import { FakeOanda } from './fakes/oanda.ts';
import { FakePolygon } from './fakes/polygon.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { capturedOandaLines, fixtureLines } from './support/forex.ts';
import { waitFor } from './support/wait.ts';

// The whole pipeline (startApp: worker, OANDA, Polygon and Binance feeds against local fakes) run
// with recognizable canary credentials: the OANDA token and the Polygon key from the environment,
// and a password inside a configured venue URL. The fakes prove the credentials were used; then
// every log line (trace level), every row of every table of every schema, every job, the status
// output and the operations endpoint are searched for the canaries.
const PREFIX = `tfcanary${randomBytes(3).toString('hex')}`;
const OANDA_TOKEN = `${PREFIX}oanda${randomBytes(6).toString('hex')}`;
const POLYGON_KEY = `${PREFIX}polygon${randomBytes(6).toString('hex')}`;
const URL_PASSWORD = `${PREFIX}url${randomBytes(6).toString('hex')}`;

const { frames, snapshot } = loadSpotCapture();
const XQ = fixtureLines('polygon/arbitragegainer-crypto-XQ-quotes-2023-07-26-part1.jsonl').slice(0, 20);
const XQ_PAIRS = [...new Set(XQ.map((f) => (JSON.parse(f) as Array<{ pair: string }>)[0]!.pair.replace('-', '/')))];
const OANDA_LINES = capturedOandaLines();
const OANDA_PRICES = OANDA_LINES.filter((l) => !l.includes('"HEARTBEAT"')).length; // heartbeats are not landed

let db: TestDatabase;
let app: App;
let binance: FakeBinance;
let oanda: FakeOanda;
let polygon: FakePolygon;
let logs = '';
const dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-secrets-'));

beforeAll(async () => {
  db = await createTestDatabase('secrets');
  binance = new FakeBinance({ frames: () => frames.map((f) => f.text), intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
  const binanceWs = await binance.start();
  oanda = new FakeOanda({ token: OANDA_TOKEN, lines: () => OANDA_LINES, heartbeatMs: 200 });
  const oandaUrl = await oanda.start();
  polygon = new FakePolygon({ apiKey: POLYGON_KEY, frames: (cluster) => (cluster === 'crypto' ? XQ : []) });
  const polygonWs = await polygon.start();
  const config = loadConfig({
    env: { DATABASE_URL: db.url, OANDA_TOKEN, POLYGON_API_KEY: POLYGON_KEY },
    overrides: {
      dataDir,
      clickhouse: { enabled: false },
      metrics: { port: 0 },
      worker: { concurrency: 1 },
      landing: { maxBatchFrames: 2000, flushIntervalMs: 10 },
      feeds: [
        { name: 'binance-canary', venue: 'binance', channels: ['trade', 'bookTicker', 'depth'], instruments: ['BTC/USDT'],
          urls: { ws: binanceWs.replace('ws://', `ws://feeduser:${URL_PASSWORD}@`), rest: binance.restUrl } },
        { name: 'oanda-canary', venue: 'oanda', channels: ['pricing'], instruments: ['EUR/USD', 'EUR/JPY', 'USD/JPY'],
          account: '101-004-1234567-001', urls: { stream: oandaUrl, rest: oandaUrl } },
        { name: 'polygon-canary', venue: 'polygon', channels: ['crypto:XQ'], instruments: XQ_PAIRS, urls: { ws: polygonWs } },
      ],
    },
  });
  const sink = new Writable({ write(chunk, _enc, cb) { logs += String(chunk); cb(); } });
  app = await startApp(config, createLogger({ level: 'trace', destination: sink }));
  await waitFor(async () => {
    const rows = await db.sql<{ venue: string; n: number }[]>`select venue, count(*)::int as n from staging.frames group by venue`;
    const n = Object.fromEntries(rows.map((r) => [r.venue, r.n]));
    return n.binance === frames.length + 1 && n.oanda === OANDA_PRICES && n.polygon === XQ.length;
  }, 'every venue\'s frames to land', 30_000);
}, 90_000);

afterAll(async () => {
  await app?.stop();
  await Promise.all([binance?.stop(), oanda?.stop(), polygon?.stop()]);
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('secrets never leave the process', () => {
  it('the canaries were really used to authenticate (so the search below is not vacuous)', () => {
    expect(oanda.requests.some((r) => r.authorization === `Bearer ${OANDA_TOKEN}`)).toBe(true);
    expect(polygon.received.some((m) => m.text.includes(POLYGON_KEY))).toBe(true);
    expect(logs.split('\n').filter(Boolean).length).toBeGreaterThan(10);
  });

  it('no log line carries one', () => {
    expect(logs).not.toContain(PREFIX);
    for (const line of logs.split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
  });

  it('no row of any table (staging, market, quality, ops, the job queue, public) carries one', async () => {
    const tables = await db.sql<{ name: string }[]>`
      select format('%I.%I', n.nspname, c.relname) as name
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and not c.relispartition
        and n.nspname in ('staging', 'market', 'quality', 'ops', 'graphile_worker', 'public')
      order by 1`;
    expect(tables.length).toBeGreaterThan(20);
    const hits: string[] = [];
    for (const { name } of tables) {
      const [r] = await db.sql.unsafe(`select count(*)::int as n from ${name} t where t::text like '%' || $1 || '%'`, [PREFIX]);
      if (r!.n > 0) hits.push(`${name}: ${r!.n}`);
    }
    expect(hits).toEqual([]);
  });

  it('the URL with a password is stored redacted in ops.sessions', async () => {
    const rows = await db.sql<{ url: string }[]>`select url from ops.sessions where feed = 'binance-canary'`;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.url).toMatch(/^ws:\/\/feeduser:\[redacted\]@127\.0\.0\.1:\d+\/stream\?streams=/);
  });

  it('a job error that quotes a secret is stored redacted', async () => {
    // A payload that (wrongly) carries a secret fails validation with the payload in its message;
    // the message graphile-worker stores in the queue must not carry it. (The payload itself is
    // the caller's: tickflow never puts a credential in one, as the search above shows.)
    await db.sql`select graphile_worker.add_job('bars_refresh', json_build_object('limit', ${OANDA_TOKEN}::text), max_attempts := 1)`;
    await waitFor(async () => {
      const [j] = await db.sql`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'bars_refresh' and last_error is not null`;
      return j!.n > 0;
    }, 'the bad job to fail');
    const [job] = await db.sql<{ last_error: string }[]>`
      select last_error from graphile_worker.jobs where task_identifier = 'bars_refresh' and last_error is not null`;
    expect(job!.last_error).toMatch(/^bars_refresh: expected \{limit\?: positive integer\}, received \{"limit":"\[redacted\]"\}/);
    expect(job!.last_error).toContain('[redacted]');
    expect(job!.last_error).not.toContain(PREFIX);
    expect(logs).not.toContain(PREFIX);
  });

  it('the status output, /metrics and /ready carry none', async () => {
    const status = formatStatus(await feedStatus(db.sql));
    expect(status).toMatch(/oanda-canary/);
    expect(status).not.toContain(PREFIX);
    const base = `http://127.0.0.1:${app.http!.address.port}`;
    for (const p of ['/metrics', '/ready', '/health']) {
      const body = await (await fetch(`${base}${p}`)).text();
      expect(body, p).not.toContain(PREFIX);
    }
  });
});
