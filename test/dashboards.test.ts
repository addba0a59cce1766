import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import postgres from 'postgres';
import { loadConfig } from '../src/config.ts';
import { connect, type Sql } from '../src/db.ts';
import { clickhouseOptions, openClickHouse, type ClickHouse } from '../src/clickhouse/client.ts';
import { migrateClickHouse } from '../src/clickhouse/migrate.ts';
import { syncClickHouse } from '../src/clickhouse/sync.ts';
import { registry } from '../src/metrics.ts';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { binanceFeed, quietLog, startBinance } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// Every panel of dashboards/*.json, expanded as Grafana expands it (time macros, interval,
// template variables resolved by running their own queries) and run against the real schema:
// Postgres panels as a member of tickflow_grafana on data landed from the Binance capture through
// the real writer (plus one disconnect and one spike finding), ClickHouse panels on the in-process
// engine after a real sync, Prometheus panels checked against the metrics tickflow registers.
// Each must succeed and return rows.

interface Target { refId: string; rawSql?: string; expr?: string; format?: string }
interface Panel { id: number; title: string; type: string; datasource: { type: string; uid: string }; targets: Target[] }
interface Variable { name: string; type: string; query: string; datasource?: { uid: string }; current?: { value?: string } }
interface Dashboard { uid: string; title: string; panels: Panel[]; templating: { list: Variable[] } }

const DIR = path.join(import.meta.dirname, '..', 'dashboards');
const DASHBOARDS = readdirSync(DIR).filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, d: JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Dashboard }));

const { frames, snapshot } = loadSpotCapture();
// The dashboard time range: from the capture's day (event times) to now (receive times).
const FROM = new Date(Number(JSON.parse(frames.find((f) => f.text.includes('@trade"'))!.text).data.T));
FROM.setUTCHours(0, 0, 0, 0);
let TO: Date;

let db: TestDatabase;
let grafana: Sql;
let grafanaRole: string;
let ch: ClickHouse;
const dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-dash-'));

/** Grafana's $__interval: the range over about 1000 points, rounded up to a familiar step. */
function interval(from: Date, to: Date): { text: string; ms: number } {
  const steps: [string, number][] = [['1s', 1e3], ['5s', 5e3], ['10s', 1e4], ['30s', 3e4], ['1m', 6e4], ['5m', 3e5], ['10m', 6e5],
    ['30m', 18e5], ['1h', 36e5], ['3h', 108e5], ['6h', 216e5], ['12h', 432e5], ['1d', 864e5], ['7d', 6048e5], ['30d', 2592e6]];
  const perPoint = (to.getTime() - from.getTime()) / 1000;
  const [text, ms] = steps.find(([, step]) => step >= perPoint) ?? steps.at(-1)!;
  return { text, ms };
}

function replaceVariables(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c!;
    return name in vars ? vars[name]! : whole;
  });
}

/** Grafana's PostgreSQL macros (pkg/tsdb/grafana-postgresql-datasource/macros.go). */
function expandPostgres(sql: string, vars: Record<string, string>): string {
  const iso = (d: Date) => `'${d.toISOString().replace('.000Z', 'Z')}'`;
  const iv = interval(FROM, TO);
  const out = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} BETWEEN ${iso(FROM)} AND ${iso(TO)}`)
    .replace(/\$__timeFrom\(\)/g, iso(FROM))
    .replace(/\$__timeTo\(\)/g, iso(TO))
    .replace(/\$__interval_ms/g, String(iv.ms))
    .replace(/\$__interval/g, iv.text);
  return replaceVariables(out, vars);
}

/** The ClickHouse datasource plugin's macros (grafana-clickhouse-datasource, pkg/macros). */
function expandClickHouse(sql: string, vars: Record<string, string>): string {
  const s = (d: Date) => Math.floor(d.getTime() / 1000);
  const out = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} >= toDateTime(${s(FROM)}) AND ${col.trim()} <= toDateTime(${s(TO)})`)
    .replace(/\$__fromTime/g, `toDateTime(${s(FROM)})`)
    .replace(/\$__toTime/g, `toDateTime(${s(TO)})`)
    .replace(/\$__interval_s/g, String(interval(FROM, TO).ms / 1000));
  return replaceVariables(out, vars);
}

