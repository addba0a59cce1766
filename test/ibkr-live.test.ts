import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lander } from '../ingesters/runtime/lander.ts';
import { WsFeed } from '../ingesters/runtime/connection.ts';
import { ibkr } from '../ingesters/ibkr.ts';
import { loadConfig } from '../src/config.ts';
import { FakeTws, escapedFields, pipeFields, type FakeContract, type Subscription } from './fakes/tws.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { fixture, fixtureLines } from './support/forex.ts';
import { quietLog } from './support/feeds.ts';
import { waitFor } from './support/wait.ts';

// IBKR live against a local TWS speaking the API socket protocol. Messages replayed: the real
// EUR.USD contract details (10) and tick-by-tick BidAsk (99) captured from TWS; the tick-by-tick
// Last, BidAsk and real-time bar (50) messages of a client library's unit tests (provenance
// unclear: see test/fixtures/ib/SOURCES.md); and six real historical trades (ib_insync
// HistoricalTickLast records) sent in the tick-by-tick AllLast layout, their values as
// serialized. AAPL and MSFT contract details are the EUR.USD message with the stock's fields.

const EURUSD_DETAILS = escapedFields(fixture('ib/nautilus-tws-wire-contract_details_eurusd.escaped.txt'));
const EURUSD_BIDASK = escapedFields(fixture('ib/nautilus-tws-wire-quote_tick_1.escaped.txt'));
const STUBS = fixtureLines('ib/rust-ibapi-test-stub-wire-messages.jsonl').map((l) => pipeFields((JSON.parse(l) as { wire_pipe: string }).wire_pipe));
const LAST_STUB = STUBS.find((f) => f[0] === '99' && f[2] === '1')!;
const BIDASK_STUB = STUBS.find((f) => f[0] === '99' && f[2] === '3')!;
const BAR_STUB = STUBS.find((f) => f[0] === '50')!;
/** The historical trades as AllLast fields: tickType 2, time (epoch s), price and size as serialized, mask, exchange, conditions. */
const TRADE_TICKS = fixtureLines('ib/nautilus-ib_insync-historical-ticks-last-2022-03-02.jsonl').map((l) => [
  '2', String(Date.parse((JSON.parse(l) as { time: string }).time) / 1000), /"price":([0-9.]+)/.exec(l)![1]!,
  /"size":([0-9.]+)/.exec(l)![1]!, '0', (JSON.parse(l) as { exchange: string }).exchange, (JSON.parse(l) as { specialConditions: string }).specialConditions,
]);

const stock = (symbol: string, conId: string): FakeContract => {
  const d = [...EURUSD_DETAILS];
  d[2] = symbol; d[3] = 'STK'; d[7] = 'SMART'; d[8] = 'USD'; d[9] = symbol; d[10] = 'NMS'; d[11] = 'NMS'; d[12] = conId; d[13] = '0.01';
  return { symbol, secType: 'STK', currency: 'USD', conId, details: d };
};
const EURUSD: FakeContract = { symbol: 'EUR', secType: 'CASH', currency: 'USD', conId: EURUSD_DETAILS[12]!, details: EURUSD_DETAILS };
const AAPL = stock('AAPL', '265598');
const MSFT = stock('MSFT', '272093');

let db: TestDatabase;
let fake: FakeTws;
let lander: Lander;
let feed: WsFeed;
/** What each new subscription sends: the initial data, then (after 1101) one more trade. */
let phase: 'initial' | 'resubscribed' = 'initial';

function script(sub: Subscription, tws: FakeTws): void {
  if (phase === 'resubscribed') {
    if (sub.conId === AAPL.conId && sub.what === 'AllLast') tws.data(sub, TRADE_TICKS[0]!);
    return;
  }
  if (sub.conId === EURUSD.conId && sub.what === 'BidAsk') tws.data(sub, EURUSD_BIDASK.slice(2));
  if (sub.conId !== AAPL.conId) return;
  if (sub.what === 'AllLast') { for (const t of TRADE_TICKS) tws.data(sub, t); tws.data(sub, LAST_STUB.slice(2)); }
  if (sub.what === 'BidAsk') tws.data(sub, BIDASK_STUB.slice(2));
  if (sub.what === 'TRADES') tws.data(sub, BAR_STUB.slice(3));
}

