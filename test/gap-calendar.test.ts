import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';

// Gaps of the ledger against the instrument's calendar: a hole the market was closed for
// throughout lost nothing and ends market_closed; one in open hours is still recovered, and ends
// venue_outage or unrecoverable when nothing fills it. Forex (the asset class's calendar): Sunday
// 17:00 to Friday 17:00 New York, which in January is 22:00 UTC.
const HOUR = 3_600_000;
const FRI_CLOSE = Date.UTC(2025, 0, 3, 22); // Friday 2025-01-03 17:00 New York
const SUN_OPEN = Date.UTC(2025, 0, 5, 22); // Sunday 2025-01-05 17:00 New York
const MON_HOLE = Date.UTC(2025, 0, 6, 10); // Monday 10:00 UTC, an open hour the venue did not serve
const iso = (ms: number) => new Date(ms).toISOString();

let db: TestDatabase;
let instrumentId: number;

beforeAll(async () => {
  db = await createTestDatabase('gapcal');
  const [i] = await db.sql<{ id: number }[]>`
    insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
    values ('testfx', 'EURUSD', 'EUR/USD', 'forex', 'EUR', 'USD') returning instrument_id as id`;
  instrumentId = i!.id;
  // Hourly trade-side candles from Friday 12:00 to Monday 14:00 UTC, none while the market is
  // closed (the venue serves none then) and none for Monday 10:00.
  const buckets: string[] = [];
  for (let t = Date.UTC(2025, 0, 3, 12); t < Date.UTC(2025, 0, 6, 14); t += HOUR) {
    if ((t >= FRI_CLOSE && t < SUN_OPEN) || t === MON_HOLE) continue;
    buckets.push(iso(t));
  }
  await db.sql`
    insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                                complete, source, received_at)
    select ${instrumentId}, '1h', b::timestamptz, 'trade', 1.03, 1.04, 1.02, 1.035, 10, 'base', true, 'rest', now()
    from unnest(${buckets}::text[]) b`;
});
afterAll(async () => { await db?.drop(); });

