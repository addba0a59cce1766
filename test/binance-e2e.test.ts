import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinance } from './fakes/binance.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { decimalKey, expectedBook, loadSpotCapture } from './support/binance-capture.ts';
import { binanceFeed, startBinance } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// Real frames captured from Binance spot (btcusdt trade, bookTicker, depth@100ms) replayed by a
// local fake venue; expectations are computed here from the capture, not from tickflow.
const { frames, snapshot } = loadSpotCapture();
const parsed = frames.map((f) => JSON.parse(f.text) as { stream: string; data: Record<string, unknown> });
const trades = parsed.filter((m) => m.stream === 'btcusdt@trade').map((m) => m.data);
const tickers = parsed.filter((m) => m.stream === 'btcusdt@bookTicker').map((m) => m.data);

let db: TestDatabase;
let fake: FakeBinance;

beforeAll(async () => {
  db = await createTestDatabase('e2e');
  fake = new FakeBinance({ frames: () => frames.map((f) => f.text), intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
  const wsUrl = await fake.start();
  const feed = startBinance(db.url, binanceFeed(wsUrl, fake.restUrl));
  await waitFor(async () => {
    const [r] = await db.sql`select count(*)::int as n from staging.frames where venue = 'binance'`;
    return r!.n === frames.length + 1;
  }, 'every frame and the snapshot to land');
  await feed.stop();
});

afterAll(async () => {
  await fake?.stop();
  await db?.drop();
});

describe('Binance end to end: frames -> staging -> SQL -> market', () => {
  it('lands every frame raw, with a microsecond receive time and its session sequence', async () => {
    const rows = await db.sql`select stream, source, payload, seq, received_at::text as at from staging.frames order by frame_id`;
    expect(rows.filter((r) => r.source === 'rest')).toHaveLength(1);
    const ws = rows.filter((r) => r.source === 'ws');
    expect(new Set(ws.map((r) => r.payload))).toEqual(new Set(frames.map((f) => f.text)));
    const [micro] = await db.sql`select count(*)::int as n from staging.frames
                                 where extract(microseconds from received_at)::bigint % 1000 <> 0`;
    expect(micro!.n).toBeGreaterThan(frames.length / 2); // microseconds kept, not rounded to ms
    // One session: sequence numbers are 1..N in landing order (the snapshot lands before the diffs it precedes).
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, k) => k + 1));
    const quarantined = await db.sql`select reason from staging.quarantine`;
    expect(quarantined).toEqual([]);
  });

  it('normalizes every trade exactly: id, price, size, aggressor side, venue time', async () => {
    const rows = await db.sql`
      select symbol, trade_id, price::text, size::text, side,
             (extract(epoch from traded_at) * 1000)::bigint::text as t_ms
      from market.ticks order by seq`;
    expect(rows).toHaveLength(trades.length);
    const want = trades.map((t) => ({
      symbol: 'BTC/USDT', trade_id: String(t.t), price: t.p, size: t.q,
      side: t.m ? 'sell' : 'buy', t_ms: String(t.T),
    }));
    expect(rows.map((r) => ({ ...r }))).toEqual(want);
  });

  it('keeps every best bid/ask update once, keyed by its update id', async () => {
    const rows = await db.sql`select seq::text, bid::text, bid_size::text, ask::text, ask_size::text, time_source
                              from market.bbo order by seq`;
    const byU = new Map(tickers.map((t) => [String(t.u), t]));
    expect(rows).toHaveLength(byU.size);
    const last = [...byU.values()].sort((a, b) => Number(BigInt(String(a.u)) - BigInt(String(b.u)))).at(-1)!;
    expect(rows.at(-1)).toMatchObject({ seq: String(last.u), bid: last.b, bid_size: last.B, ask: last.a, ask_size: last.A, time_source: 'received' });
  });

  it('builds the order book by the documented snapshot + diff procedure', async () => {
    const want = expectedBook(frames, snapshot);
    const [state] = await db.sql`select last_update_id::text, in_sync, breaks::int from market.book_state`;
    expect(state).toEqual({ last_update_id: want.lastUpdateId.toString(), in_sync: true, breaks: 0 });
    const levels = await db.sql`select side, price::text, size::text, level::int from market.book order by side, level`;
    const bids = [...want.bids].sort((a, b) => (decimalKey(b[0]) > decimalKey(a[0]) ? 1 : -1));
    const asks = [...want.asks].sort((a, b) => (decimalKey(a[0]) > decimalKey(b[0]) ? 1 : -1));
    expect(levels.filter((l) => l.side === 'bid').map((l) => [l.price, l.size])).toEqual(bids);
    expect(levels.filter((l) => l.side === 'ask').map((l) => [l.price, l.size])).toEqual(asks);
    const [snap] = await db.sql`select count(*)::int as n from market.book_snapshots where origin = 'venue'`;
    expect(snap!.n).toBe(1);
  });

  it('builds 1m OHLCV bars from the trades, matching an independent computation', async () => {
    await db.sql`select market.refresh_bars(100000)`;
    const byMinute = new Map<number, typeof trades>();
    for (const t of trades) {
      const m = Math.floor(Number(t.T) / 60_000) * 60_000;
      byMinute.set(m, [...(byMinute.get(m) ?? []), t]);
    }
    const trim = (s: string) => s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
    const sum = (xs: string[]) => xs.reduce((a, x) => a + decimalKey(x), 0n);
    const fmt = (v: bigint) => trim(`${v / 100000000n}.${(v % 100000000n).toString().padStart(8, '0')}`);
    const want = [...byMinute.entries()].sort((a, b) => a[0] - b[0]).map(([m, ts]) => {
      const ordered = [...ts].sort((a, b) => Number(a.T) - Number(b.T) || Number(a.t) - Number(b.t));
      const prices = ordered.map((t) => decimalKey(String(t.p)));
      return {
        bucket: new Date(m).toISOString(),
        open: trim(String(ordered[0]!.p)), close: trim(String(ordered.at(-1)!.p)),
        high: fmt(prices.reduce((a, b) => (b > a ? b : a))), low: fmt(prices.reduce((a, b) => (b < a ? b : a))),
        volume: fmt(sum(ordered.map((t) => String(t.q)))), trades: String(ordered.length),
      };
    });
    const rows = await db.sql`select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as bucket,
                                     open::text, high::text, low::text, close::text, volume::text, trades::text
                              from market.bars('BTC/USDT', '1m', '-infinity', 'infinity')`;
    expect(rows.map((r) => ({ ...r }))).toEqual(want);
  });

  it('records the session lifecycle in ops', async () => {
    const kinds = await db.sql`select kind from ops.session_events order by event_id`;
    expect(kinds.map((k) => k.kind)).toEqual(expect.arrayContaining(['connecting', 'connected', 'subscribed', 'snapshot', 'disconnected']));
    const [s] = await db.sql`select close_reason from ops.sessions`;
    expect(s!.close_reason).toBe('shutdown');
  });
});