const requestsOf = (msgId: number) => fake.sent(msgId).length;
const events = async (kind: string) => db.sql<{ code: number | string | null; symbol: string | null; stream: string | null }[]>`
  select (detail->>'code') as code, detail->>'symbol' as symbol, detail->>'stream' as stream
  from ops.session_events where venue = 'ib' and kind = ${kind} order by event_id`;

beforeAll(async () => {
  db = await createTestDatabase('ibkr');
  fake = new FakeTws({ contracts: [EURUSD, AAPL, MSFT], denied: [MSFT.conId], pacedOnce: [EURUSD.conId], onSubscribe: script });
  const port = await fake.start();
  const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'ib-live', venue: 'ib', channels: ['AllLast', 'BidAsk', 'RealTimeBars'],
    instruments: ['AAPL', 'EUR/USD', 'MSFT'], tws: { host: '127.0.0.1', port, clientId: 5, tickByTickSpacingMs: 300 } }] } });
  lander = new Lander(db.url, { maxBatchFrames: 2000, flushIntervalMs: 10, maxBufferedBytes: 32 << 20 }, quietLog);
  feed = new WsFeed(ibkr, config.feeds[0]!, lander, quietLog, { backoffBaseMs: 50, backoffCapMs: 200 });
  feed.start();
  await waitFor(async () => {
    await lander.flush();
    const [r] = await db.sql`select count(*)::int as n from staging.frames where venue = 'ib'`;
    return r!.n === TRADE_TICKS.length + 1 + 1 + 1 + 1;
  }, 'the initial data of every contract');
});

afterAll(async () => {
  await feed?.stop();
  await lander?.close();
  await fake?.stop();
  await db?.drop();
});

