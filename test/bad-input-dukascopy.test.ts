import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processData, type InstrumentType } from 'dukascopy-node';
import { loadConfig } from '../src/config.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { waitFor } from './support/wait.ts';
import { FakeDukascopy, tickPath } from './fakes/dukascopy.ts';

// Bad .bi5 files in the middle of one Dukascopy backfill, served by the local datafeed over a
// real socket, through real graphile-worker jobs into the real Postgres. What must happen to each
// hour file:
//   truncated (the first half of the LZMA file, status 200)   quarantined whole: "file does not decode
//                                                              (N bytes): dukascopy .bi5 <path>: ... truncated or damaged ...",
//                                                              fetched again, the right file lands
//   corrupt (an HTML error page with status 200)               quarantined whole: "file does not decode (48 bytes): dukascopy .bi5 <path>: ...",
//                                                              fetched again, the right file lands
//   503 in the middle of the plan                              retried, the right file lands; the 503 body is quarantined
//                                                              (reason today: "payload is not valid JSON")
//   empty (a 0-byte 200 body for an hour that has ticks)       a valid .bi5 of no records: recorded as an empty file
//                                                              (market.venue_files), no ticks, and, the hour being open,
//                                                              a gap finding of the dukascopy_files detector (not silent)
// Every other hour: every tick, equal to dukascopy-node's decode of the served bytes. Nothing fails the plan.

const HOUR = 3_600_000;
const FROM = Date.UTC(2019, 1, 13, 6); // a Wednesday, open hours
const TO = FROM + 6 * HOUR;
const at = (k: number) => FROM + k * HOUR;
const TRUNCATED = tickPath('EURUSD', at(1));
const CORRUPT = tickPath('EURUSD', at(2));
const UNAVAILABLE = tickPath('EURUSD', at(3));
const EMPTY = tickPath('EURUSD', at(4));

let db: TestDatabase;
let fake: FakeDukascopy;
let workers: HistoryWorkers;

beforeAll(async () => {
  db = await createTestDatabase('badduk');
  await db.sql`select ops.set_rate_limit('dukascopy', 'files', 'requests', interval '1 second', 60, interval '0')`;
  fake = new FakeDukascopy({ synthetic: ['EURUSD'] });
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

/** dukascopy-node's decode of the bytes served for a path: [ms, ask, bid] (an independent decoder). */
function oracle(rel: string): number[][] {
  const buffer = fake.served.get(rel);
  if (!buffer) throw new Error(`the fake never served ${rel} whole`);
  return processData({ instrument: rel.split('/')[0]!.toLowerCase() as InstrumentType, requestedTimeframe: 'tick',
    bufferObjects: [{ url: rel, buffer }], priceType: 'bid', volumes: true, volumeUnits: 'millions', ignoreFlats: false })
    .map((t) => [t[0]!, t[1]!, t[2]!]);
}

async function quotes(hourMs: number): Promise<number[][]> {
  const rows = await db.sql<{ ms: string; bid: string; ask: string }[]>`
    select (extract(epoch from quoted_at) * 1000)::bigint::text as ms, bid::text, ask::text from market.bbo
    where venue = 'dukascopy' and symbol = 'EUR/USD' and quoted_at >= ${new Date(hourMs)} and quoted_at < ${new Date(hourMs + HOUR)}
    order by seq`;
  return rows.map((r) => [+r.ms, +r.ask, +r.bid]);
}

describe('bad .bi5 files in the middle of a Dukascopy backfill', () => {
  it('quarantines truncated and corrupt files with their reasons and fetches them again; an empty file is recorded, never silent', async () => {
    fake.faults.set(TRUNCATED, ['truncated']);
    fake.faults.set(CORRUPT, ['garbage']);
    fake.faults.set(UNAVAILABLE, [503]);
    fake.faults.set(EMPTY, ['empty']);
    const [p] = await db.sql<{ id: string }[]>`
      select ops.plan_backfill('dukascopy', 'EUR/USD', 'ticks', null, ${new Date(FROM).toISOString()}::timestamptz,
                               ${new Date(TO).toISOString()}::timestamptz)::text as id`;
    const progress = await waitFor(async () => {
      const [row] = await db.sql`select state, chunks_failed from ops.backfill_progress where plan_id = ${p!.id}`;
      return row && (row.state === 'done' || row.state === 'failed') ? row : undefined;
    }, 'the plan to finish', 40_000, 100);
    expect({ ...progress }).toEqual({ state: 'done', chunks_failed: 0 });

    // The damaged ones were fetched twice, the empty one once (it is a whole file).
    const requests = (rel: string) => fake.requests.filter((r) => r === rel).length;
    expect([TRUNCATED, CORRUPT, UNAVAILABLE, EMPTY].map(requests)).toEqual([2, 2, 2, 1]);

    // Every hour but the empty one: every tick, exactly as the independent decoder reads the served file.
    for (const k of [0, 1, 2, 3, 5]) {
      const want = oracle(tickPath('EURUSD', at(k)));
      expect(want.length).toBeGreaterThan(0);
      expect(await quotes(at(k)), tickPath('EURUSD', at(k))).toEqual(want);
    }
    expect(await quotes(at(4))).toEqual([]);

    const q = await db.sql<{ request: string; reason: string }[]>`
      select f.request, q.reason from staging.quarantine q join staging.frames f using (frame_id) order by q.quarantine_id`;
    const byPath = (rel: string) => q.filter((r) => r.request.startsWith(`GET /${rel} `));
    expect(byPath(TRUNCATED)).toHaveLength(1);
    expect(byPath(TRUNCATED)[0]!.reason).toMatch(new RegExp(`^file does not decode \\(\\d+ bytes\\): dukascopy \\.bi5 ${TRUNCATED.replace(/\./g, '\\.')}: .*truncated or damaged`));
    expect(byPath(CORRUPT)).toHaveLength(1);
    expect(byPath(CORRUPT)[0]!.reason.startsWith(`file does not decode (48 bytes): dukascopy .bi5 ${CORRUPT}: `)).toBe(true);
    // The 503 answer's body (text, not a file) with its status in the request column. Its reason
    // today is the generic "payload is not valid JSON"; one naming the status ("HTTP 503 ...", as
    // the Binance REST normalizer writes) is what it should say, and is accepted too.
    expect(byPath(UNAVAILABLE).map((r) => r.request)).toEqual([`GET /${UNAVAILABLE} 503`]);
    expect(byPath(UNAVAILABLE)[0]!.reason).toMatch(/^payload is not valid JSON$|HTTP 503/);
    expect(byPath(EMPTY)).toEqual([]);
    expect(q).toHaveLength(3);

    // The empty file: on record, and, in an open hour, a gap finding.
    const [file] = await db.sql<{ records: number }[]>`select records::int from market.venue_files where venue = 'dukascopy' and path = ${EMPTY}`;
    expect(file!.records).toBe(0);
    const findings = await db.sql<{ kind: string; window_from: Date; file: string }[]>`
      select f.kind, f.window_from, f.detail->>'file' as file from quality.findings f join market.instruments i using (instrument_id)
      where i.venue = 'dukascopy' and f.detector = 'dukascopy_files'`;
    expect(findings.map((f) => ({ ...f }))).toEqual([{ kind: 'gap', window_from: new Date(at(4)), file: EMPTY }]);
  });
});
