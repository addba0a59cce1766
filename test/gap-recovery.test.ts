import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { startHistoryWorkers, type HistoryWorkers } from './support/history.ts';
import { binanceFeed, startBinance } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';
import { FakeBinanceHistory, fmt8, type TapeTrade } from './fakes/binance-history.ts';

// A live Binance feed (trade + bookTicker, two instruments) over real sockets to the fake venue,
// whose trade tape is also its REST history. The venue goes away (connections cut, new ones
// refused); its tape keeps trading, at the volume of a 60-second outage at 50 trades a second
// (3,000 trades per instrument) within a 2-second outage, so the test stays fast while the
// recorded window is the real one. Expected ids and values are the tape's.
const OUTAGE_MS = 2000;
const MISSED_PER_INSTRUMENT = 3000;

let db: TestDatabase;
let fake: FakeBinanceHistory;
let workers: HistoryWorkers;
let feed: ReturnType<typeof startBinance>;
const outageIds = new Map<string, { from: bigint; to: bigint }>();

beforeAll(async () => {
  db = await createTestDatabase('gaps');
  await db.sql`select ops.set_setting('gaps.recovery_delay', '300 milliseconds')`;
  fake = new FakeBinanceHistory({ symbols: ['BTCUSDT', 'ETHUSDT'], tradesPerSecond: 50,
    outageTradesPerSecond: MISSED_PER_INSTRUMENT / (OUTAGE_MS / 1000) });
  const urls = await fake.start();
  workers = await startHistoryWorkers(db.url, fake.restUrl, { concurrency: 4 });
  feed = startBinance(db.url, binanceFeed(urls.ws, urls.rest, { channels: ['trade', 'bookTicker'], instruments: ['BTC/USDT', 'ETH/USDT'] }),
    { backoffBaseMs: 50, backoffCapMs: 200, circuitAfter: 1000 }); // refused reconnects must not open the circuit here
  fake.startTape();
  await waitFor(async () => {
    const [r] = await db.sql`select count(*)::int as n from market.trades`;
    return r!.n >= 200;
  }, 'live trades of both instruments');
  const before = new Map([...fake.tapes].map(([s, t]) => [s, t.nextId]));
  fake.outage(OUTAGE_MS);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  for (const [s, t] of fake.tapes) outageIds.set(s, { from: before.get(s)!, to: t.nextId - 1n });
  // Back online: once trades flow again on the new connection, the venue goes quiet, so the
  // bars the recovery rebuilds can be compared with every trade held (none arrives after).
  await waitFor(async () => {
    const [r] = await db.sql`select count(*)::int as n from market.trades t
                             where t.received_at > (select max(gap_to) from quality.gaps where detected_by = 'disconnect')`;
    return r!.n >= 40;
  }, 'live trades after the reconnect');
  fake.stopTape();
  await feed.lander.flush();
  await waitFor(async () => {
    const rows = await db.sql`select state from quality.gaps where detected_by = 'disconnect'`;
    return rows.length === 4 && rows.every((r) => r.state === 'recovered' || r.state === 'unrecoverable');
  }, 'every gap of the disconnect to be resolved', 30_000, 100);
}, 60_000);

afterAll(async () => {
  await feed?.stop();
  await workers?.stop();
  await fake?.stop();
  await db?.drop();
});

function tapeOf(symbol: string): Map<string, TapeTrade> {
  return new Map(fake.tapes.get(symbol.replace('/', ''))!.trades.map((t) => [String(t.id), t]));
}

