import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { inject } from 'vitest';
import { connect, type Sql } from '../src/db.ts';
import { migrate } from '../src/migrate.ts';
import { loadConfig } from '../src/config.ts';
import { startApp, type App } from '../src/app.ts';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { quietLog } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// Each role of migration 20261121018800_roles.sql, logged in as itself (the test gives it LOGIN
// and a password for its run, as an operator or docker-compose's init script would), doing its
// real work and refused everything else with SQLSTATE 42501 (insufficient_privilege).
const ROLES = ['tickflow_ingester', 'tickflow_worker', 'tickflow_analyst', 'tickflow_grafana'] as const;
type Role = typeof ROLES[number];
const { frames, snapshot } = loadSpotCapture();
const TRADES = frames.filter((f) => f.text.includes('@trade"')).length;

let db: TestDatabase;
const as: Partial<Record<Role, Sql>> = {};
const urls: Partial<Record<Role, string>> = {};

function urlAs(role: string, password: string): string {
  const u = new URL(db.url);
  u.username = role;
  u.password = password;
  return u.toString();
}

/** The SQLSTATE a statement fails with (undefined when it succeeds). */
async function sqlstate(p: Promise<unknown>): Promise<string | undefined> {
  try { await p; return undefined; } catch (err) { return (err as { code?: string }).code ?? String(err); }
}

beforeAll(async () => {
  db = await createTestDatabase('roles');
  // Database-level grants are not copied by CREATE DATABASE ... TEMPLATE; migrate applies them
  // (sql/zz_privileges.sql runs at every migrate), exactly as on a server.
  await migrate(db.sql, db.url, quietLog);
  const admin = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  try {
    for (const role of ROLES) {
      const password = randomBytes(12).toString('hex');
      await admin.unsafe(`alter role ${role} login password '${password}'`);
      urls[role] = urlAs(role, password);
      as[role] = connect(urls[role]!, { max: 2 });
    }
  } finally {
    await admin.end();
  }
});

afterAll(async () => {
  await Promise.all(Object.values(as).map((s) => s.end({ timeout: 1 })));
  const admin = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  for (const role of ROLES) await admin.unsafe(`alter role ${role} nologin password null`);
  await admin.end();
  await db?.drop();
});

