import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { FakeTws, escapedFields, pipeFields, type FakeContract, type HistoryRequest } from './fakes/tws.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { fixture, fixtureLines } from './support/forex.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';

// IBKR historical bars through the backfill engine against the fake TWS. The bars are the real
// 1-minute TRADES bars of 2021-01-05 that ib_insync serialized (instrument and time zone not
// recorded upstream: served here under the made-up symbol XYZ, their naive times read as UTC),
// framed by the fake as HISTORICAL_DATA (17) with epoch-second dates, each value the text the
// record holds. The fake enforces IBKR's pacing itself (identical request, per contract, per
// 10 minutes) and answers a violation with 162; the identical-request window is 5 s here (15 s
// at IBKR), set the same in Postgres (ops.pacing_rules) and at the fake, to keep the test short.

const IDENTICAL_MS = 5_000;
const DETAILS = escapedFields(fixture('ib/nautilus-tws-wire-contract_details_eurusd.escaped.txt'));
const XYZ: FakeContract = (() => {
  const d = [...DETAILS];
  d[2] = 'XYZ'; d[3] = 'STK'; d[7] = 'SMART'; d[8] = 'USD'; d[9] = 'XYZ'; d[10] = 'NMS'; d[11] = 'NMS'; d[12] = '999001'; d[13] = '0.01';
  return { symbol: 'XYZ', secType: 'STK', currency: 'USD', conId: '999001', details: d };
})();

/** The fixture bars as wire rows: [epoch s, open, high, low, close, volume, wap, barCount], values as the records hold them. */
const BARS = fixtureLines('ib/nautilus-ib_insync-historical-bars-1min-2021-01-05.jsonl').map((l) => {
  const raw = (k: string) => new RegExp(`"${k}":(-?[0-9.]+)`).exec(l)![1]!;
  const date = /"date":"([^"]+)"/.exec(l)![1]!;
  return [String(Date.parse(`${date}Z`) / 1000), raw('open'), raw('high'), raw('low'), raw('close'), raw('volume'), raw('average'), raw('barCount')];
});
/** The historical-data stub (server >= 124 layout): two daily bars, dates yyyymmdd. */
const DAILY_STUB = pipeFields((JSON.parse(fixtureLines('ib/rust-ibapi-test-stub-wire-messages.jsonl')[0]!) as { wire_pipe: string }).wire_pipe);

/** "20210105-12:00:00" (UTC) and "43200 S" / "N D" as the fake reads them. */
function windowOf(req: HistoryRequest): [number, number] {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})$/.exec(req.endDateTime)!;
  const end = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  const [n, unit] = req.duration.split(' ');
  const seconds = Number(n) * (unit === 'S' ? 1 : unit === 'D' ? 86_400 : 365 * 86_400);
  return [end - seconds, end];
}

let db: TestDatabase;
let fake: FakeTws;
let workers: HistoryWorkers;
let dropped = false;

function answer(req: HistoryRequest) {
  if (req.barSize === '1 day') {
    return { start: DAILY_STUB[2]!, end: DAILY_STUB[3]!, bars: [DAILY_STUB.slice(5, 13), DAILY_STUB.slice(13, 21)] };
  }
  const [from, to] = windowOf(req);
  const bars = BARS.filter((b) => Number(b[0]) >= from && Number(b[0]) < to);
  // The first request that has bars loses its connection once (a Gateway restart): the job is
  // retried and asks the identical question again, which pacing holds back for the window.
  if (bars.length > 0 && !dropped) { dropped = true; return 'drop' as const; }
  if (bars.length === 0) return { error: [162, 'Historical Market Data Service error message:HMDS query returned no data: XYZ@SMART Trades'] as [number, string] };
  return { start: String(from), end: String(to), bars };
}

async function plan(timeframe: string, from: string, to: string): Promise<Record<string, unknown>> {
  const [p] = await db.sql<{ id: string }[]>`
    select ops.plan_backfill('ib', 'XYZ', 'candles', ${timeframe}, ${from}::timestamptz, ${to}::timestamptz)::text as id`;
  return (await waitFor(async () => {
    const [row] = await db.sql`select * from ops.backfill_progress where plan_id = ${p!.id}`;
    return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
  }, `plan ${p!.id} to finish`, 50_000, 100))!;
}

beforeAll(async () => {
  db = await createTestDatabase('ibkr_history');
  await db.sql`select ops.set_setting('backfill.max_attempts', '3')`;
  await db.sql`select ops.set_pacing_rule('ib', 'identical_request', 'request', ${`${IDENTICAL_MS} milliseconds`}::interval, 1)`;
  fake = new FakeTws({ contracts: [XYZ], history: answer,
    pacing: { identicalMs: IDENTICAL_MS, perContract: { max: 6, windowMs: 2_000 }, total: { max: 60, windowMs: 600_000 } } });
  const port = await fake.start();
  const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'ib-history', venue: 'ib', enabled: false, channels: ['AllLast'],
    instruments: ['XYZ'], tws: { host: '127.0.0.1', port, clientId: 7, historyClientId: 8 } }] } });
  workers = await startHistoryWorkers(db.url, '', { config, concurrency: 2, requestsPerJob: 4 });
});

