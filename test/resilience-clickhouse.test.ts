import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { clickhouseOptions, openClickHouse, type ClickHouse } from '../src/clickhouse/client.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/wait.ts';
import { LONG } from './support/faults/kill-loop.ts';
import { sleep } from './support/faults/processes.ts';

// The ClickHouse sync (a process of its own: chdb allows one per data folder) is killed with -9 at
// random moments while it ships trades in small batches, and run again each time; a last run
// finishes. ClickHouse must then hold every trade once (ids 1..N, none twice) and its bar states,
// which see every inserted block, must count each trade once.
const CHILD = path.join(import.meta.dirname, 'support', 'clickhouse-child.ts');
const TRADES = LONG ? 200_000 : 40_000;
const BATCH_ROWS = 2000;
const KILLS = LONG ? 10 : 4;

let db: TestDatabase;
let dataDir: string;
let ch: ClickHouse | undefined;
const kills: Array<{ shippedBefore: number; pending: boolean }> = [];
let finalOut = '';

function child(databaseUrl: string): { proc: ChildProcess; exit: Promise<{ code: number | null; signal: string | null; out: string }> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ dataDir, databaseUrl, action: 'sync', batchRows: BATCH_ROWS })],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return { proc, exit: new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, out }))) };
}

const shipped = async () => {
  const [w] = await db.sql`select rows_shipped::int as rows, pending_xid is not null as pending
                           from ops.clickhouse_watermarks where stream = 'trades'`;
  return w as { rows: number; pending: boolean };
};

beforeAll(async () => {
  db = await createTestDatabase('chkill');
  dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-chkill-'));
  const [inst] = await db.sql<{ id: number }[]>`
    insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
    values ('binance', 'BTCUSDT', 'BTC/USDT', 'crypto', 'BTC', 'USDT') returning instrument_id as id`;
  // Trade ids 1..N in eight transactions, a day ago (inside the ticks TTL), 10 ms apart.
  const per = TRADES / 8;
  for (let k = 0; k < 8; k++) {
    await db.sql`
      insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
      select ${inst!.id}, date_trunc('day', now()) - interval '1 day' + g * interval '10 ms', g::text, g,
             60000 + (g % 1000) * 0.01, 0.001 * (1 + g % 7), case when g % 2 = 0 then 'buy' else 'sell' end,
             date_trunc('day', now()) - interval '1 day' + g * interval '10 ms' + interval '15 ms', 'ws'
      from generate_series(${k * per + 1}::bigint, ${(k + 1) * per}::bigint) g`;
  }
  for (let k = 0; k < KILLS; k++) {
    const before = (await shipped()).rows;
    const c = child(db.url);
    // Kill once a batch has been confirmed since this run began, and the next one is recorded as
    // pending (about to be inserted, inserted, or its bars being refreshed), a random moment later.
    const progressed = await waitFor(async () => (await shipped()).rows > before || c.proc.exitCode !== null,
      'the sync to ship a batch', 60_000, 10).catch(() => false);
    await waitFor(async () => (await shipped()).pending || c.proc.exitCode !== null, 'a pending batch', 5000, 2).catch(() => false);
    await sleep(Math.random() * 20);
    if (c.proc.exitCode !== null || !progressed) { c.proc.kill('SIGKILL'); await c.exit; break; }
    c.proc.kill('SIGKILL');
    await c.exit;
    kills.push({ shippedBefore: before, pending: (await shipped()).pending });
  }
  const last = child(db.url);
  const done = await last.exit;
  finalOut = done.out;
  if (done.code !== 0) throw new Error(`the last sync run failed (${done.code ?? done.signal}):\n${done.out.slice(-2000)}`);
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  ch = await openClickHouse(config, clickhouseOptions(config));
}, (LONG ? 600 : 180) * 1000);

afterAll(async () => {
  await ch?.close();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function one<T>(query: string): Promise<T> {
  const rs = await ch!.client.query({ query, format: 'JSONEachRow' });
  return (await rs.json<T>())[0]!;
}

describe('the ClickHouse sync killed with -9 mid-batch and run again', () => {
  it(`ships every one of the ${TRADES.toLocaleString('en')} trades exactly once`, async () => {
    expect(kills.length).toBe(KILLS);
    // At least one kill fell inside a batch (recorded as pending, not confirmed).
    expect(kills.filter((k) => k.pending).length).toBeGreaterThan(0);
    const t = await one<{ n: string; ids: string; first: string; last: string }>(
      'SELECT count() AS n, uniqExact(trade_id) AS ids, min(toUInt64(trade_id)) AS first, max(toUInt64(trade_id)) AS last FROM trades');
    expect(t).toEqual({ n: String(TRADES), ids: String(TRADES), first: '1', last: String(TRADES) });
    const w = await shipped();
    expect(w.pending).toBe(false);
    console.log(`clickhouse sync: ${kills.length} kills (${kills.filter((k) => k.pending).length} mid-batch), ${TRADES} trades shipped once; last run ${finalOut.trim().split('\n').at(-1)}`);
  });

  it('counts each trade once in the bar states the materialized views fed (replayed blocks deduplicated)', async () => {
    const [pg] = await db.sql`select count(*)::text as trades, trim_scale(sum(size))::text as volume from market.trades`;
    const s = await one<{ trades: string; volume: string }>(
      'SELECT toString(sum(trades)) AS trades, toString(sum(volume)) AS volume FROM bars_1m_state');
    expect(s).toEqual({ trades: pg!.trades, volume: pg!.volume });
    expect(pg!.trades).toBe(String(TRADES));
  });
});
