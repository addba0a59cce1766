import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { FEED, LONG, runKillLoop, type KillLoopResult } from './support/faults/kill-loop.ts';

// The tickflow process (the real CLI) captures a venue's trade tape with consecutive ids while it
// is killed with -9 every few seconds and started again. The short variant (npm test) runs a
// 20-second tape of 10,000 trades; the long one (TICKFLOW_LONG=1, npm run test:resilience) a
// 60-second tape of 50,000. Expected ids are the tape's, counted here.
const TRADES = LONG ? 50_000 : 10_000;
const TAPE_MS = LONG ? 60_000 : 20_000;
const TIMEOUT = (LONG ? 300 : 180) * 1000;
// A run is killed 1-2.5 s after it landed its first frames, and started again at once; how many
// kills fit in the tape depends on how long a start takes (a few seconds; 10-16 s on these shared
// cores under heavy load). At least MIN_KILLS happen: where starts are slow the tape's end is
// traded more slowly (same trades, a longer tape).
const MIN_KILLS = LONG ? 6 : 3;

interface GapRow { gap_id: string; session_id: string; state: string; from_seq: string | null; to_seq: string | null;
  gap_from: Date; gap_to: Date | null; rows_recovered: number }

async function disconnectGaps(db: TestDatabase): Promise<GapRow[]> {
  return db.sql<GapRow[]>`
    select gap_id::text, session_id::text, state, from_seq::text, to_seq::text, gap_from, gap_to, rows_recovered::int
    from quality.gap_ledger where feed = ${FEED} order by gap_from`;
}

/** The feed's sessions in order, with the receive times of their first and last landed frames. */
async function sessions(db: TestDatabase) {
  return db.sql<{ session_id: string; close_reason: string | null; first_at: Date | null; last_at: Date | null }[]>`
    select s.session_id::text, s.close_reason, min(f.received_at) as first_at, max(f.received_at) as last_at
    from ops.sessions s left join staging.frames f on f.session_id = s.session_id
    where s.feed = ${FEED} group by s.session_id order by s.opened_at`;
}

async function heldIds(db: TestDatabase): Promise<{ seq: bigint; source: string; received: Date }[]> {
  const rows = await db.sql<{ seq: string; source: string; received_at: Date }[]>`
    select seq::text, source, received_at from market.trades order by seq`;
  return rows.map((r) => ({ seq: BigInt(r.seq), source: r.source, received: r.received_at }));
}