describe('IBKR live through TWS', () => {
  it('connects with the API handshake, qualifies each contract once and subscribes per contract and channel', async () => {
    await waitFor(() => requestsOf(97) === 5 && requestsOf(50) === 4, 'every subscription request');
    expect(fake.connections).toBe(1);
    expect(fake.sent(71)[0]!.slice(0, 3)).toEqual(['71', '2', '5']); // START_API, version 2, our client id
    expect(fake.sent(9).map((f) => f[4])).toEqual(['AAPL', 'EUR', 'MSFT']);
    const tbt = fake.sent(97).map((f) => `${f[2]}:${f[14]}`).sort();
    // no AllLast for cash: forex has no trades at IBKR
    expect(tbt).toEqual([`${AAPL.conId}:AllLast`, `${AAPL.conId}:BidAsk`, `${MSFT.conId}:AllLast`, `${MSFT.conId}:BidAsk`,
      `${EURUSD.conId}:BidAsk`].sort());
    expect(fake.sent(50).map((f) => `${f[3]}:${f[16]}`).sort()).toEqual([`${AAPL.conId}:TRADES`, `${EURUSD.conId}:MIDPOINT`,
      `${EURUSD.conId}:MIDPOINT`, `${MSFT.conId}:TRADES`].sort());
  });

  it('waits out a pacing violation (420) before asking for the same bars again, and records it', async () => {
    const asked = fake.requests.filter((r) => r.fields[0] === '50' && r.fields[3] === EURUSD.conId);
    expect(asked).toHaveLength(2);
    expect(asked[1]!.at - asked[0]!.at).toBeGreaterThanOrEqual(300); // the spacing (15 s at IBKR)
    await lander.flush();
    const [e] = await db.sql`select detail->>'symbol' as symbol, detail->>'stream' as stream, (detail->>'retryInMs')::int as retry
                             from ops.session_events where venue = 'ib' and detail->>'code' = '420'`;
    expect({ ...e }).toEqual({ symbol: 'EUR/USD', stream: 'RealTimeBars', retry: 300 });
  });

  it('lands the wire text of every data message and normalizes trades, quotes and 5-second bars exactly', async () => {
    const sources = await db.sql`select distinct source from staging.frames where venue = 'ib'`;
    expect(sources.map((s) => s.source)).toEqual(['socket']);
    expect(await db.sql`select count(*)::int as n from staging.quarantine`).toEqual([{ n: 0 }]);

    const trades = await db.sql`select (extract(epoch from traded_at))::bigint::text as t, price::text, size::text, side
                                from market.trades t join market.instruments i using (instrument_id)
                                where i.venue = 'ib' and i.symbol = 'AAPL' order by traded_at, trade_id`;
    const want = [...TRADE_TICKS.map((t) => ({ t: t[1], price: t[2], size: t[3], side: null })),
      { t: LAST_STUB[3], price: LAST_STUB[4], size: LAST_STUB[5], side: null }]
      .sort((a, b) => Number(a.t) - Number(b.t));
    expect(trades.map((r) => ({ ...r }))).toEqual(want);

    const quotes = await db.sql`select i.symbol, (extract(epoch from quoted_at))::bigint::text as t, bid::text, ask::text,
                                       bid_size::text, ask_size::text
                                from market.quotes q join market.instruments i using (instrument_id) where i.venue = 'ib' order by i.symbol`;
    expect(quotes.map((r) => ({ ...r }))).toEqual([
      { symbol: 'AAPL', t: BIDASK_STUB[3], bid: BIDASK_STUB[4], ask: BIDASK_STUB[5], bid_size: BIDASK_STUB[6], ask_size: BIDASK_STUB[7] },
      { symbol: 'EUR/USD', t: EURUSD_BIDASK[3], bid: EURUSD_BIDASK[4], ask: EURUSD_BIDASK[5], bid_size: EURUSD_BIDASK[6], ask_size: EURUSD_BIDASK[7] },
    ]);

    const bars = await db.sql`select timeframe, price_side, (extract(epoch from bucket))::bigint::text as t, open::text, high::text,
                                     low::text, close::text, volume::text, volume_kind, trade_count::text
                              from market.candles c join market.instruments i using (instrument_id) where i.venue = 'ib'`;
    expect(bars.map((r) => ({ ...r }))).toEqual([{ timeframe: '5s', price_side: 'trade', t: BAR_STUB[3], open: BAR_STUB[4], high: BAR_STUB[5],
      low: BAR_STUB[6], close: BAR_STUB[7], volume: BAR_STUB[8], volume_kind: 'base', trade_count: BAR_STUB[10] }]);

    const inst = await db.sql`select venue_symbol, symbol, asset_class, base, quote from market.instruments where venue = 'ib' order by symbol`;
    expect(inst.map((r) => ({ ...r }))).toEqual([
      { venue_symbol: AAPL.conId, symbol: 'AAPL', asset_class: 'equity', base: null, quote: null },
      { venue_symbol: EURUSD.conId, symbol: 'EUR/USD', asset_class: 'forex', base: 'EUR', quote: 'USD' },
    ]);
  });

  it('keeps one row per message when its batch is normalized again', async () => {
    const count = async () => (await db.sql`select (select count(*) from market.trades)::int as t, (select count(*) from market.quotes)::int as q,
                                                   (select count(*) from market.candles)::int as c`)[0];
    const before = await count();
    const batches = await db.sql`select distinct batch_id from staging.frames where venue = 'ib' and stream <> 'historicalData'`;
    let duplicates = 0;
    for (const b of batches) {
      const [r] = await db.sql`select staging.normalize_batch(${b.batch_id as string}) as c`;
      const c = r!.c as Record<string, number>;
      duplicates += Number(c.trades_duplicate ?? 0) + Number(c.quotes_duplicate ?? 0);
    }
    expect(await count()).toEqual(before);
    expect(duplicates).toBe(before!.t + before!.q);
  });

  it('reports the market-data permission error (10089) for each MSFT request while the other contracts stream', async () => {
    const errors = (await events('error_frame')).filter((e) => e.code === '10089');
    expect(errors.map((e) => `${e.symbol}:${e.stream}`).sort()).toEqual(['MSFT:AllLast', 'MSFT:BidAsk', 'MSFT:RealTimeBars']);
    const [ms] = await db.sql`select count(*)::int as n from market.instruments where venue = 'ib' and symbol = 'MSFT'`;
    expect(ms!.n).toBe(0);
    expect(fake.openClients).toBe(1);
  });

  it('records 1100 then 1102 (data kept) without resubscribing, as a gap per instrument and channel that ends at 1102', async () => {
    const before = requestsOf(97) + requestsOf(50);
    fake.notice(1100, 'Connectivity between IB and Trader Workstation has been lost.');
    fake.notice(1102, 'Connectivity between IB and Trader Workstation has been restored - data maintained.');
    await waitFor(async () => { await lander.flush(); return (await events('ack')).some((e) => e.code === '1102'); }, 'the 1102 notice');
    await new Promise((r) => setTimeout(r, 500)); // longer than the tick-by-tick spacing: nothing is requested again
    expect(requestsOf(97) + requestsOf(50)).toBe(before);
    const gaps = await db.sql`select stream, detail->>'symbol' as symbol, gap_to is not null as closed, detail->>'restored_by' as by
                              from quality.gaps where venue = 'ib' and detail->>'code' = '1100' order by 2, 1`;
    expect(gaps.map((g) => ({ ...g }))).toEqual(['AAPL', 'EUR/USD', 'MSFT'].flatMap((symbol) =>
      ['AllLast', 'BidAsk', 'RealTimeBars'].map((stream) => ({ stream, symbol, closed: true, by: '1102' }))));
  });

  it('records data-farm notices (2103-2106) and keeps the socket', async () => {
    fake.notice(2103, 'Market data farm connection is broken:usfarm');
    fake.notice(2105, 'HMDS data farm connection is broken:ushmds');
    fake.notice(2104, 'Market data farm connection is OK:usfarm');
    fake.notice(2106, 'HMDS data farm connection is OK:ushmds');
    await waitFor(async () => { await lander.flush(); return (await events('ack')).filter((e) => e.code === '2106').length >= 2; }, 'the farm notices');
    expect((await events('error_frame')).filter((e) => e.code === '2103' || e.code === '2105').map((e) => e.code)).toEqual(['2103', '2105']);
    expect(fake.connections).toBe(1);
    expect(await events('disconnected')).toEqual([]);
    const [open] = await db.sql`select count(*)::int as n from quality.gaps where venue = 'ib' and gap_to is null`;
    expect(open!.n).toBe(0);
  });

  it('after 1100 then 1101 (data lost) requests every live subscription again, spaced, with the cached contracts, and streams on', async () => {
    const tbtBefore = fake.requests.filter((r) => r.fields[0] === '97');
    const barsBefore = requestsOf(50);
    // MSFT's requests were refused (10089): they are asked again only after tws.permissionRetrySeconds (10 minutes)
    phase = 'resubscribed';
    fake.notice(1100, 'Connectivity between IB and Trader Workstation has been lost.');
    fake.notice(1101, 'Connectivity between IB and Trader Workstation has been restored - data lost.');
    await waitFor(() => requestsOf(97) === tbtBefore.length + 3 && requestsOf(50) === barsBefore + 2, 'every subscription requested again', 10_000);
    await new Promise((r) => setTimeout(r, 400));
    expect([requestsOf(97), requestsOf(50)]).toEqual([tbtBefore.length + 3, barsBefore + 2]);
    expect(fake.sent(97).slice(tbtBefore.length).map((f) => `${f[2]}:${f[14]}`).sort())
      .toEqual([`${AAPL.conId}:AllLast`, `${AAPL.conId}:BidAsk`, `${EURUSD.conId}:BidAsk`].sort());
    expect(requestsOf(9)).toBe(3); // contracts are not qualified again
    // one tick-by-tick request per contract and type within the spacing (300 ms here, 15 s at IBKR)
    for (const again of fake.requests.filter((r) => r.fields[0] === '97').slice(tbtBefore.length)) {
      const first = tbtBefore.find((r) => r.fields[2] === again.fields[2] && r.fields[14] === again.fields[14])!;
      expect(again.at - first.at).toBeGreaterThanOrEqual(300);
    }
    await waitFor(async () => {
      await lander.flush();
      const [r] = await db.sql`select count(*)::int as n from market.trades t join market.instruments i using (instrument_id) where i.venue = 'ib'`;
      return r!.n === TRADE_TICKS.length + 2;
    }, 'the trade sent on the new subscription');
    const gaps = await db.sql`select count(*)::int as n, count(*) filter (where detail->>'restored_by' = '1101')::int as by1101
                              from quality.gaps where venue = 'ib' and detail->>'code' = '1100'`;
    expect({ ...gaps[0] }).toEqual({ n: 18, by1101: 9 });
  });

  it('on a dropped socket reconnects, records the disconnect as gaps, and does not qualify the contracts again', async () => {
    fake.dropClients();
    await waitFor(() => fake.connections === 2 && fake.openClients === 1, 'the reconnect');
    await waitFor(async () => { await lander.flush(); return (await events('disconnected')).length === 1; }, 'the disconnect event');
    expect(requestsOf(9)).toBe(3);
    const [s] = await db.sql`select count(*)::int as n from ops.sessions where venue = 'ib'`;
    expect(s!.n).toBe(2);
    const gaps = await db.sql`select distinct stream from quality.gaps where venue = 'ib' and detected_by = 'disconnect' and detail->>'code' is distinct from '1100' order by 1`;
    expect(gaps.map((g) => g.stream)).toEqual(['AllLast', 'BidAsk', 'RealTimeBars']);
  });
});