beforeAll(async () => {
  db = await createTestDatabase('dash');
  // Land the capture through the real writer, then cut the connection once: the replay lands
  // again and the disconnect is a gap in the ledger.
  const fake = new FakeBinance({ frames: () => frames.map((f) => f.text), intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
  const wsUrl = await fake.start();
  const feed = startBinance(db.url, binanceFeed(wsUrl, fake.restUrl, { name: 'binance-dash' }), { backoffBaseMs: 50 });
  try {
    const landed = async (n: number) => {
      const [r] = await db.sql`select count(*)::int as n from staging.frames`;
      return r!.n === n;
    };
    await waitFor(() => landed(frames.length + 1), 'the capture to land');
    fake.dropAll();
    await waitFor(() => landed(2 * (frames.length + 1)), 'the replay after the reconnect to land');
  } finally {
    await feed.stop();
    await fake.stop();
  }
  await db.sql`select market.refresh_bars(100000)`;
  // A spike finding on the capture's first trade minute, as the spike detector writes it.
  await db.sql`
    insert into quality.findings (kind, label, severity, instrument_id, source, window_from, window_to, value, baseline, detector)
    select 'spike', 'spike', 'warning', t.instrument_id, 'binance', t.bucket, t.bucket + interval '1 minute', t.high, t.open, 'test'
    from market.bars_1m t order by t.bucket limit 1`;
  TO = new Date(Date.now() + 60_000);

  // Grafana logs in with a role of tickflow_grafana's rights and defaults.
  grafanaRole = `dash_grafana_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const admin = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create role ${grafanaRole} login password '${password}' in role tickflow_grafana`);
  await admin.unsafe(`alter role ${grafanaRole} set statement_timeout = '10s'`);
  await admin.unsafe(`alter role ${grafanaRole} set default_transaction_read_only = on`);
  await admin.end();
  const u = new URL(db.url);
  u.username = grafanaRole;
  u.password = password;
  grafana = connect(u.toString(), { max: 2 });

  // ClickHouse: the in-process engine with the schema, and the rows shipped by the real sync.
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  const options = clickhouseOptions(config, { ticksTtlDays: 36_500 });
  ch = await openClickHouse(config, options);
  await migrateClickHouse(ch, options, quietLog);
  await syncClickHouse({ sql: db.sql, ch, options, log: quietLog });
}, 120_000);

afterAll(async () => {
  await grafana?.end({ timeout: 1 });
  await ch?.close();
  await db?.drop();
  if (grafanaRole) {
    const admin = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop role if exists ${grafanaRole}`);
    await admin.end();
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Template variables as Grafana resolves them: a query variable takes the first value its query returns. */
async function resolveVariables(d: Dashboard): Promise<Record<string, string>> {
  const vars: Record<string, string> = {};
  for (const v of d.templating.list) {
    if (v.type === 'custom') vars[v.name] = v.current?.value ?? v.query.split(',')[0]!;
    else {
      const rows = await grafana.unsafe(expandPostgres(v.query, vars));
      expect(rows.length, `variable ${v.name} of ${d.uid} has values`).toBeGreaterThan(0);
      vars[v.name] = String(Object.values(rows[0]!)[0]);
    }
  }
  return vars;
}

/** Grouping, aggregate or window functions, bucketing, joins: the logic that belongs in views. */
const AGGREGATION = /\bgroup\s+by\b|\bjoin\b|\b(count|sum|avg|min|max|date_trunc|date_bin|time_bucket|toStartOf\w+|over|argMin|argMax)\s*\(/i;

describe('Grafana dashboards run against the real schema', () => {
  it('has the four dashboards, each with panels', () => {
    expect(DASHBOARDS.map((x) => x.d.uid).sort()).toEqual(['tickflow-ingestion', 'tickflow-market', 'tickflow-overview', 'tickflow-quality']);
    for (const { d } of DASHBOARDS) expect(d.panels.length).toBeGreaterThan(2);
  });

  for (const { file, d } of DASHBOARDS) {
    it(`${file}: every SQL panel expands, runs and returns rows; every PromQL metric exists`, async () => {
      const vars = await resolveVariables(d);
      let sqlPanels = 0;
      for (const p of d.panels) {
        for (const t of p.targets) {
          const where = `${file} / ${p.title} / ${t.refId}`;
          if (p.datasource.type === 'grafana-postgresql-datasource') {
            expect(t.rawSql, where).toBeDefined();
            expect(t.rawSql!, `${where}: no aggregation in panel SQL`).not.toMatch(AGGREGATION);
            const sql = expandPostgres(t.rawSql!, vars);
            expect(sql, where).not.toMatch(/\$\w|\[\[/);
            const rows = await grafana.unsafe(sql).catch((err: Error) => { throw new Error(`${where}: ${err.message}\n${sql}`); });
            expect(rows.length, `${where} returns rows`).toBeGreaterThan(0);
            if (t.format === 'time_series') expect(Object.keys(rows[0]!), where).toContain('time');
            sqlPanels++;
          } else if (p.datasource.type === 'grafana-clickhouse-datasource') {
            expect(t.rawSql!, `${where}: no aggregation in panel SQL`).not.toMatch(AGGREGATION);
            const sql = expandClickHouse(t.rawSql!, vars);
            expect(sql, where).not.toMatch(/\$\w/);
            const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' })
              .catch((err: Error) => { throw new Error(`${where}: ${err.message}\n${sql}`); });
            const rows = await rs.json<Record<string, unknown>>();
            expect(rows.length, `${where} returns rows`).toBeGreaterThan(0);
            expect(Object.keys(rows[0]!), where).toEqual(['time', 'open', 'high', 'low', 'close', 'volume']);
            sqlPanels++;
          } else {
            expect(p.datasource.type, where).toBe('prometheus');
            const expr = replaceVariables(t.expr!, vars);
            const names = [...expr.matchAll(/\b(tickflow_[a-z_]+)/g)].map((m) => m[1]!);
            expect(names.length, where).toBeGreaterThan(0);
            for (const name of names) {
              const base = name.replace(/_(bucket|sum|count)$/, '');
              const metric = registry.getSingleMetric(base) as unknown as { labelNames?: string[] } | undefined;
              expect(metric, `${where}: ${name} is a tickflow metric`).toBeDefined();
              const labels = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()))
                .concat([...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => m[1]!.split(',').map((l) => l.split(/[=!~]/)[0]!.trim())))
                .filter((l) => l && l !== 'le');
              for (const l of labels) expect(metric!.labelNames, `${where}: ${name} has label ${l}`).toContain(l);
            }
          }
        }
      }
      if (file !== 'overview.json') expect(sqlPanels).toBeGreaterThan(2);
    });
  }

  it('Postgres and ClickHouse market panels show the same bars', async () => {
    const pg = await grafana`select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as time, open::text, close::text, volume::text
                             from market.bars('BTC/USDT', '1m', '-infinity', 'infinity') order by bucket`;
    const rs = await ch.client.query({ query: `SELECT toString(bucket) AS time, toString(open) AS open, toString(close) AS close,
                                                      toString(volume) AS volume FROM bars_1m WHERE symbol = 'BTC/USDT' ORDER BY bucket`,
                                       format: 'JSONEachRow' });
    const chRows = await rs.json<Record<string, string>>();
    const trim = (v: string) => v.includes('.') ? v.replace(/0+$/, '').replace(/\.$/, '') : v;
    expect(chRows.map((r) => ({ time: r.time, open: trim(r.open!), close: trim(r.close!), volume: trim(r.volume!) })))
      .toEqual(pg.map((r) => ({ ...r })));
    expect(pg.length).toBeGreaterThan(0);
  });
});