describe('tickflow killed with -9 every few seconds while a venue trades', () => {
  let db: TestDatabase;
  let run: KillLoopResult;

  beforeAll(async () => {
    db = await createTestDatabase('killrec');
    await db.sql`select ops.set_setting('gaps.recovery_delay', '300 milliseconds')`;
    run = await runKillLoop(db, {
      trades: TRADES, tapeMs: TAPE_MS, recovery: true, minKills: MIN_KILLS,
      settled: async () => {
        const [r] = await db.sql`select count(*)::int as n from market.trades`;
        const open = await db.sql`select 1 from quality.gaps where feed = ${FEED} and state in ('detected', 'queued', 'recovering')`;
        return r!.n >= TRADES && open.length === 0;
      },
    });
  }, TIMEOUT);
  afterAll(async () => { await db?.drop(); });

  it(`ends with exactly the tape's ${TRADES.toLocaleString('en')} trades, each once`, async () => {
    console.log(`kill loop: ${run.kills} kills in ${Math.round(run.tapeMs)} ms (starts took ${Math.round(Math.min(...run.startups))}..${Math.round(Math.max(...run.startups))} ms), ${run.fake.undelivered.length} trades produced while no run was connected, ${TRADES} trades held`);
    const [t] = await db.sql`select count(*)::int as n, count(distinct seq)::int as ids, min(seq)::text as first, max(seq)::text as last
                             from market.trades`;
    expect({ ...t }).toEqual({ n: TRADES, ids: TRADES, first: String(run.firstId), last: String(run.firstId + BigInt(TRADES) - 1n) });
    expect(run.kills).toBeGreaterThanOrEqual(MIN_KILLS);
    // The kills really lost data: trades were produced while no run was connected.
    expect(run.fake.undelivered.length).toBeGreaterThan(0);
  });

  it('records every killed session as a disconnect gap of the ledger, over its real window, recovered', async () => {
    const ss = await sessions(db);
    const gaps = await disconnectGaps(db);
    // Each run had one session; all but the last were killed.
    expect(ss.length).toBe(run.kills + 1);
    expect(ss.slice(0, -1).map((s) => s.close_reason)).toEqual(ss.slice(0, -1).map(() => 'process ended without closing the session'));
    expect(ss.at(-1)!.close_reason).toBe('shutdown');
    expect(gaps.map((g) => g.session_id)).toEqual(ss.slice(0, -1).map((s) => s.session_id));
    for (const [k, g] of gaps.entries()) {
      expect(g.state).toBe('recovered');
      // From the last frame the killed run landed to the first frame of the next run.
      expect(g.gap_from).toEqual(ss[k]!.last_at);
      expect(g.gap_to).toEqual(ss[k + 1]!.first_at);
    }
    // Nothing else in the ledger: no hole the disconnects did not explain.
    const [other] = await db.sql`select count(*)::int as n from quality.gaps where coalesce(feed, '') <> ${FEED}`;
    expect(other!.n).toBe(0);
  });

  it('brings back by REST exactly the ids of the gaps, and only those', async () => {
    const gaps = await disconnectGaps(db);
    const held = await heldIds(db);
    const inGap = (id: bigint) => gaps.some((g) => id >= BigInt(g.from_seq!) && id <= BigInt(g.to_seq!));
    const rest = held.filter((h) => h.source === 'rest');
    expect(rest.filter((h) => !inGap(h.seq))).toEqual([]);
    expect(held.filter((h) => h.source !== 'rest' && inGap(h.seq)).map((h) => h.seq)).toEqual([]);
    // Each gap's whole id range is held, from REST. (rows_recovered counts the rows its last
    // attempt added: an attempt killed with its run after landing its pages leaves the rows to
    // the next attempt's duplicates count, so the sum can be lower, never higher.)
    for (const g of gaps) {
      const ids = Number(BigInt(g.to_seq!) - BigInt(g.from_seq!) + 1n);
      expect(rest.filter((h) => h.seq >= BigInt(g.from_seq!) && h.seq <= BigInt(g.to_seq!)).length).toBe(ids);
    }
    expect(gaps.reduce((s, g) => s + g.rows_recovered, 0)).toBeLessThanOrEqual(rest.length);
    // Every trade produced while no run was connected is one of them.
    expect(run.fake.undelivered.filter((id) => !inGap(id))).toEqual([]);
  });
});

describe('the same with recovery switched off (tickflow start --only ingest: no worker)', () => {
  let db: TestDatabase;
  let run: KillLoopResult;

  beforeAll(async () => {
    db = await createTestDatabase('killgap');
    run = await runKillLoop(db, {
      trades: TRADES, tapeMs: TAPE_MS, recovery: false, minKills: MIN_KILLS,
      // The last run receives the tape's last trade live.
      settled: async (lastId) => (await db.sql`select 1 from market.trades where seq = ${String(lastId)}::bigint`).length === 1,
    });
  }, TIMEOUT);
  afterAll(async () => { await db?.drop(); });

  it('misses exactly the ids of the recorded gaps: union of the windows = the missing ids', async () => {
    const gaps = await disconnectGaps(db);
    const held = await heldIds(db);
    const heldSet = new Set(held.map((h) => h.seq));
    const missing: bigint[] = [];
    for (let id = run.firstId; id < run.firstId + BigInt(TRADES); id++) if (!heldSet.has(id)) missing.push(id);
    console.log(`kill loop without recovery: ${run.kills} kills (starts took ${Math.round(Math.min(...run.startups))}..${Math.round(Math.max(...run.startups))} ms), ${missing.length} ids missing, ${gaps.length} gaps recorded`);
    expect(run.kills).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(gaps.length).toBe(run.kills);
    expect(gaps.every((g) => g.gap_to !== null && g.state !== 'recovered')).toBe(true);
    // A gap's ids: those between the last trade received at or before its start and the first
    // received at or after its end.
    const windowIds: bigint[] = [];
    for (const g of gaps) {
      const before = held.filter((h) => h.received <= g.gap_from).at(-1)!;
      const after = held.find((h) => h.received >= g.gap_to!)!;
      for (let id = before.seq + 1n; id < after.seq; id++) windowIds.push(id);
    }
    expect(missing.length).toBeGreaterThan(0);
    expect(new Set(windowIds).size).toBe(windowIds.length); // windows do not overlap
    expect(windowIds.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(missing);
    expect(held.length + missing.length).toBe(TRADES);
    expect(new Set(held.map((h) => h.seq)).size).toBe(held.length); // no duplicates
  });
});
