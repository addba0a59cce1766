import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startApp, type App } from '../src/app.ts';
import { startOpsServer } from '../src/http.ts';
import { attachSources, boundedLabel, registry, render } from '../src/metrics.ts';
import { registerSecret } from '../src/redact.ts';
import { createLogger } from '../src/log.ts';
import { Writable } from 'node:stream';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { quietLog } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// The operations endpoint of a running tickflow (startApp: worker, feed against the fake Binance
// replaying the capture), scraped over HTTP like Prometheus does. Expected values come from the
// capture and from the database, not from tickflow's counters.
const { frames, snapshot } = loadSpotCapture();
const streamOf = (text: string) => /^\{"stream":"[a-z0-9]+@([A-Za-z]+)/.exec(text)?.[1];
const perStream = new Map<string, number>();
for (const f of frames) perStream.set(streamOf(f.text)!, (perStream.get(streamOf(f.text)!) ?? 0) + 1);
const TRADES = perStream.get('trade')!;

/** Prometheus text format -> sample name{labels} -> value. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

let db: TestDatabase;
let fake: FakeBinance;
let app: App;
let base: string;
let logs = '';
const logLines = () => logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; feed?: string; reason?: string });
const dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-metrics-'));

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseExposition(await res.text());
}

beforeAll(async () => {
  db = await createTestDatabase('metrics');
  // The capture, then one frame the normalizer must quarantine (a trade whose price is not a number).
  const bad = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256000,"s":"BTCUSDT","t":1,"p":"not-a-price","q":"1","T":1723161256000,"m":true,"M":true}}';
  fake = new FakeBinance({ frames: () => [...frames.map((f) => f.text), bad], intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
  const wsUrl = await fake.start();
  const config = loadConfig({
    env: { DATABASE_URL: db.url },
    overrides: {
      dataDir,
      clickhouse: { enabled: false },
      metrics: { port: 0 },
      worker: { concurrency: 1 },
      landing: { maxBatchFrames: 2000, flushIntervalMs: 10 },
      feeds: [{ name: 'binance-metrics', venue: 'binance', channels: ['trade', 'bookTicker', 'depth'], instruments: ['BTC/USDT'],
                urls: { ws: wsUrl, rest: fake.restUrl } }],
    },
  });
  const sink = new Writable({ write(chunk, _enc, cb) { logs += String(chunk); cb(); } });
  app = await startApp(config, createLogger({ level: 'info', destination: sink }));
  base = `http://127.0.0.1:${app.http!.address.port}`;
  await waitFor(async () => {
    const [r] = await db.sql`select count(*)::int as n from staging.frames`;
    return r!.n === frames.length + 2;
  }, 'the capture, the bad frame and the snapshot to land');
});

afterAll(async () => {
  await app?.stop();
  await fake?.stop();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('operations endpoint of a running tickflow', () => {
  it('/health and /ready answer JSON; anything else is 404', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok' } });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('counts landed frames by venue and stream, batch sizes and a latency per frame, exactly', async () => {
    const m = await scrape();
    for (const [stream, n] of perStream) {
      const extra = stream === 'trade' ? 1 : 0; // the bad trade frame lands too (and is quarantined)
      expect(m.get(`tickflow_frames_landed_total{venue="binance",stream="${stream}"}`), stream).toBe(n + extra);
    }
    expect(m.get('tickflow_frames_landed_total{venue="binance",stream="depth_snapshot"}')).toBe(1);
    const total = frames.length + 2;
    expect(m.get('tickflow_landing_batch_frames_sum')).toBe(total);
    expect(m.get('tickflow_landing_latency_seconds_count')).toBe(total);
    // Every frame committed within 30 s of its receipt (the histogram's last finite bucket).
    expect(m.get('tickflow_landing_latency_seconds_bucket{le="30"}')).toBe(total);
    expect(m.get('tickflow_normalized_rows_total{kind="trades"}')).toBe(TRADES);
    expect(m.get('tickflow_landing_buffered_frames')).toBe(0);
  });

  it('shows the feed up and connected, with its messages', async () => {
    const m = await scrape();
    const labels = 'feed="binance-metrics",venue="binance"';
    expect(m.get(`tickflow_feed_up{${labels}}`)).toBe(1);
    expect(m.get(`tickflow_feed_state{${labels},state="connected"}`)).toBe(1);
    expect(m.get(`tickflow_feed_state{${labels},state="backoff"}`)).toBe(0);
    expect(m.get(`tickflow_feed_messages_total{${labels}}`)).toBe(frames.length + 1);
    expect(m.get(`tickflow_feed_last_message_age_seconds{${labels}}`)).toBeGreaterThanOrEqual(0);
  });

  it('reads quarantine, normalization lag and the job queue from Postgres', async () => {
    const [q] = await db.sql`select count(*)::int as n from staging.quarantine where venue = 'binance'`;
    expect(q!.n).toBe(1);
    await waitFor(async () => (await scrape()).get('tickflow_quarantined_payloads{venue="binance"}') === 1, 'the quarantine gauge', 10_000, 500);
    const m = await scrape();
    expect(m.get('tickflow_normalization_pending_batches')).toBe(0);
    expect(m.get('tickflow_normalization_lag_seconds')).toBe(0);
  });

  it('times jobs by task: the bars refresh queued by new trades ran', async () => {
    await waitFor(async () => ((await scrape()).get('tickflow_job_duration_seconds_count{task="bars_refresh",outcome="success"}') ?? 0) >= 1,
      'a bars_refresh run to be timed', 20_000, 250);
  });

  it('runs a job the crontab queued (graphile-worker adds _cron to its payload) without a failure', async () => {
    const ok = (m: Map<string, number>) => m.get('tickflow_job_duration_seconds_count{task="normalize_pending",outcome="success"}') ?? 0;
    const before = ok(await scrape());
    await db.sql`select graphile_worker.add_job('normalize_pending', '{"_cron":{"ts":"2026-11-21T12:16:00.000Z","backfilled":false}}'::json)`;
    await waitFor(async () => ok(await scrape()) > before, 'the cron-shaped job to succeed', 20_000, 250);
    const m = await scrape();
    expect(m.get('tickflow_job_failures_total{task="normalize_pending",final="false"}') ?? 0).toBe(0);
  });

  it('after the venue drops the connection: a reconnect, the disconnect reason, and an open gap', async () => {
    fake.dropAll();
    await waitFor(async () => {
      const [r] = await db.sql`select count(*)::int as n from staging.frames where stream = 'depth_snapshot'`;
      return r!.n === 2;
    }, 'the feed to reconnect and resync the book');
    const labels = 'feed="binance-metrics",venue="binance"';
    // The disconnect opened gaps; recovery may move them through their states meanwhile, so the
    // gauges are compared with the ledger by total.
    const [g] = await db.sql<{ n: number }[]>`select count(*)::int as n from quality.gaps where venue = 'binance'`;
    expect(g!.n).toBeGreaterThanOrEqual(1);
    await waitFor(async () => {
      const m = await scrape();
      const total = [...m].filter(([k]) => k.startsWith('tickflow_gaps{venue="binance"')).reduce((n, [, v]) => n + v, 0);
      return total === g!.n;
    }, 'the gap gauges to count the ledger', 10_000, 500);
    const m = await scrape();
    expect(m.get(`tickflow_feed_reconnects_total{${labels}}`)).toBe(1);
    const drops = (m.get(`tickflow_feed_disconnects_total{${labels},reason="venue_closed"}`) ?? 0)
      + (m.get(`tickflow_feed_disconnects_total{${labels},reason="error"}`) ?? 0);
    expect(drops).toBe(1);
    const errors = (m.get(`tickflow_connector_errors_total{${labels},kind="venue_closed"}`) ?? 0)
      + (m.get(`tickflow_connector_errors_total{${labels},kind="connection_error"}`) ?? 0);
    expect(errors).toBe(1);
  });
});

describe('logs', () => {
  it('are JSON, quiet at info while data flows, and say why at warn when a feed drops', () => {
    const lines = logLines();
    // (The test database's password is "tickflow", so the redaction masks that word in messages.)
    const started = lines.findIndex((l) => l.msg.endsWith(' started') && 'feeds' in l);
    expect(started).toBeGreaterThan(0);
    const drop = lines.findIndex((l) => l.msg === 'disconnected');
    // Between the start and the drop, 500 frames streamed, batches landed and jobs ran: not a line.
    expect(lines.slice(started + 1, drop)).toEqual([]);
    expect(lines[drop]).toMatchObject({ level: 40, feed: 'binance-metrics', msg: 'disconnected' });
    expect(lines[drop]!.reason).toMatch(/^(closed by venue|closed:|error:)/);
    // Every line after the start comes from a child logger that names its component or feed.
    for (const l of lines.slice(started + 1)) expect(l.feed ?? (l as { component?: string }).component, JSON.stringify(l)).toBeDefined();
  });
});

describe('metric names and labels follow the Prometheus conventions', () => {
  it('every tickflow metric has a unit or _total suffix, and no label can carry an unbounded value', async () => {
    const metrics = await registry.getMetricsAsJSON();
    const ours = metrics.filter((m) => m.name.startsWith('tickflow_'));
    expect(ours.length).toBeGreaterThan(25);
    const allowedLabels = new Set(['venue', 'stream', 'feed', 'state', 'kind', 'reason', 'task', 'outcome', 'final', 'severity', 'le']);
    for (const m of ours) {
      expect(m.name, m.name).toMatch(/^tickflow_[a-z_]+$/);
      if (String(m.type) === 'counter') expect(m.name, m.name).toMatch(/_total$/);
      else expect(m.name, m.name).not.toMatch(/_total$/);
      if (String(m.type) === 'histogram') expect(m.name, m.name).toMatch(/_(seconds|frames)$/);
      for (const v of m.values) for (const l of Object.keys(v.labels)) expect(allowedLabels, `${m.name} label ${l}`).toContain(l);
    }
  });

  it('caps a label fed by venue data at 64 distinct values', () => {
    const values = Array.from({ length: 100 }, (_, i) => boundedLabel('test_stream', `s${i}`));
    expect(new Set(values).size).toBe(65);
    expect(values.slice(64).every((v) => v === 'other')).toBe(true);
    expect(boundedLabel('test_stream', 's1')).toBe('s1');
    expect(boundedLabel('test_stream2', 'has space')).toBe('other');
  });
});

describe('ClickHouse sync lag and readiness failures', () => {
  it('reports rows waiting for ClickHouse from ops.clickhouse_lag', async () => {
    const lagDb = await createTestDatabase('metrics_lag');
    try {
      await lagDb.sql`insert into market.instruments (venue, venue_symbol, symbol) values ('binance', 'LAGUSDT', 'LAG/USDT')`;
      await lagDb.sql`
        insert into market.trades (instrument_id, traded_at, trade_id, price, size, side, received_at, source)
        select i.instrument_id, now() - interval '10 seconds', g::text, 1.5, 2, 'buy', now() - interval '10 seconds', 'ws'
        from market.instruments i, generate_series(1, 7) g where i.venue_symbol = 'LAGUSDT'`;
      const detach = attachSources({ sql: lagDb.sql, feeds: [], clickhouse: true, log: quietLog });
      try {
        const [want] = await lagDb.sql`select pending_rows::int as n from ops.clickhouse_lag where stream = 'trades'`;
        expect(want!.n).toBe(7);
        const m = parseExposition(await render());
        expect(m.get('tickflow_clickhouse_pending_rows{stream="trades"}')).toBe(7);
        expect(m.get('tickflow_clickhouse_sync_lag_seconds{stream="trades"}')).toBeGreaterThan(5);
      } finally {
        detach();
      }
    } finally {
      await lagDb.drop();
    }
  });

  it('/ready is 503 with the failing check, and a secret in its error is redacted', async () => {
    registerSecret('canary-ready-secret-1234');
    const server = await startOpsServer({ host: '127.0.0.1', port: 0 }, [
      { name: 'database', check: async () => { throw new Error('connect ECONNREFUSED (password canary-ready-secret-1234)'); } },
      { name: 'slow', check: () => new Promise(() => {}) },
    ], quietLog);
    try {
      const res = await fetch(`http://127.0.0.1:${server.address.port}/ready`);
      expect(res.status).toBe(503);
      const body = await res.json() as { status: string; checks: Record<string, string> };
      expect(body.status).toBe('not ready');
      expect(body.checks.database).toBe('failing: connect ECONNREFUSED (password [redacted])');
      expect(body.checks.slow).toBe('failing: no answer within 2000 ms');
    } finally {
      await server.close();
    }
  });
});

describe('backfill progress and venue rate limits', () => {
  // The backfill engine's tables (ops.backfill_chunks, ops.rate_state) come with its migration.
  const present = existsSync(path.join(import.meta.dirname, '..', 'migrations', 'postgres', '20261121014000_history_recovery.sql'));
  it.runIf(present)('counts the waits of a REST client for its venue\'s budget', async () => {
    const { RestClient } = await import('../ingesters/runtime/rest.ts');
    const rl = await createTestDatabase('metrics_rl');
    const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      // One request per second: the second of two requests waits for the next window.
      const venue = { venue: 'metricsvenue', defaultBaseUrl: '', defaultLimits: [{ name: 'requests', unit: 'requests' as const, windowSeconds: 1, max: 1 }],
        classify: (status: number) => (status === 200 ? 'ok' as const : 'retry' as const), complete: () => true };
      await RestClient.ensureBudget(rl.sql, venue);
      const client = new RestClient(rl.sql, venue, `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, quietLog);
      const page = { stream: 'test', path: '/x', query: [] as const, weight: 1 };
      const before = parseExposition(await registry.metrics());
      const ac = new AbortController();
      await client.get(page, ac.signal, () => {});
      await client.get(page, ac.signal, () => {});
      const after = parseExposition(await registry.metrics());
      const waits = (after.get('tickflow_rate_limit_waits_total{venue="metricsvenue"}') ?? 0) - (before.get('tickflow_rate_limit_waits_total{venue="metricsvenue"}') ?? 0);
      const seconds = (after.get('tickflow_rate_limit_wait_seconds_total{venue="metricsvenue"}') ?? 0) - (before.get('tickflow_rate_limit_wait_seconds_total{venue="metricsvenue"}') ?? 0);
      expect(waits).toBeGreaterThanOrEqual(1);
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThanOrEqual(1.5);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rl.drop();
    }
  });

  it.runIf(present)('reads chunk states, new rows and rate-limit counters from ops', async () => {
    const bf = await createTestDatabase('metrics_bf');
    try {
      await bf.sql`
        insert into ops.backfill_chunks (venue, symbol, kind, timeframe, chunk_from, chunk_to, state, rows_new)
        select 'binance', 'BTC/USDT', 'candles', '1m', t, t + interval '1 day', s, 1440
        from (values (timestamptz '2025-01-01', 'done'), ('2025-01-02', 'done'), ('2025-01-03', 'running'), ('2025-01-04', 'queued')) v(t, s)`;
      await bf.sql`insert into ops.rate_state (venue, requests, throttled, bans, paused_until)
                   values ('binance', 120, 3, 1, now() + interval '1 minute')
                   on conflict (venue) do update set requests = excluded.requests, throttled = excluded.throttled,
                     bans = excluded.bans, paused_until = excluded.paused_until`;
      const detach = attachSources({ sql: bf.sql, feeds: [], clickhouse: false, log: quietLog });
      try {
        const m = parseExposition(await render());
        expect(m.get('tickflow_backfill_chunks{venue="binance",kind="candles",state="done"}')).toBe(2);
        expect(m.get('tickflow_backfill_chunks{venue="binance",kind="candles",state="running"}')).toBe(1);
        expect(m.get('tickflow_backfill_chunks{venue="binance",kind="candles",state="queued"}')).toBe(1);
        expect(m.get('tickflow_backfill_new_rows{venue="binance",kind="candles"}')).toBe(4 * 1440);
        expect(m.get('tickflow_venue_requests_total{venue="binance"}')).toBe(120);
        expect(m.get('tickflow_venue_throttled_total{venue="binance"}')).toBe(3);
        expect(m.get('tickflow_venue_bans_total{venue="binance"}')).toBe(1);
        expect(m.get('tickflow_venue_paused{venue="binance"}')).toBe(1);
      } finally {
        detach();
      }
    } finally {
      await bf.drop();
    }
  });
});
