import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processData, type InstrumentType } from 'dukascopy-node';
import { loadConfig } from '../src/config.ts';
import { backfillRequest, historyStatus } from '../src/backfill-cli.ts';
import { isTickflowError } from '../src/errors.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { FakeDukascopy, tickPath } from './fakes/dukascopy.ts';

// Dukascopy history through the backfill engine: real graphile-worker pools, the datafeed served
// by a local HTTP server on 127.0.0.1 (captured .bi5 files verbatim, synthetic hours made from
// them), embedded Postgres. Expected values come from dukascopy-node 1.46.4 (its own pure-JS
// LZMA and record reader) decoding the very bytes the fake served: an independent decoder.

const HOUR = 3_600_000;
const EMPTY_OPEN_WINTER = tickPath('EURUSD', Date.UTC(2019, 1, 5, 10)); // Tuesday 10:00 UTC: open, yet empty
const EMPTY_FRIDAY_SUMMER = tickPath('EURUSD', Date.UTC(2019, 6, 5, 21)); // Friday 21:00 UTC in July: closed (17:00 New York)
const EMPTY_SUNDAY_SUMMER = tickPath('EURUSD', Date.UTC(2019, 6, 7, 21)); // Sunday 21:00 UTC in July: open (17:00 New York)

let db: TestDatabase;
let fake: FakeDukascopy;
let workers: HistoryWorkers;

async function plan(kind: string, timeframe: string | null, from: string, to: string, symbol = 'EUR/USD'): Promise<string> {
  const [p] = await db.sql<{ id: string }[]>`
    select ops.plan_backfill('dukascopy', ${symbol}, ${kind}, ${timeframe}, ${from}::timestamptz, ${to}::timestamptz)::text as id`;
  return p!.id;
}

async function finished(planId: string, timeoutMs = 40_000): Promise<Record<string, any>> {
  return (await waitFor(async () => {
    const [row] = await db.sql`select * from ops.backfill_progress where plan_id = ${planId}`;
    return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
  }, `plan ${planId} to finish`, timeoutMs, 100))!;
}

function hours(fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let t = fromMs; t < toMs; t += HOUR) out.push(t);
  return out;
}

/** dukascopy-node's decode of the bytes served for a path: [ms, ask, bid, askVolume, bidVolume] (volumes in millions). */
function oracleTicks(rel: string): number[][] {
  const buffer = fake.served.get(rel);
  if (!buffer) throw new Error(`the fake never served ${rel}`);
  return processData({ instrument: rel.split('/')[0]!.toLowerCase() as InstrumentType, requestedTimeframe: 'tick',
    bufferObjects: [{ url: rel, buffer }], priceType: 'bid', volumes: true, volumeUnits: 'millions', ignoreFlats: false });
}

/** The quotes of one hour as [ms, ask, bid, askVolume (millions), bidVolume (millions)], in file order. */
async function quotesOf(symbol: string, hourMs: number): Promise<number[][]> {
  const rows = await db.sql<{ ms: string; bid: string; ask: string; bid_size: string; ask_size: string }[]>`
    select (extract(epoch from quoted_at) * 1000)::bigint::text as ms, bid::text, ask::text, bid_size::text, ask_size::text
    from market.bbo where venue = 'dukascopy' and symbol = ${symbol}
      and quoted_at >= ${new Date(hourMs)} and quoted_at < ${new Date(hourMs + HOUR)}
    order by seq`;
  return rows.map((r) => [+r.ms, +r.ask, +r.bid, Math.fround(+r.ask_size / 1e6), Math.fround(+r.bid_size / 1e6)]);
}

const requestsOf = (rel: string) => fake.requests.filter((r) => r === rel).length;