afterAll(async () => {
  await workers?.stop();
  await fake?.stop();
  await db?.drop();
});

describe('IBKR historical bars through the backfill engine', () => {
  it('backfills a week of 1-minute bars exactly, under IBKR pacing counted at the fake', async () => {
    const p = await plan('1m', '2021-01-01', '2021-01-08');
    expect(p.state).toBe('done');

    const rows = await db.sql`select (extract(epoch from bucket))::bigint::text as t, open::text, high::text, low::text, close::text,
                                     volume::text, trade_count::text, price_side, volume_kind, complete
                              from market.candles c join market.instruments i using (instrument_id)
                              where i.venue = 'ib' and i.symbol = 'XYZ' and c.timeframe = '1m' order by bucket`;
    expect(rows.map((r) => ({ ...r }))).toEqual(BARS.map((b) => ({ t: b[0], open: b[1], high: b[2], low: b[3], close: b[4], volume: b[5],
      trade_count: b[7], price_side: 'trade', volume_kind: 'base', complete: true })));
    expect(await db.sql`select count(*)::int as n from staging.quarantine`).toEqual([{ n: 0 }]);

    // 7 days in windows of 720 one-minute bars: 14 windows, one asked twice after the dropped connection
    expect(fake.history.every((h) => h.barSize === '1 min' && h.whatToShow === 'TRADES' && h.formatDate === '2' && h.duration === '43200 S')).toBe(true);
    const windows = new Set(fake.history.map((h) => h.endDateTime));
    expect(windows.size).toBe(14);
    expect(fake.history.length).toBeGreaterThanOrEqual(15);
    expect(fake.violations).toEqual([]);

    // The fake's own clock, independently: identical requests at least the window apart, at most 6 per 2 s.
    const same = new Map<string, number[]>();
    for (const h of fake.history) same.set(h.endDateTime, [...(same.get(h.endDateTime) ?? []), h.at]);
    const repeats = [...same.values()].filter((ts) => ts.length > 1);
    expect(repeats.length).toBeGreaterThanOrEqual(1);
    for (const ts of repeats) for (let k = 1; k < ts.length; k++) expect(ts[k]! - ts[k - 1]!).toBeGreaterThanOrEqual(IDENTICAL_MS);
    const at = fake.history.map((h) => h.at).sort((a, b) => a - b);
    for (let k = 6; k < at.length; k++) expect(at[k]! - at[k - 6]!).toBeGreaterThanOrEqual(2_000);
  });

  it('waits out a pacing violation TWS reports (every worker pauses), then asks again', async () => {
    const before = fake.history.length;
    fake.paceNextHistory = true;
    const p = await plan('1m', '2021-01-10T00:00:00Z', '2021-01-10T12:00:00Z');
    expect(p.state).toBe('done');
    const asked = fake.history.slice(before);
    expect(asked.map((h) => h.endDateTime)).toEqual(['20210110-12:00:00', '20210110-12:00:00']);
    expect(asked[1]!.at - asked[0]!.at).toBeGreaterThanOrEqual(IDENTICAL_MS); // the pause: the longest per-request window
    const [s] = await db.sql`select throttled::int from ops.rate_state where venue = 'ib'`;
    expect(s!.throttled).toBe(1);
    const q = await db.sql`select reason from staging.quarantine where venue = 'ib'`;
    expect(q.map((r) => r.reason)).toEqual(['TWS refused the request: TWS error 162: Historical Market Data Service error message:Pacing violation']);
    expect(fake.violations).toEqual([]);
  });

  it('reads the end of a daily data set and its yyyymmdd dates, and a rerun asks nothing again', async () => {
    const before = fake.history.length;
    const p = await plan('1d', '2023-04-13', '2023-04-15');
    expect(p.state).toBe('done');
    const rows = await db.sql`select bucket::date::text as d, open::text, high::text, low::text, close::text, volume::text, trade_count::text
                              from market.candles c join market.instruments i using (instrument_id)
                              where i.symbol = 'XYZ' and c.timeframe = '1d' order by bucket`;
    const bar = (k: number) => DAILY_STUB.slice(5 + 8 * k, 13 + 8 * k);
    expect(rows.map((r) => ({ ...r }))).toEqual([0, 1].map((k) => ({ d: `${bar(k)[0]!.slice(0, 4)}-${bar(k)[0]!.slice(4, 6)}-${bar(k)[0]!.slice(6)}`,
      open: bar(k)[1], high: bar(k)[2], low: bar(k)[3], close: bar(k)[4], volume: bar(k)[5], trade_count: bar(k)[7] })));
    expect(fake.history.length).toBe(before + 1);
    const again = await plan('1d', '2023-04-13', '2023-04-15');
    expect(again.state).toBe('done');
    expect(fake.history.length).toBe(before + 1);
  });
});