describe('IBKR live when the account gains a market-data permission', () => {
  it('asks a refused contract again after the permission retry, and it streams without a reconnect', async () => {
    const denied = [MSFT.conId];
    const tws = new FakeTws({ contracts: [MSFT], denied, onSubscribe: (sub, t) => {
      if (sub.what === 'AllLast') t.data(sub, TRADE_TICKS[0]!);
    } });
    const port = await tws.start();
    const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'ib-permission', venue: 'ib', channels: ['AllLast'], instruments: ['MSFT'],
      tws: { host: '127.0.0.1', port, clientId: 11, tickByTickSpacingMs: 0, permissionRetrySeconds: 0.5 } }] } });
    const l = new Lander(db.url, { maxBatchFrames: 100, flushIntervalMs: 10, maxBufferedBytes: 1 << 20 }, quietLog);
    const f = new WsFeed(ibkr, config.feeds[0]!, l, quietLog, { backoffBaseMs: 20, backoffCapMs: 50 });
    const refusals = async () => (await db.sql`
      select (detail->>'retryInMs')::int as retry from ops.session_events
      where feed = 'ib-permission' and kind = 'error_frame' and detail->>'code' = '10089'`).map((r) => r.retry);
    f.start();
    try {
      await waitFor(async () => { await l.flush(); return (await refusals()).length >= 2; }, 'the refusal, asked again');
      expect((await refusals()).slice(0, 2)).toEqual([500, 500]);
      denied.length = 0; // the account now has the subscription
      await waitFor(async () => {
        await l.flush();
        const [r] = await db.sql`select count(*)::int as n from market.trades t join market.instruments i using (instrument_id)
                                 where i.venue = 'ib' and i.symbol = 'MSFT'`;
        return r!.n === 1;
      }, 'the MSFT trade');
      expect(tws.connections).toBe(1);
      expect(tws.sent(9)).toHaveLength(1); // qualified once
    } finally {
      await f.stop();
      await l.close();
      await tws.stop();
    }
  });
});