describe('a disconnect of the live stream: detected, recorded, recovered', () => {
  it('records one gap per instrument and stream, over the real window: last frame before to first frame after', async () => {
    const gaps = await db.sql`
      select g.feed, g.stream, i.symbol, g.session_id, g.gap_from, g.gap_to, g.detected_by
      from quality.gaps g left join market.instruments i using (instrument_id)
      where g.detected_by = 'disconnect' order by i.symbol, g.stream`;
    expect(gaps.map((g) => `${g.feed} ${g.symbol} ${g.stream}`)).toEqual([
      'binance-test BTC/USDT bookTicker', 'binance-test BTC/USDT trade', 'binance-test ETH/USDT bookTicker', 'binance-test ETH/USDT trade']);
    const [w] = await db.sql`
      select (select max(received_at) from staging.frames where session_id = ${gaps[0]!.session_id}) as last_before,
             (select min(f.received_at) from staging.frames f join ops.sessions s using (session_id)
              where s.opened_at > ${gaps[0]!.gap_from}) as first_after`;
    for (const g of gaps) {
      expect(g.gap_from).toEqual(w!.last_before);
      expect(g.gap_to).toEqual(w!.first_after);
    }
    // The venue really was unreachable for the outage: reconnects were refused meanwhile.
    expect(fake.refused).toBeGreaterThan(0);
    expect(w!.first_after.getTime() - w!.last_before.getTime()).toBeGreaterThanOrEqual(OUTAGE_MS - 100);
  });

  it('brings back exactly the missing trade ids: none missing, each as the venue traded it', async () => {
    for (const symbol of ['BTC/USDT', 'ETH/USDT']) {
      const [g] = await db.sql`
        select g.state, g.from_seq::text, g.to_seq::text, g.rows_recovered::int, g.resolved_at is not null as resolved
        from quality.gaps g join market.instruments i using (instrument_id)
        where i.symbol = ${symbol} and g.stream = 'trade' and g.detected_by = 'disconnect'`;
      const out = outageIds.get(symbol.replace('/', ''))!;
      expect(g!.state).toBe('recovered');
      // Everything the tape traded while the venue was down lies in the recovered range.
      expect(BigInt(g!.from_seq)).toBeLessThanOrEqual(out.from);
      expect(BigInt(g!.to_seq)).toBeGreaterThanOrEqual(out.to);
      // (About 3,000: the tape's clock ticks every 10 ms, so the outage's edges are not exact.)
      expect(Number(BigInt(g!.to_seq) - BigInt(g!.from_seq) + 1n)).toBeGreaterThan(MISSED_PER_INSTRUMENT * 0.95);
      expect(g!.rows_recovered).toBe(Number(BigInt(g!.to_seq) - BigInt(g!.from_seq) + 1n));
      const [rest] = await db.sql`select count(*)::int as n from market.ticks where symbol = ${symbol} and source = 'rest'`;
      expect(rest!.n).toBe(g!.rows_recovered);
      // No id is missing anywhere, and every trade is the tape's own.
      const rows = await db.sql<{ seq: string; price: string; size: string; side: string; t: string }[]>`
        select seq::text, price::text, size::text, side, (extract(epoch from traded_at) * 1000)::bigint::text as t
        from market.ticks where symbol = ${symbol} order by seq`;
      const first = BigInt(rows[0]!.seq);
      expect(rows.every((r, k) => BigInt(r.seq) === first + BigInt(k))).toBe(true);
      const tape = tapeOf(symbol);
      const wrong = rows.filter((r) => {
        const t = tape.get(r.seq)!;
        return r.price !== fmt8(t.price) || r.size !== fmt8(t.qty) || r.side !== (t.buyerMaker ? 'sell' : 'buy') || r.t !== String(t.time);
      });
      expect(wrong).toEqual([]);
    }
  });

  it('ends the streams the venue keeps no history of as unrecoverable, with the reason', async () => {
    const rows = await db.sql`select state, last_error from quality.gaps where stream = 'bookTicker'`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { state: 'unrecoverable', last_error: 'binance keeps no history of bookTicker that its REST API can return' },
      { state: 'unrecoverable', last_error: 'binance keeps no history of bookTicker that its REST API can return' },
    ]);
    const [s] = await db.sql`select open_gaps from ops.feed_status where feed = 'binance-test'`;
    expect(s!.open_gaps).toBe(0);
  });

  it('rebuilds the bars of the recovered window from the complete trades', async () => {
    const [g] = await db.sql`
      select min(t.traded_at) as f, max(t.traded_at) as l from market.ticks t where t.symbol = 'BTC/USDT' and t.source = 'rest'`;
    const bars = await db.sql<{ t: string; open: string; high: string; low: string; close: string; volume: string; trades: number }[]>`
      select (extract(epoch from bucket) * 1000)::bigint::text as t, open::text, high::text, low::text, close::text,
             volume::text, trades::int
      from market.bars('BTC/USDT', '1m', date_trunc('minute', ${g!.f}::timestamptz), ${g!.l}::timestamptz)`;
    expect(bars.length).toBeGreaterThan(0);
    const rows = await db.sql<{ seq: string }[]>`select seq::text from market.ticks where symbol = 'BTC/USDT'`;
    const tape = tapeOf('BTC/USDT');
    const held = rows.map((r) => tape.get(r.seq)!);
    const trim = (s: string) => s.replace(/\.?0+$/, '');
    for (const b of bars) {
      const ts = held.filter((t) => Math.floor(t.time / 60_000) * 60_000 === Number(b.t)).sort((a, c) => a.time - c.time || Number(a.id - c.id));
      const prices = ts.map((t) => t.price);
      expect({ ...b }).toEqual({
        t: b.t, open: trim(fmt8(ts[0]!.price)), close: trim(fmt8(ts.at(-1)!.price)),
        high: trim(fmt8(prices.reduce((a, c) => (c > a ? c : a)))), low: trim(fmt8(prices.reduce((a, c) => (c < a ? c : a)))),
        volume: trim(fmt8(ts.reduce((s, t) => s + t.qty, 0n))), trades: ts.length,
      });
    }
  });

  it('a hole in the ids of a connection that stayed up is found by the scan and recovered', async () => {
    const [last] = await db.sql`select max(seq)::text as id from market.trades where instrument_id = 1`;
    fake.startTape();
    fake.skipLive(25);
    await waitFor(async () => {
      const [r] = await db.sql`select count(*)::int as n from market.trades
                               where instrument_id = 1 and source = 'ws' and seq > ${last!.id}::bigint + 25`;
      return r!.n > 20;
    }, 'live trades after the skipped ids');
    await feed.lander.flush();
    const [found] = await db.sql`select quality.scan_trade_gaps(now() - interval '1 minute', now()) as n`;
    expect(found!.n).toBe(2); // one per instrument
    const gaps = await waitFor(async () => {
      const rows = await db.sql`select detected_by, state, (to_seq - from_seq + 1)::int as ids, rows_recovered::int
                                from quality.gaps where detected_by <> 'disconnect' order by gap_id`;
      return rows.length === 2 && rows.every((r) => r.state === 'recovered') ? rows : undefined;
    }, 'the scanned gaps to be recovered', 20_000, 100);
    expect(gaps!.map((g) => ({ ...g }))).toEqual([
      { detected_by: 'sequence_break', state: 'recovered', ids: 25, rows_recovered: 25 },
      { detected_by: 'sequence_break', state: 'recovered', ids: 25, rows_recovered: 25 },
    ]);
    const [again] = await db.sql`select quality.scan_trade_gaps(now() - interval '1 hour', now()) as n`;
    expect(again!.n).toBe(0);
  });
});