describe('database roles: each can do its work and nothing else', () => {
  let worker: App | undefined;
  let fake: FakeBinance | undefined;

  afterAll(async () => { await worker?.stop(); await fake?.stop(); });

  /** `tickflow start --only ...` as a server runs it, logged in as one role. */
  function splitConfig(role: Role, feeds: unknown[] = []) {
    return loadConfig({ env: { DATABASE_URL: urls[role]! }, overrides: {
      worker: { concurrency: 1 }, clickhouse: { enabled: false }, metrics: { port: 0 }, feeds } });
  }

  it('tickflow_worker runs the worker half (`start --only worker`) and installs the job queue it owns', async () => {
    worker = await startApp(splitConfig('tickflow_worker'), quietLog, { only: 'worker' });
    const [owner] = await db.sql`select tableowner from pg_tables where schemaname = 'graphile_worker' and tablename = '_private_jobs'`;
    expect(owner!.tableowner).toBe('tickflow_worker');
  });

  it('tickflow_ingester runs the ingest half (`start --only ingest`): lands, normalizes and queues the bars refresh', async () => {
    fake = new FakeBinance({ frames: () => frames.map((f) => f.text), intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
    const wsUrl = await fake.start();
    const ingest = await startApp(splitConfig('tickflow_ingester', [{ name: 'binance-roles', venue: 'binance',
      channels: ['trade', 'bookTicker', 'depth'], instruments: ['BTC/USDT'], urls: { ws: wsUrl, rest: fake.restUrl } }]),
    quietLog, { only: 'ingest' });
    try {
      await waitFor(async () => {
        const [r] = await db.sql`select count(*)::int as n from staging.frames`;
        return r!.n === frames.length + 1;
      }, 'the capture to land as tickflow_ingester');
    } finally {
      await ingest.stop();
    }
    expect(ingest.lander.failedAttempts).toBe(0);
    const [t] = await db.sql`select count(*)::int as n from market.trades`;
    expect(t!.n).toBe(TRADES);
    const [b] = await db.sql`select count(*) filter (where normalized_at is null and frames > 0)::int as pending from ops.batches`;
    expect(b!.pending).toBe(0);
    const [s] = await db.sql`select count(*)::int as n from ops.sessions where feed = 'binance-roles' and close_reason = 'shutdown'`;
    expect(s!.n).toBe(1);
  });

  it('tickflow_worker runs the bars refresh the ingester queued; tickflow_analyst reads the bars', async () => {
    await waitFor(async () => {
      const rows = await as.tickflow_analyst!`select count(*)::int as n from market.bars('BTC/USDT', '1m', '-infinity', 'infinity')`;
      return rows[0]!.n > 0;
    }, 'bars built by the worker, visible to the analyst');
    const [want] = await db.sql`select count(distinct date_trunc('minute', traded_at))::int as n from market.trades`;
    const [got] = await as.tickflow_analyst!`select count(*)::int as n from market.bars_1m`;
    expect(got!.n).toBe(want!.n);
  });

  it('tickflow_ingester reads nothing and writes only frames and batches', async () => {
    const ing = as.tickflow_ingester!;
    expect(await sqlstate(ing`select count(*) from staging.frames`)).toBe('42501');
    expect(await sqlstate(ing`select * from ops.batches`)).toBe('42501');
    expect(await sqlstate(ing`select count(*) from market.trades`)).toBe('42501');
    expect(await sqlstate(ing`select count(*) from market.ticks`)).toBe('42501');
    expect(await sqlstate(ing`select count(*) from quality.gaps`)).toBe('42501');
    expect(await sqlstate(ing`select count(*) from ops.sessions`)).toBe('42501');
    expect(await sqlstate(ing`insert into market.instruments (venue, venue_symbol, symbol) values ('x', 'x', 'X')`)).toBe('42501');
    expect(await sqlstate(ing`update ops.sessions set close_reason = 'x'`)).toBe('42501');
    expect(await sqlstate(ing`delete from staging.frames`)).toBe('42501');
    expect(await sqlstate(ing`truncate staging.frames`)).toBe('42501');
    expect(await sqlstate(ing`select ops.run_maintenance()`)).toBe('42501');
    expect(await sqlstate(ing`select staging.normalize_pending()`)).toBe('42501');
    expect(await sqlstate(ing`select graphile_worker.add_job('maintenance', '{}'::json)`)).toBe('42501');
    expect(await sqlstate(ing`create table staging.mine (x int)`)).toBe('42501');
    // What it may do, directly: append a frame.
    const batch = '01900000-0000-7000-8000-000000000001';
    await ing`insert into ops.batches (batch_id, frames) values (${batch}, 1)`;
    await ing`insert into staging.frames (batch_id, venue, stream, seq, received_at, source, payload)
              values (${batch}, 'binance', 'trade', 1, now(), 'ws', '{}')`;
  });

  it('tickflow_worker maintains data but changes no schema and no role', async () => {
    const w = as.tickflow_worker!;
    const [m] = await w`select ops.run_maintenance() as r`;
    expect(m!.r).toHaveProperty('partitions_created');
    await w`select staging.normalize_pending(10)`;
    await w`delete from market.bar_invalidations where false`;
    expect(await sqlstate(w`create table market.mine (x int)`)).toBe('42501');
    expect(await sqlstate(w`drop table market.trades`)).toBe('42501');
    expect(await sqlstate(w`alter table market.trades add column x int`)).toBe('42501');
    expect(await sqlstate(w`create role tickflow_evil`)).toBe('42501');
    expect(await sqlstate(w`select rolpassword from pg_authid`)).toBe('42501');
    // A grant by a non-owner grants nothing (Postgres warns rather than fails).
    await w`grant select on market.trades to tickflow_analyst`;
    expect(await sqlstate(as.tickflow_analyst!`select count(*) from market.trades`)).toBe('42501');
  });

  it('tickflow_analyst reads market and quality views, never tables, staging or ops', async () => {
    const a = as.tickflow_analyst!;
    const [t] = await a`select count(*)::int as n from market.ticks`;
    expect(t!.n).toBe(TRADES);
    await a`select count(*) from market.bbo`;
    await a`select count(*) from market.book`;
    expect(await sqlstate(a`select count(*) from market.trades`)).toBe('42501');
    expect(await sqlstate(a`select count(*) from market.instruments`)).toBe('42501');
    expect(await sqlstate(a`select count(*) from staging.frames`)).toBe('42501');
    expect(await sqlstate(a`select count(*) from ops.sessions`)).toBe('42501');
    expect(await sqlstate(a`select count(*) from ops.feed_status`)).toBe('42501');
    expect(await sqlstate(a`insert into market.trades (instrument_id, traded_at, trade_id, price, size, received_at, source)
                           values (1, now(), 'x', 1, 1, now(), 'ws')`)).toBe('42501');
    expect(await sqlstate(a`select staging.normalize_batch('01900000-0000-7000-8000-000000000001')`)).toBe('42501');
    expect(await sqlstate(a`select ops.request_bars_refresh()`)).toBe('42501');
    expect(await sqlstate(a`select ops.record_events('[]'::jsonb)`)).toBe('42501');
    // Quotes of a time range from both stores, tick blocks included, through market.bbo_between
    // (it runs with the worker's rights; the tables stay closed to the analyst).
    const [inst] = await db.sql<{ id: number }[]>`
      insert into market.instruments (venue, venue_symbol, symbol, asset_class) values ('dukascopy', 'EURUSD', 'EUR/USD', 'forex')
      on conflict (venue, venue_symbol) do update set symbol = excluded.symbol returning instrument_id as id`;
    await db.sql`
      insert into market.quote_blocks (instrument_id, hour_start, ticks, unit, ms, ask, bid, ask_volume, bid_volume, received_at, source)
      values (${inst!.id}, '2020-06-03T10:00:00Z', 3, 0.00001, '{5, 1800000, 3599999}', '{110010, 110020, 110030}',
              '{110000, 110010, 110020}', '{1, 2.5, 0.75}', '{1.5, 1, 3}', '2020-06-03T11:05:00Z', 'file')`;
    const ticks = await a`
      select symbol, quoted_at, bid::text, ask::text, ask_size::text, trim_scale(mid)::text as mid
      from market.bbo_between('2020-06-03T10:30:00Z', '2020-06-03T11:00:00Z', array['EUR/USD']) order by quoted_at`;
    expect(ticks).toEqual([
      { symbol: 'EUR/USD', quoted_at: new Date('2020-06-03T10:30:00.000Z'), bid: '1.10010', ask: '1.10020', ask_size: '2500000', mid: '1.10015' },
      { symbol: 'EUR/USD', quoted_at: new Date('2020-06-03T10:59:59.999Z'), bid: '1.10020', ask: '1.10030', ask_size: '750000', mid: '1.10025' },
    ]);
    expect(await sqlstate(a`select count(*) from market.quote_blocks`)).toBe('42501');
    // market.quotes_between reads the view market.all_quotes, so the analyst may call it too.
    const [between] = await a`select count(*)::int as n from market.quotes_between('2020-06-03T10:00:00Z', '2020-06-03T10:30:00Z')
                              where instrument_id = ${inst!.id}`;
    expect(between!.n).toBe(1);
    // Every view of market and quality is readable (the bars stores behind them are not).
    const views = await db.sql<{ name: string }[]>`
      select format('%I.%I', schemaname, viewname) as name from pg_views where schemaname in ('market', 'quality') order by 1`;
    expect(views.length).toBeGreaterThan(5);
    for (const v of views) await a.unsafe(`select * from ${v.name} limit 0`);
  });

  it('tickflow_grafana reads its views read-only, with a statement timeout', async () => {
    const g = as.tickflow_grafana!;
    const rows = await g`select feed, state from ops.feed_status`;
    expect(rows.map((r) => r.feed)).toContain('binance-roles');
    const [s] = await g`select current_setting('statement_timeout') as timeout, current_setting('default_transaction_read_only') as ro`;
    expect(s).toEqual({ timeout: '10s', ro: 'on' });
    expect(await sqlstate(g`select count(*) from ops.sessions`)).toBe('42501');
    expect(await sqlstate(g`select count(*) from staging.frames`)).toBe('42501');
    expect(await sqlstate(g`select count(*) from market.trades`)).toBe('42501');
    // Read-only even where a write would be allowed: its own temporary table.
    expect(await sqlstate(g`create temp table scratch (x int)`)).toBe('25006');
  });
});

describe('database roles on the TimescaleDB engine (PGlite)', () => {
  it('tickflow_worker refreshes the continuous aggregates it owns; tickflow_analyst reads the bars views only', async () => {
    const { createTimescalePglite } = await import('./support/pglite.ts');
    const pg = await createTimescalePglite();
    try {
      await pg.query(`insert into market.instruments (venue, venue_symbol, symbol) values ('binance', 'BTCUSDT', 'BTC/USDT')`);
      await pg.query('set role tickflow_worker');
      await pg.query(`insert into market.trades (instrument_id, traded_at, trade_id, price, size, side, received_at, source)
                      select instrument_id, '2030-01-01 00:00:01+00', '1', 1.5, 2, 'buy', now(), 'ws' from market.instruments`);
      await pg.query(`call refresh_continuous_aggregate('market.bars_1m_data', '2030-01-01', '2030-01-02')`);
      await pg.query('reset role');
      await pg.query('set role tickflow_analyst');
      const { rows } = await pg.query<{ close: string }>(`select close::text from market.bars_1m`);
      expect(rows).toEqual([{ close: '1.5' }]);
      await expect(pg.query('select * from market.bars_1m_data')).rejects.toMatchObject({ code: '42501' });
      await expect(pg.query('select * from market.trades')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await pg.close();
    }
  });
});