describe('gaps against the calendar', () => {
  it('a candle hole the market was closed for is recorded market_closed; one in open hours waits for recovery', async () => {
    await db.sql`insert into ops.backfill_chunks (venue, symbol, kind, timeframe, chunk_from, chunk_to, state, finished_at)
                 values ('testfx', 'EUR/USD', 'candles', '1h', '2025-01-03', '2025-01-07', 'done', clock_timestamp())`;
    // The worker's every-minute scan takes the chunk that finished since its last run.
    const [found] = await db.sql<{ n: number }[]>`select quality.scan_recent_candle_gaps() as n`;
    expect(found!.n).toBe(2);
    const gaps = await db.sql`select gap_from, gap_to, state, detected_by, resolved_at is not null as resolved
                              from quality.gaps where stream = 'candles' order by gap_from`;
    expect(gaps.map((g) => ({ ...g }))).toEqual([
      { gap_from: new Date(FRI_CLOSE), gap_to: new Date(SUN_OPEN), state: 'market_closed', detected_by: 'scan', resolved: true },
      { gap_from: new Date(MON_HOLE), gap_to: new Date(MON_HOLE + HOUR), state: 'detected', detected_by: 'scan', resolved: false },
    ]);
    // Run again: nothing new finished, and the holes are on the ledger already.
    const [again] = await db.sql<{ n: number }[]>`select quality.scan_recent_candle_gaps() as n`;
    expect(again!.n).toBe(0);
    expect((await db.sql`select quality.scan_candle_gaps('testfx', 'EUR/USD', '1h', '2025-01-03', '2025-01-07') as n`)[0]!.n).toBe(0);

    // Refetched and still missing: the open hour was the venue's outage.
    const [open] = await db.sql<{ id: string }[]>`select gap_id::text as id from quality.gaps where gap_from = ${iso(MON_HOLE)}`;
    const [fin] = await db.sql`select state, missing::int from quality.finish_candle_gap(${open!.id}, 0)`;
    expect({ ...fin }).toEqual({ state: 'venue_outage', missing: 1 });
  });

  it('finds holes in bid/ask/mid candles too: a bucket with a candle of any price side is present', async () => {
    const [g] = await db.sql<{ id: number }[]>`
      insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
      values ('testfx', 'GBPUSD', 'GBP/USD', 'forex', 'GBP', 'USD') returning instrument_id as id`;
    // OANDA-style candles: bid, ask and mid for every open hour but Monday 10:00; Monday 11:00 has
    // only its mid (a present bucket, not a hole).
    const rows: Array<[string, string]> = [];
    for (let t = Date.UTC(2025, 0, 3, 12); t < Date.UTC(2025, 0, 6, 14); t += HOUR) {
      if ((t >= FRI_CLOSE && t < SUN_OPEN) || t === MON_HOLE) continue;
      for (const side of t === MON_HOLE + HOUR ? ['mid'] : ['bid', 'ask', 'mid']) rows.push([iso(t), side]);
    }
    await db.sql`
      insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                                  complete, source, received_at)
      select ${g!.id}, '1h', r.b::timestamptz, r.side, 1.25, 1.26, 1.24, 1.255, 10, 'tick_count', true, 'rest', now()
      from unnest(${rows.map((r) => r[0])}::text[], ${rows.map((r) => r[1])}::text[]) r(b, side)`;
    const [found] = await db.sql<{ n: number }[]>`select quality.scan_candle_gaps('testfx', 'GBP/USD', '1h', '2025-01-03', '2025-01-07') as n`;
    expect(found!.n).toBe(2);
    const gaps = await db.sql`select gap_from, gap_to, state from quality.gaps where instrument_id = ${g!.id} order by gap_from`;
    expect(gaps.map((x) => ({ ...x }))).toEqual([
      { gap_from: new Date(FRI_CLOSE), gap_to: new Date(SUN_OPEN), state: 'market_closed' },
      { gap_from: new Date(MON_HOLE), gap_to: new Date(MON_HOLE + HOUR), state: 'detected' },
    ]);
    const [open] = await db.sql<{ id: string }[]>`select gap_id::text as id from quality.gaps where instrument_id = ${g!.id} and state = 'detected'`;
    const [fin] = await db.sql`select state, missing::int from quality.finish_candle_gap(${open!.id}, 0)`;
    expect({ ...fin }).toEqual({ state: 'venue_outage', missing: 1 });
  });

  it('a hole that nothing fills ends market_closed when the calendar was closed throughout, else as it was ended', async () => {
    const gap = async (from: number, to: number) => {
      const [g] = await db.sql<{ id: string }[]>`
        insert into quality.gaps (venue, stream, instrument_id, gap_from, gap_to, detected_by, state)
        values ('testfx', 'pricing', ${instrumentId}, ${iso(from)}, ${iso(to)}, 'disconnect', 'recovering') returning gap_id::text as id`;
      return g!.id;
    };
    const saturday = await gap(Date.UTC(2025, 0, 4, 9), Date.UTC(2025, 0, 4, 11));
    const overOpen = await gap(SUN_OPEN - HOUR, SUN_OPEN + HOUR);
    for (const id of [saturday, overOpen]) {
      await db.sql`select quality.end_gap(${id}, 'unrecoverable', 'the venue keeps no history of pricing')`;
    }
    const rows = await db.sql`select gap_id::text as id, state, last_error from quality.gaps where gap_id in (${saturday}, ${overOpen})
                              order by gap_from`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { id: saturday, state: 'market_closed',
        last_error: 'the market was closed throughout (calendar forex); the venue keeps no history of pricing' },
      { id: overOpen, state: 'unrecoverable', last_error: 'the venue keeps no history of pricing' },
    ]);
  });
});