describe('IBKR live when no TWS listens', () => {
  it('records each refused connection with its reason and keeps retrying with backoff', async () => {
    const closed = new FakeTws({ contracts: [] });
    const port = await closed.start();
    await closed.stop(); // nothing listens on the port any more
    const config = loadConfig({ env: {}, overrides: { feeds: [{ name: 'ib-down', venue: 'ib', channels: ['BidAsk'], instruments: ['EUR/USD'],
      tws: { host: '127.0.0.1', port, clientId: 9 } }] } });
    const l = new Lander(db.url, { maxBatchFrames: 100, flushIntervalMs: 10, maxBufferedBytes: 1 << 20 }, quietLog);
    const f = new WsFeed(ibkr, config.feeds[0]!, l, quietLog, { backoffBaseMs: 20, backoffCapMs: 50 });
    f.start();
    try {
      await waitFor(async () => {
        await l.flush();
        const [r] = await db.sql`select count(*)::int as n from ops.session_events where feed = 'ib-down' and kind = 'disconnected'`;
        return r!.n >= 3;
      }, 'three refused connections');
      const reasons = await db.sql`select distinct detail->>'reason' as reason, (detail->>'hadData')::boolean as had
                                   from ops.session_events where feed = 'ib-down' and kind = 'disconnected'`;
      expect(reasons.map((r) => ({ ...r }))).toEqual([{ reason: `error: TWS at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} (502)`, had: false }]);
      expect(f.reconnects).toBeGreaterThanOrEqual(3);
    } finally {
      await f.stop();
      await l.close();
    }
  });
});