beforeAll(async () => {
  db = await createTestDatabase('dukbf');
  await db.sql`select ops.set_setting('backfill.max_attempts', '2')`;
  // A roomier budget than the venue default (ten a second) keeps the suite quick; the politeness
  // test below sets a tight one.
  await db.sql`select ops.set_rate_limit('dukascopy', 'files', 'requests', interval '1 second', 60, interval '0')`;
  fake = new FakeDukascopy({ synthetic: ['EURUSD'], emptyHours: [EMPTY_OPEN_WINTER, EMPTY_FRIDAY_SUMMER, EMPTY_SUNDAY_SUMMER] });
  await fake.start();
  const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'dukascopy-history', venue: 'dukascopy', enabled: false,
    channels: ['ticks'], instruments: ['EUR/USD'], urls: { rest: fake.baseUrl } }] } });
  workers = await startHistoryWorkers(db.url, fake.baseUrl, { config, concurrency: 2, requestsPerJob: 4 });
});
afterAll(async () => {
  await workers?.stop();
  await fake?.stop();
  await db?.drop();
});

describe('dukascopy backfill through the engine', () => {
  const from = Date.UTC(2019, 1, 4, 0);
  const to = Date.UTC(2019, 1, 4, 10);

  it('lands every tick of ten hour files, equal value for value to the independent decoder', async () => {
    const p = await finished(await plan('ticks', null, new Date(from).toISOString(), new Date(to).toISOString()));
    const paths = hours(from, to).map((t) => tickPath('EURUSD', t));
    // Two of them are captured files (00h, 08h), the others synthetic; each fetched once.
    expect(paths.map(requestsOf)).toEqual(paths.map(() => 1));
    let total = 0;
    for (const t of hours(from, to)) {
      const rel = tickPath('EURUSD', t);
      const expected = oracleTicks(rel);
      const got = await quotesOf('EUR/USD', t);
      expect(got.length, rel).toBe(expected.length);
      expect(got, rel).toEqual(expected);
      total += expected.length;
    }
    expect(total).toBeGreaterThan(30_000);
    expect({ state: p.state, chunks: p.chunks, pages: String(p.pages), rows_received: String(p.rows_received), rows_new: String(p.rows_new) })
      .toEqual({ state: 'done', chunks: 1, pages: '10', rows_received: String(total), rows_new: String(total) });
    const [f] = await db.sql<{ n: number; records: string; complete: boolean }[]>`
      select count(*)::int as n, sum(records)::text as records, bool_and(complete) as complete
      from market.venue_files where venue = 'dukascopy' and stream = 'ticks'`;
    expect(f).toEqual({ n: 10, records: String(total), complete: true });
    const [src] = await db.sql<{ sources: string[] }[]>`select array_agg(distinct source) as sources from market.bbo`;
    expect(src!.sources).toEqual(['file']);
  });

  it('is what tickflow backfill --venue dukascopy --kind ticks asks for; a venue without tick files is refused', () => {
    const args = { venue: 'dukascopy', instrument: 'EUR/USD', kind: 'ticks', from: '2019-02-04', to: '2019-02-04' };
    expect(backfillRequest(args)).toEqual({ venue: 'dukascopy', symbol: 'EUR/USD', kind: 'ticks', timeframe: null,
      from: '2019-02-04T00:00:00.000Z', to: '2019-02-05T00:00:00.000Z' });
    expect(backfillRequest({ ...args, venue: 'dukascopy-json' }).venue).toBe('dukascopy-json');
    let refused: unknown;
    try { backfillRequest({ ...args, venue: 'binance', instrument: 'BTC/USDT' }); } catch (err) { refused = err; }
    expect(isTickflowError(refused, 'BACKFILL_INVALID')).toBe(true);
    expect((refused as Error).message).toBe('backfill: --kind ticks: expected a venue that serves tick files, received binance');
  });

  it('running the same backfill again makes no request', async () => {
    const before = fake.requests.length;
    const p = await finished(await plan('ticks', null, new Date(from).toISOString(), new Date(to).toISOString()));
    expect(p.state).toBe('done');
    expect(fake.requests.length).toBe(before);
  });

  it('lands BID and ASK minute candles from the day files, equal to the independent decoder', async () => {
    const p = await finished(await plan('candles', '1m', '2019-02-04T00:00:00Z', '2019-02-05T00:00:00Z'));
    expect(p.state).toBe('done');
    for (const side of ['BID', 'ASK'] as const) {
      const rel = `EURUSD/2019/01/04/${side}_candles_min_1.bi5`;
      expect(requestsOf(rel), rel).toBe(1);
      const expected = processData({ instrument: 'eurusd', requestedTimeframe: 'm1', bufferObjects: [{ url: rel, buffer: fake.served.get(rel)! }],
        priceType: side === 'BID' ? 'bid' : 'ask', volumes: true, volumeUnits: 'millions', ignoreFlats: false });
      const rows = await db.sql<{ ms: string; open: string; high: string; low: string; close: string; volume: string }[]>`
        select (extract(epoch from bucket) * 1000)::bigint::text as ms, open::text, high::text, low::text, close::text, volume::text
        from market.venue_candles where venue = 'dukascopy' and symbol = 'EUR/USD' and timeframe = '1m' and price_side = ${side.toLowerCase()}
        order by bucket`;
      expect(rows.length, rel).toBe(1440);
      expect(rows.map((r) => [+r.ms, +r.open, +r.high, +r.low, +r.close, Math.fround(+r.volume / 1e6)]), rel).toEqual(expected);
    }
  });

  it('records empty hours; closed ones (New York time, daylight saving included) are no gap, an open one is', async () => {
    // Friday 2019-02-08 20:00 UTC to Sunday 2019-02-10 23:00 UTC: the week's close at 22:00 UTC
    // (17:00 New York, winter) and the open at Sunday 22:00 UTC; 48 closed hours, all empty.
    const winter = await finished(await plan('ticks', null, '2019-02-08T20:00:00Z', '2019-02-10T23:00:00Z'));
    // One open Tuesday hour the venue has no ticks for.
    const tuesday = await finished(await plan('ticks', null, '2019-02-05T09:00:00Z', '2019-02-05T12:00:00Z'));
    // July: the close is at 21:00 UTC on Friday and the open at 21:00 UTC on Sunday (17:00 New York, summer).
    const summer = await finished(await plan('ticks', null, '2019-07-05T20:00:00Z', '2019-07-07T23:00:00Z'));
    expect([winter.state, tuesday.state, summer.state]).toEqual(['done', 'done', 'done']);
    const empty = await db.sql<{ path: string }[]>`
      select path from market.venue_files where venue = 'dukascopy' and records = 0 order by period_from`;
    const closedWinter = hours(Date.UTC(2019, 1, 8, 22), Date.UTC(2019, 1, 10, 22)).map((t) => tickPath('EURUSD', t));
    const closedSummer = hours(Date.UTC(2019, 6, 5, 21), Date.UTC(2019, 6, 7, 22)).map((t) => tickPath('EURUSD', t));
    expect(closedWinter).toHaveLength(48);
    // The fake closes at 22:00 UTC whatever the season, and the venue file of Friday 21:00 in July is empty too.
    expect(empty.map((e) => e.path)).toEqual([EMPTY_OPEN_WINTER, ...closedWinter, ...closedSummer]);
    const findings = await db.sql<{ kind: string; label: string; severity: string; window_from: Date; window_to: Date; detector: string; file: string }[]>`
      select f.kind, f.label, f.severity, f.window_from, f.window_to, f.detector, f.detail->>'file' as file
      from quality.findings f join market.instruments i using (instrument_id)
      where i.venue = 'dukascopy' order by f.window_from`;
    expect(findings).toEqual([
      { kind: 'gap', label: 'venue_outage', severity: 'warning', window_from: new Date(Date.UTC(2019, 1, 5, 10)),
        window_to: new Date(Date.UTC(2019, 1, 5, 11)), detector: 'dukascopy_files', file: EMPTY_OPEN_WINTER },
      { kind: 'gap', label: 'venue_outage', severity: 'warning', window_from: new Date(Date.UTC(2019, 6, 7, 21)),
        window_to: new Date(Date.UTC(2019, 6, 7, 22)), detector: 'dukascopy_files', file: EMPTY_SUNDAY_SUMMER },
    ]);
    expect(EMPTY_FRIDAY_SUMMER).toBe(closedSummer[0]);
    // The calendar-aware gap detector, reading the same hour from the quotes, finds the same hole
    // and blames the venue: the files around it were read whole and the venue's has nothing.
    const gaps = await db.sql<{ label: string; window_from: Date; window_to: Date; evidence: string }[]>`
      select g.label, g.window_from, g.window_to, g.detail->>'evidence' as evidence
      from quality.find_gaps('2019-02-05T09:00:00Z', '2019-02-05T12:00:00Z',
                             array(select instrument_id from market.instruments where venue = 'dukascopy' and symbol = 'EUR/USD')) g`;
    const inPlan = gaps.filter((g) => g.window_from >= new Date(Date.UTC(2019, 1, 5, 9)));
    expect(inPlan).toEqual([{ label: 'venue_outage', window_from: new Date(Date.UTC(2019, 1, 5, 10)),
                              window_to: new Date(Date.UTC(2019, 1, 5, 11)), evidence: 'venue_files' }]);
    // Silence before the plan's first hour (hours nobody fetched) is not the venue's.
    const before = gaps.filter((g) => g.window_to <= new Date(Date.UTC(2019, 1, 5, 9)));
    expect(before.length).toBeGreaterThan(0);
    expect(before.map((g) => g.label)).toEqual(before.map(() => 'our_loss'));
  });

  it('quarantines a truncated or damaged file with its reason, fetches it again and lands the right one', async () => {
    const t = Date.UTC(2019, 1, 6, 8);
    const rel = tickPath('EURUSD', t);
    fake.faults.set(rel, ['truncated', 'garbage']);
    const p = await finished(await plan('ticks', null, new Date(t).toISOString(), new Date(t + HOUR).toISOString()));
    expect(p.state).toBe('done');
    expect(requestsOf(rel)).toBe(3);
    const q = await db.sql<{ reason: string; normalizer: string; request: string; item: number }[]>`
      select q.reason, q.normalizer, f.request, q.item from staging.quarantine q join staging.frames f using (frame_id)
      where f.request like ${`GET /${rel}%`} order by q.quarantine_id`;
    expect(q.map((r) => [r.request, r.item, r.normalizer])).toEqual([
      [`GET /${rel} 200`, -1, 'normalize_dukascopy_ticks_v1'], [`GET /${rel} 200`, -1, 'normalize_dukascopy_ticks_v1']]);
    const why = (bytes: number) => `file does not decode (${bytes} bytes): dukascopy .bi5 ${rel}: `;
    expect(q[0]!.reason.startsWith(why(fake.file(rel)!.length >> 1)), q[0]!.reason).toBe(true);
    expect(q[1]!.reason.startsWith(why(48)), q[1]!.reason).toBe(true);
    expect(q[0]!.reason).toContain('truncated or damaged');
    expect(await quotesOf('EUR/USD', t)).toEqual(oracleTicks(rel));
  });

  it('fails a chunk whose file stays damaged, shows it in status, and lands it once the venue serves it right', async () => {
    const t = Date.UTC(2019, 1, 6, 9);
    const rel = tickPath('EURUSD', t);
    fake.faults.set(rel, Array(6).fill('truncated'));
    const failed = await finished(await plan('ticks', null, new Date(t).toISOString(), new Date(t + HOUR).toISOString()));
    expect(failed.state).toBe('failed');
    expect(failed.errors).toHaveLength(1);
    expect(failed.errors[0]).toMatch(/VENUE_REST: GET \/EURUSD\/2019\/01\/06\/09h_ticks\.bi5: dukascopy \.bi5 .*does not decode.*\(after 3 attempts\)/);
    expect(await historyStatus(db.sql)).toContain(`failed chunk ${failed.errors[0]}`);
    expect(await quotesOf('EUR/USD', t)).toEqual([]);
    expect(fake.faults.get(rel)).toEqual([]);
    const again = await finished(await plan('ticks', null, new Date(t).toISOString(), new Date(t + HOUR).toISOString()));
    expect(again.state).toBe('done');
    expect(requestsOf(rel)).toBe(7);
    expect(await quotesOf('EUR/USD', t)).toEqual(oracleTicks(rel));
  });

  it('resumes an interrupted day: only the hours not landed are fetched again', async () => {
    // Tuesday 2019-02-12: the venue stops answering for two afternoon hours; the chunk fails
    // after its attempts, with the other hours landed. Then the venue is back.
    const day = Date.UTC(2019, 1, 12);
    const all = hours(day, day + 24 * HOUR).map((t) => tickPath('EURUSD', t));
    const down = [all[15]!, all[16]!];
    for (const rel of down) fake.down.add(rel);
    const first = await finished(await plan('ticks', null, new Date(day).toISOString(), new Date(day + 24 * HOUR).toISOString()));
    expect(first.state).toBe('failed');
    const landed = new Set((await db.sql<{ path: string }[]>`
      select path from market.venue_files where period_from >= ${new Date(day)} and period_from < ${new Date(day + 24 * HOUR)}`).map((r) => r.path));
    const missing = all.filter((rel) => !landed.has(rel));
    // Every file of the failed batch that came was landed; only the two hours are missing.
    expect(missing).toEqual(down);
    // Each landed hour was fetched once: the chunk's second attempt asked for the missing ones
    // only (three requests an attempt, two attempts).
    expect(all.map(requestsOf)).toEqual(all.map((rel) => (down.includes(rel) ? 6 : 1)));
    for (const rel of down) fake.down.delete(rel);
    const before = fake.requests.length;
    const resumed = await finished(await plan('ticks', null, new Date(day).toISOString(), new Date(day + 24 * HOUR).toISOString()));
    expect(resumed.state).toBe('done');
    expect([...fake.requests.slice(before)].sort()).toEqual([...missing].sort());
    for (const t of hours(day, day + 24 * HOUR)) expect(await quotesOf('EUR/USD', t)).toEqual(oracleTicks(tickPath('EURUSD', t)));
    const [dup] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from (select quoted_at, seq from market.bbo group by 1, 2 having count(*) > 1) d`;
    expect(dup!.n).toBe(0);
  });

  it('stays within the budget held in Postgres, a few files in flight', async () => {
    // The default edge guard: nothing starts in a window's last 250 ms, so it cannot arrive in the next one.
    await db.sql`select ops.set_rate_limit('dukascopy', 'files', 'requests', interval '1 second', 8)`;
    const day = Date.UTC(2019, 1, 13);
    const start = fake.times.length;
    fake.maxInFlight = 0;
    const p = await finished(await plan('ticks', null, new Date(day).toISOString(), new Date(day + 24 * HOUR).toISOString()));
    expect(p.state).toBe('done');
    const times = fake.times.slice(start);
    expect(times).toHaveLength(24);
    const perSecond = new Map<number, number>();
    for (const ms of times) perSecond.set(Math.floor(ms / 1000), (perSecond.get(Math.floor(ms / 1000)) ?? 0) + 1);
    // The budget counts whole seconds of the database's clock (the same machine's here).
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(8);
    // 24 files at 8 a window take three windows: the first request and the last are more than a
    // whole window apart (the next batch is fetched while one lands, so no landing pause adds to it).
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(1000);
    expect(fake.maxInFlight).toBeLessThanOrEqual(4);
    const [r] = await db.sql<{ requests: string }[]>`select requests::text from ops.rate_status where venue = 'dukascopy'`;
    expect(Number(r!.requests)).toBe(fake.requests.length);
  });
});
