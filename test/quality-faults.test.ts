import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpotCapture } from './support/binance-capture.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import {
  candleFrame, dukascopyFile, dukascopyRecords, landFrames, openFindings, random, tickFrame, type Finding, type Frame,
} from './support/quality-data.ts';
import { decodeBi5Records } from '../ingesters/dukascopy/bi5.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DUKASCOPY } from './support/quality-data.ts';
import type { Sql } from '../src/db.ts';

// Planted faults on real data. The series (all landed through staging and the SQL normalizers,
// except where said):
//   EUR/USD  Dukascopy BID 1-minute candles of Monday 2019-02-04 (real file), replayed on Tuesday
//            to Friday and on Sunday evening from 22:00 (generated extension, inserted into
//            market.candles as the normalizer writes them: the real day's candles, each day
//            continuing from the previous close; minutes after Friday's close are flat fillers,
//            as Dukascopy serves them);
//   EUR/USD  a second source, "oanda" mid candles, generated from the first (+0.7 pips, one
//            point of independent jitter), inserted into market.candles directly;
//   BTC/USD  Dukascopy BID 1-minute candles of Sunday 2023-02-19 (real file, crypto: open);
//   GBP/JPY  three weeks of ticks (generated from the real files: the Sunday 2012-12-02 22h hour
//            thinned to one tick in 30 for Sunday evenings, the Monday 09h hour thinned to one in
//            20 for every other open hour), an illiquid Sunday evening and busy weekdays;
//   BTC/USDT the Binance capture (77 trades, 390 best bid/offers, real frames; receive times
//            moved by the capture's clock offset so that no latency is negative).
// Detectors run on the clean data: nothing but market_closed may be reported. Then the faults are
// planted and the detectors run again over the same windows: every fault must be found with its
// kind and label; precision and recall are printed.

let db: TestDatabase;
const log = (...a: unknown[]) => { if (process.env.QUALITY_TEST_VERBOSE) console.log(...a); };

const RECEIVED = '2026-01-01T00:00:00Z';
const EUR_WINDOW = ['2019-02-03T12:00:00Z', '2019-02-09T12:00:00Z'] as const;
const BTC_WINDOW = ['2023-02-19T00:00:00Z', '2023-02-20T00:00:00Z'] as const;
const GBP_HISTORY = ['2012-11-18T12:00:00Z', '2012-12-02T12:00:00Z'] as const;
const GBP_WINDOW = ['2012-12-02T12:00:00Z', '2012-12-08T12:00:00Z'] as const;

type Records = [number, number, number, number, number, string][];
const pad2 = (n: number) => String(n).padStart(2, '0');
/** Dukascopy datafeed path of a day's minute candles (month 0-based). */
const minuteFile = (d: Date) => `EURUSD/${d.getUTCFullYear()}/${pad2(d.getUTCMonth())}/${pad2(d.getUTCDate())}/BID_candles_min_1.bi5`;

/** The real Monday replayed: day k (0 = Sunday 2019-02-03 ... 5 = Friday 2019-02-08). */
function eurusdWeek(): { rel: string; records: Records }[] {
  const monday = dukascopyRecords('EURUSD/2019/01/04/BID_candles_min_1.bi5').candles as Records;
  const files: { rel: string; records: Records }[] = [];
  // Sunday evening ends where Monday opens.
  let last = monday[0]![1] - monday.at(-1)![2] + monday[0]![1];
  for (let k = 0; k <= 5; k++) {
    const day = new Date(Date.UTC(2019, 1, 3 + k));
    if (k === 1) {
      files.push({ rel: 'EURUSD/2019/01/04/BID_candles_min_1.bi5', records: monday });
      last = monday.at(-1)![2];
      continue;
    }
    const shift = last - monday[0]![1];
    const records: Records = monday.map(([s, o, c, l, h, v]) => {
      const open = k === 0 ? s >= 22 * 3600 : k === 5 ? s < 22 * 3600 : true;
      return open ? [s, o + shift, c + shift, l + shift, h + shift, v] : [s, 0, 0, 0, 0, '0'];
    });
    // Closed minutes are flat fillers at the last price, volume 0.
    let price = last;
    for (const r of records) { if (r[5] === '0') { r[1] = r[2] = r[3] = r[4] = price; } else price = r[2]; }
    last = price;
    files.push({ rel: minuteFile(day), records });
  }
  return files;
}

/** The real Monday through staging; the generated days straight into market.candles, as the normalizer writes them. */
async function landEurusdWeek(sql: Sql): Promise<void> {
  const week = eurusdWeek();
  await landFrames(sql, [dukascopyFile('EURUSD/2019/01/04/BID_candles_min_1.bi5', RECEIVED)]);
  const id = await instrumentId(sql, 'dukascopy', 'EUR/USD');
  for (const f of week.filter((x) => x.rel !== 'EURUSD/2019/01/04/BID_candles_min_1.bi5')) {
    const start = Date.parse(`2019-02-${f.rel.split('/')[3]}T00:00:00Z`);
    const p = (x: number) => (x / 1e5).toFixed(5);
    await sql`
      insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                                  complete, source, received_at)
      select ${id}, '1m', b, 'bid', o, h, l, c, trim_scale(v * 1000000), 'quoted_size', true, 'file', ${RECEIVED}::timestamptz
      from unnest(${f.records.map((r) => new Date(start + r[0] * 1000).toISOString())}::timestamptz[],
                  ${f.records.map((r) => p(r[1]))}::numeric[], ${f.records.map((r) => p(r[4]))}::numeric[],
                  ${f.records.map((r) => p(r[3]))}::numeric[], ${f.records.map((r) => p(r[2]))}::numeric[],
                  ${f.records.map((r) => r[5])}::numeric[]) u(b, o, h, l, c, v)`;
  }
}

async function instrumentId(sql: Sql, venue: string, symbol: string): Promise<number> {
  const [row] = await sql<{ id: number }[]>`select instrument_id as id from market.instruments where venue = ${venue} and symbol = ${symbol}`;
  if (!row) throw new Error(`no instrument ${venue} ${symbol}`);
  return row.id;
}

/** The second EUR/USD source: mid candles derived from the Dukascopy ones (generated). */
async function insertOanda(sql: Sql): Promise<void> {
  await sql`insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
            values ('oanda', 'EUR_USD', 'EUR/USD', 'forex', 'EUR', 'USD') on conflict do nothing`;
  const rand = random(7);
  const rows = await sql<{ bucket: Date; open: string; high: string; low: string; close: string }[]>`
    select c.bucket, c.open::text, c.high::text, c.low::text, c.close::text
    from market.candles c join market.instruments i using (instrument_id)
    where i.venue = 'dukascopy' and i.symbol = 'EUR/USD' and c.timeframe = '1m' and c.volume > 0 order by c.bucket`;
  const points = (x: string) => Math.round(Number(x) * 1e5); // test-side arithmetic on our own generated values
  const text = (p: number) => (p / 1e5).toFixed(5);
  const out = rows.map((r) => {
    const j = () => Math.floor(rand() * 3) - 1;
    const o = points(r.open) + 7 + j(), c = points(r.close) + 7 + j();
    const h = Math.max(points(r.high) + 7 + j(), o, c), l = Math.min(points(r.low) + 7 + j(), o, c);
    return { bucket: r.bucket, open: text(o), high: text(h), low: text(l), close: text(c), volume: String(5 + Math.floor(rand() * 60)) };
  });
  const id = await instrumentId(sql, 'oanda', 'EUR/USD');
  for (let i = 0; i < out.length; i += 2000) {
    const chunk = out.slice(i, i + 2000);
    await sql`
      insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                                  complete, source, received_at)
      select ${id}, '1m', b, 'mid', o, h, l, c, v, 'tick_count', true, 'rest', ${RECEIVED}::timestamptz
      from unnest(${chunk.map((r) => r.bucket.toISOString())}::timestamptz[], ${chunk.map((r) => r.open)}::numeric[],
                  ${chunk.map((r) => r.high)}::numeric[], ${chunk.map((r) => r.low)}::numeric[],
                  ${chunk.map((r) => r.close)}::numeric[], ${chunk.map((r) => r.volume)}::numeric[]) u(b, o, h, l, c, v)`;
  }
}

/** Three weeks of GBP/JPY ticks generated from the two real hours (see the top of the file). */
function gbpjpyFrames(): Frame[] {
  const sunday = decodeBi5Records(readFileSync(path.join(DUKASCOPY, 'GBPJPY/2012/11/02/22h_ticks.bi5')), 'ticks');
  const busy = decodeBi5Records(readFileSync(path.join(DUKASCOPY, 'GBPJPY/2012/11/03/09h_ticks.bi5')), 'ticks');
  const thinSunday = sunday.filter((_, i) => i % 30 === 0);
  const thinBusy = busy.filter((_, i) => i % 20 === 0);
  const frames: Frame[] = [];
  const level = (hour: number) => (hour % 7) * 40; // a little drift between hours, in points
  for (const sundayStart of [Date.UTC(2012, 10, 18), Date.UTC(2012, 10, 25), Date.UTC(2012, 11, 2)]) {
    for (let h = 22; h < 22 + 2 + 24 * 5; h++) {
      const start = new Date(sundayStart + h * 3_600_000);
      if (start.getUTCDay() === 5 && start.getUTCHours() >= 22) break;
      const src = h < 24 ? thinSunday : thinBusy;
      const rel = `GBPJPY/${start.getUTCFullYear()}/${pad2(start.getUTCMonth())}/${pad2(start.getUTCDate())}/${pad2(start.getUTCHours())}h_ticks.bi5`;
      const d = level(h) - (src === thinSunday ? 0 : busy[0]![2] - sunday[0]![2]);
      frames.push(tickFrame(rel, src.map(([ms, ask, bid, av, bv]) => [ms, ask + d, bid + d, av, bv]), RECEIVED));
    }
  }
  return frames;
}

interface BinanceFrames { frames: Frame[]; trades: Frame[]; lastAt: number; firstAt: number }

/** The capture's trade and bookTicker frames; receive time = capture time + the clock offset. */
function binanceFrames(sessionId: string): BinanceFrames {
  const { frames: lines } = loadSpotCapture();
  const kept = lines.filter((l) => l.text.includes('@trade') || l.text.includes('@bookTicker'));
  const lagUs = kept.filter((l) => l.text.includes('@trade'))
    .map((l) => Number(l.ns / 1000n) - Number(/"T":(\d+)/.exec(l.text)![1]) * 1000);
  const offsetUs = -Math.min(...lagUs) + 1000; // the capture clock runs behind the venue's
  const frames = kept.map((l) => ({
    venue: 'binance', stream: l.text.includes('@trade') ? 'trade' : 'bookTicker', sessionId,
    receivedAt: new Date(Number(l.ns / 1000n + BigInt(offsetUs)) / 1000).toISOString(), source: 'ws', request: null, payload: l.text,
  }));
  const times = frames.map((f) => Date.parse(f.receivedAt));
  return { frames, trades: frames.filter((f) => f.stream === 'trade'), firstAt: Math.min(...times), lastAt: Math.max(...times) };
}

interface Windows { binance: readonly [string, string]; received: readonly [string, string] }

/** Bars from trades and quotes, as the bars_refresh job builds them. */
async function refreshBars(sql: Sql): Promise<void> {
  await sql`select market.refresh_bars(100000)`;
  await sql`select market.refresh_quote_bars(100000)`;
}

async function detect(sql: Sql, w: Windows, learn: boolean): Promise<void> {
  const ids = {
    eur: [await instrumentId(sql, 'dukascopy', 'EUR/USD'), await instrumentId(sql, 'oanda', 'EUR/USD')],
    btc: [await instrumentId(sql, 'dukascopy', 'BTC/USD')],
    gbp: [await instrumentId(sql, 'dukascopy', 'GBP/JPY')],
    usdt: [await instrumentId(sql, 'binance', 'BTC/USDT')],
  };
  if (learn) {
    // What is usual, learnt before the faults (the job learns from the four weeks before): the
    // clean week itself for the candle series and the capture, two earlier weeks for GBP/JPY.
    await sql`select quality.refresh_activity_profiles(${EUR_WINDOW[0]}, ${EUR_WINDOW[1]}, ${ids.eur})`;
    await sql`select quality.refresh_activity_profiles(${BTC_WINDOW[0]}, ${BTC_WINDOW[1]}, ${ids.btc})`;
    await sql`select quality.refresh_activity_profiles(${GBP_HISTORY[0]}, ${GBP_HISTORY[1]}, ${ids.gbp})`;
    await sql`select quality.refresh_activity_profiles(${w.binance[0]}, ${w.binance[1]}, ${ids.usdt})`;
  }
  const market = ['gaps', 'spikes', 'bar_anomalies', 'quote_anomalies', 'trade_anomalies', 'timestamps'];
  for (const [win, inst] of [[EUR_WINDOW, ids.eur], [BTC_WINDOW, ids.btc], [GBP_WINDOW, ids.gbp], [w.binance, ids.usdt]] as const) {
    for (const d of market) await sql`select quality.run_detector(${d}, ${win[0]}, ${win[1]}, ${inst as number[]})`;
  }
  for (const d of ['quarantine', 'silent_feeds', 'payload_shapes']) {
    await sql`select quality.run_detector(${d}, ${w.binance[0]}, ${w.binance[1]})`;
    await sql`select quality.run_detector(${d}, ${w.received[0]}, ${w.received[1]})`;
  }
}

interface Plant { name: string; match: (f: Finding) => boolean }
const at = (s: string) => new Date(s).getTime();
const faults = (all: Finding[]) => all.filter((f) => !(f.kind === 'gap' && f.label === 'market_closed'));

let binance: BinanceFrames;
let windows: Windows;
let clean: Finding[];
let planted: Finding[];
const plants: Plant[] = [];

beforeAll(async () => {
  db = await createTestDatabase('qfault');
  const sql = db.sql;
  const session = '00000000-0000-4000-8000-000000000001';
  binance = binanceFrames(session);
  windows = {
    binance: [new Date(binance.firstAt - 300_000).toISOString(), new Date(binance.lastAt + 180_000).toISOString()],
    received: ['2025-12-31T00:00:00Z', '2026-01-02T00:00:00Z'],
  };
  // ---- the clean data ----
  let t = performance.now();
  const lap = (what: string) => { log(what, Math.round(performance.now() - t), 'ms'); t = performance.now(); };
  await landEurusdWeek(sql);
  lap('eurusd');
  await landFrames(sql, [dukascopyFile('BTCUSD/2023/01/19/BID_candles_min_1.bi5', RECEIVED)]);
  lap('btc');
  await landFrames(sql, gbpjpyFrames());
  lap('gbpjpy');
  await insertOanda(sql);
  lap('oanda');
  await sql`insert into ops.sessions (session_id, feed, venue, url, opened_at, connected_at, closed_at, close_reason)
            values (${session}, 'binance-spot', 'binance', 'wss://127.0.0.1/stream', ${new Date(binance.firstAt - 2000).toISOString()},
                    ${new Date(binance.firstAt - 1000).toISOString()}, ${new Date(binance.lastAt + 1000).toISOString()}, 'shutdown')`;
  await landFrames(sql, binance.frames);
  // Every frame's shape is recorded (the job samples one in 100), and a live row is stale from
  // one minute (the default is five; the capture covers seconds).
  await sql`select ops.set_setting('quality.shape_sample_every', '1')`;
  await sql`select ops.set_setting('quality.stale_after_seconds', '60')`;
  await refreshBars(sql);
  lap('binance, bars');
  await detect(sql, windows, true);
  lap('detect');
  clean = await openFindings(sql);
  log('clean', clean.map((f) => [f.kind, f.label, f.symbol, f.window_from.toISOString(), f.window_to.toISOString(), f.detail]));

  // ---- the planted faults ----
  const eur = await instrumentId(sql, 'dukascopy', 'EUR/USD');
  const oanda = await instrumentId(sql, 'oanda', 'EUR/USD');
  const btc = await instrumentId(sql, 'dukascopy', 'BTC/USD');
  const gbp = await instrumentId(sql, 'dukascopy', 'GBP/JPY');
  const usdt = await instrumentId(sql, 'binance', 'BTC/USDT');
  const removeCandles = (ids: number[], from: string, to: string) =>
    sql`delete from market.candles where instrument_id = any (${ids}::integer[]) and timeframe = '1m' and bucket >= ${from} and bucket < ${to}`;
  const gap = (name: string, id: number, from: string, to: string, label: string, evidence?: string): Plant => ({
    name, match: (f) => f.kind === 'gap' && f.instrument_id === id && f.label === label
      && f.window_from.getTime() === at(from) && f.window_to.getTime() === at(to)
      && (evidence === undefined || f.detail.evidence === evidence),
  });

  // Gaps in open hours, each with what explains it.
  await removeCandles([eur], '2019-02-05T08:00:00Z', '2019-02-05T08:20:00Z');
  plants.push(gap('EUR/USD: one source loses 20 minutes, the other has data', eur, '2019-02-05T08:00:00Z', '2019-02-05T08:20:00Z', 'our_loss', 'other_source_active'));
  await removeCandles([eur, oanda], '2019-02-06T12:00:00Z', '2019-02-06T12:30:00Z');
  plants.push(gap('EUR/USD: both sources silent 30 minutes (dukascopy)', eur, '2019-02-06T12:00:00Z', '2019-02-06T12:30:00Z', 'venue_outage', 'all_sources_silent'));
  plants.push(gap('EUR/USD: both sources silent 30 minutes (oanda)', oanda, '2019-02-06T12:00:00Z', '2019-02-06T12:30:00Z', 'venue_outage', 'all_sources_silent'));
  await removeCandles([eur], '2019-02-07T03:00:00Z', '2019-02-07T03:45:00Z');
  await sql`insert into quality.maintenance_windows (venue, window_from, window_to, note)
            values ('dukascopy', '2019-02-07T02:55:00Z', '2019-02-07T03:50:00Z', 'datafeed maintenance (announced)')`;
  plants.push(gap('EUR/USD: silent inside an announced maintenance window', eur, '2019-02-07T03:00:00Z', '2019-02-07T03:45:00Z', 'venue_outage', 'maintenance_window'));
  // Around the close: open minutes before it are lost, the weekend is market closed.
  await removeCandles([eur, oanda], '2019-02-08T21:20:00Z', '2019-02-08T22:00:00Z');
  plants.push(gap("EUR/USD: both silent before Friday's close (dukascopy)", eur, '2019-02-08T21:20:00Z', '2019-02-08T21:55:00Z', 'venue_outage', 'all_sources_silent'));
  plants.push(gap("EUR/USD: both silent before Friday's close (oanda)", oanda, '2019-02-08T21:20:00Z', '2019-02-08T21:55:00Z', 'venue_outage', 'all_sources_silent'));
  // A hole inside the rollover (thin) minutes is not a fault: nothing may be reported for it.
  await removeCandles([eur, oanda], '2019-02-05T21:56:00Z', '2019-02-05T22:04:00Z');
  // Crypto trades on Sunday: a hole is ours, and the ledger says we were disconnected.
  await removeCandles([btc], '2023-02-19T14:00:00Z', '2023-02-19T14:40:00Z');
  await sql`insert into quality.gaps (venue, stream, gap_from, gap_to, detected_by, state)
            values ('dukascopy', 'dukascopy-history', '2023-02-19T13:59:30Z', '2023-02-19T14:40:10Z', 'disconnect', 'detected')`;
  plants.push(gap('BTC/USD: 40 minutes lost on a Sunday while disconnected', btc, '2023-02-19T14:00:00Z', '2023-02-19T14:40:00Z', 'our_loss', 'ledger_detected'));
  // A busy forex hour loses 10 minutes (unexplained).
  // (Dukascopy ticks are kept an hour file to a block: the block keeps the hour's other ticks.)
  await sql`delete from market.quotes where instrument_id = ${gbp} and quoted_at >= '2012-12-03T09:00:00Z' and quoted_at < '2012-12-03T09:10:00Z'`;
  await sql`
    update market.quote_blocks b
    set ticks = k.ticks, ms = k.ms, ask = k.ask, bid = k.bid, ask_volume = k.av, bid_volume = k.bv
    from (select count(*)::int as ticks, array_agg(u.ms order by u.n) as ms, array_agg(u.ask order by u.n) as ask,
                 array_agg(u.bid order by u.n) as bid, array_agg(u.av order by u.n) as av, array_agg(u.bv order by u.n) as bv
          from market.quote_blocks x
          cross join lateral unnest(x.ms, x.ask, x.bid, x.ask_volume, x.bid_volume) with ordinality u(ms, ask, bid, av, bv, n)
          where x.instrument_id = ${gbp} and x.hour_start = '2012-12-03T09:00:00Z' and u.ms >= 600000) k
    where b.instrument_id = ${gbp} and b.hour_start = '2012-12-03T09:00:00Z'`;
  await sql`delete from market.quote_bars_1m_data where instrument_id = ${gbp} and bucket >= '2012-12-03T09:00:00Z' and bucket < '2012-12-03T09:10:00Z'`;
  plants.push(gap('GBP/JPY: 10 minutes lost in a busy hour', gbp, '2012-12-03T09:00:00Z', '2012-12-03T09:10:00Z', 'our_loss', 'unexplained'));

  // Spikes of several sizes in one source (suspect: the other source did not move) or in a
  // single-source series (unconfirmed); a real move in both sources must not be reported.
  const spike = async (id: number, bucket: string, factor: number) => {
    await sql`update market.candles set high = greatest(high, round(close * ${factor}, 5)), low = least(low, round(close * ${factor}, 5)),
                                       close = round(close * ${factor}, 5)
              where instrument_id = ${id} and timeframe = '1m' and bucket = ${bucket}`;
  };
  const spikePlant = (name: string, id: number, bucket: string, label: string, severity?: string): Plant => ({
    name, match: (f) => f.kind === 'spike' && f.instrument_id === id && f.label === label && f.window_from.getTime() === at(bucket)
      && (severity === undefined || f.severity === severity),
  });
  await spike(eur, '2019-02-05T10:00:00Z', 1.003);
  plants.push(spikePlant('EUR/USD +0.3 % in one source', eur, '2019-02-05T10:00:00Z', 'suspect'));
  await spike(eur, '2019-02-06T14:00:00Z', 0.99);
  plants.push(spikePlant('EUR/USD -1 % in one source', eur, '2019-02-06T14:00:00Z', 'suspect', 'error'));
  await spike(oanda, '2019-02-07T16:30:00Z', 1.05);
  plants.push(spikePlant('EUR/USD +5 % in the other source', oanda, '2019-02-07T16:30:00Z', 'suspect', 'critical'));
  await spike(btc, '2023-02-19T06:00:00Z', 1.02);
  plants.push(spikePlant('BTC/USD +2 % (single source)', btc, '2023-02-19T06:00:00Z', 'unconfirmed'));
  await spike(btc, '2023-02-19T18:00:00Z', 0.9);
  plants.push(spikePlant('BTC/USD -10 % (single source)', btc, '2023-02-19T18:00:00Z', 'unconfirmed', 'critical'));
  // The real move: both sources step up 0.4 % from 13:30 on Thursday and stay there.
  await sql`update market.candles set open = round(open * 1.004, 5), high = round(high * 1.004, 5), low = round(low * 1.004, 5),
                                     close = round(close * 1.004, 5)
            where instrument_id = any (${[eur, oanda]}::integer[]) and timeframe = '1m'
              and bucket >= '2019-02-07T13:30:00Z' and bucket < '2019-02-07T13:40:00Z'`;

  // A venue candle whose high is below its close: refused by the normalizer (quarantined).
  const bad = dukascopyRecords('EURUSD/2019/01/04/BID_candles_min_1.bi5').candles.slice(0, 3).map((r) => [...r]);
  bad[1]![4] = Number(bad[1]![2]) - 5; // high 5 points below the close
  await landFrames(sql, [candleFrame('EURUSD/2019/01/11/BID_candles_min_1.bi5', bad, '2026-01-01T06:00:00Z')]);
  plants.push({ name: 'EUR/USD venue candle with high below close (quarantined)', match: (f) => f.kind === 'ohlc_invalid'
    && f.label === 'quarantined' && f.source === 'dukascopy:candles_m1' });

  // A crossed quote in the Binance best bid/offer stream.
  const crossedAt = binance.lastAt + 500;
  await landFrames(sql, [{
    venue: 'binance', stream: 'bookTicker', sessionId: session, receivedAt: new Date(crossedAt).toISOString(), source: 'ws', request: null,
    payload: '{"stream":"btcusdt@bookTicker","data":{"u":50093299999,"s":"BTCUSDT","b":"61840.00000000","B":"1.00000000","a":"61830.00000000","A":"0.50000000"}}',
  }]);
  plants.push({ name: 'BTC/USDT crossed quote', match: (f) => f.kind === 'crossed_quote' && f.label === 'tradeable' && f.instrument_id === usdt });
  // Two minutes later a locked quote (bid = ask), in a frame that also carries a key the stream
  // never had (a change of the payload's shape).
  const lockedAt = binance.lastAt + 120_500;
  await landFrames(sql, [{
    venue: 'binance', stream: 'bookTicker', sessionId: session, receivedAt: new Date(lockedAt).toISOString(), source: 'ws', request: null,
    payload: '{"stream":"btcusdt@bookTicker","data":{"u":50093300001,"s":"BTCUSDT","b":"61835.00000000","B":"1.00000000","a":"61835.00000000","A":"0.50000000","X":"NEW"}}',
  }]);
  plants.push({ name: 'BTC/USDT locked quote', match: (f) => f.kind === 'locked_quote' && f.label === 'tradeable' && f.instrument_id === usdt
    && f.severity === 'warning' && f.window_from.getTime() === lockedAt });
  plants.push({ name: 'Binance best bid/offer payloads gain a key', match: (f) => f.kind === 'payload_shape' && f.label === 'keys'
    && f.source === 'binance:bookTicker' && f.severity === 'warning' && JSON.stringify(f.detail.added) === '["data.X"]' });
  // A candle with a volume a million times the usual, and a derived bar with a NaN close.
  await sql`update market.candles set volume = volume * 1000000 + 1 where instrument_id = ${btc} and bucket = '2023-02-19T20:15:00Z'`;
  plants.push({ name: 'BTC/USD candle volume out of range', match: (f) => f.kind === 'size_out_of_range' && f.label === 'candle'
    && f.instrument_id === btc && f.window_from.getTime() === at('2023-02-19T20:15:00Z') });

  // Trades: one with an absurd size, one stamped 10 s in the future, one 90 s old on arrival, eight delivered 3 s late; one with a zero price (refused), and from then on the
  // venue's timestamps in microseconds (a changed unit: refused as far in the future, and a new
  // payload shape).
  const template = JSON.parse(binance.trades.at(-1)!.payload) as { stream: string; data: Record<string, unknown> };
  let tradeId = Number(template.data.t) + 1000;
  const trade = (eventMs: number, receivedMs: number, over: Record<string, unknown> = {}, raw?: (s: string) => string): Frame => {
    const data = { ...template.data, t: tradeId++, E: eventMs, T: eventMs, ...over };
    const text = JSON.stringify({ stream: template.stream, data });
    return { venue: 'binance', stream: 'trade', sessionId: session, receivedAt: new Date(receivedMs).toISOString(), source: 'ws',
             request: null, payload: raw ? raw(text) : text };
  };
  const t0 = binance.lastAt + 1000;
  const late = Array.from({ length: 8 }, (_, i) => trade(t0 + 100 * i, t0 + 100 * i + 3000));
  await landFrames(sql, [
    trade(t0 - 2000, t0 - 1990, { q: '90000.00000000' }),
    trade(t0 + 10_000, t0),
    trade(t0 - 90_000, t0 + 1),
    ...late,
    trade(t0 + 5, t0 + 10, { p: '0.00000000' }),
    ...Array.from({ length: 5 }, (_, i) => trade(t0 + 3500 + i, t0 + 3510 + i, {},
      (s) => s.replace(/"E":(\d+)/, (_m, v: string) => `"E":${v}123`).replace(/"T":(\d+)/, (_m, v: string) => `"T":${v}456`))),
  ]);
  plants.push({ name: 'BTC/USDT trade size out of range', match: (f) => f.kind === 'size_out_of_range' && f.label === 'trade' && f.instrument_id === usdt });
  plants.push({ name: 'BTC/USDT event time 10 s in the future', match: (f) => f.kind === 'future_timestamp' && f.label === 'event_time' && f.instrument_id === usdt });
  plants.push({ name: 'BTC/USDT event 90 s old on arrival', match: (f) => f.kind === 'stale_timestamp' && f.label === 'event_time' && f.instrument_id === usdt });
  plants.push({ name: 'BTC/USDT latency 3 s above its band', match: (f) => f.kind === 'latency' && f.instrument_id === usdt
    && f.window_from.getTime() === t0 && Number(f.value) >= 3000 });
  plants.push({ name: 'BTC/USDT zero price (quarantined)', match: (f) => f.kind === 'nonpositive_price' && f.label === 'quarantined' && f.source === 'binance:trade' });
  plants.push({ name: 'Binance trade timestamps switch to microseconds', match: (f) => f.kind === 'payload_shape' && f.label === 'time_unit'
    && f.source === 'binance:trade' && JSON.stringify(f.detail.unit_changes) === '{"data.E":{"to":"us","from":"ms"},"data.T":{"to":"us","from":"ms"}}' });
  // The microsecond frames are also refused as far in the future: the same fault, seen twice.
  plants.push({ name: 'Binance microsecond timestamps refused (quarantined)', match: (f) => f.kind === 'future_timestamp' && f.label === 'quarantined' && f.source === 'binance:trade' });

  // A second feed connects, delivers 20 s of frames, then stays connected and silent for 4 minutes.
  const silent = '00000000-0000-4000-8000-000000000002';
  const s0 = binance.firstAt;
  await sql`insert into ops.sessions (session_id, feed, venue, url, opened_at, connected_at, closed_at, close_reason)
            values (${silent}, 'binance-backup', 'binance', 'wss://127.0.0.1/stream', ${new Date(s0 - 1000).toISOString()},
                    ${new Date(s0).toISOString()}, ${new Date(s0 + 260_000).toISOString()}, 'stale')`;
  await landFrames(sql, binance.frames.slice(0, 40).filter((f) => f.stream === 'bookTicker').map((f) => ({ ...f, sessionId: silent })));
  windows = { ...windows, binance: [windows.binance[0], new Date(s0 + 300_000).toISOString()] };
  const lastBackup = Math.max(...binance.frames.slice(0, 40).filter((f) => f.stream === 'bookTicker').map((f) => Date.parse(f.receivedAt)));
  plants.push({ name: 'a connected feed silent for 4 minutes', match: (f) => f.kind === 'silent_feed' && f.source === 'binance-backup'
    && f.window_from.getTime() === lastBackup && f.window_to.getTime() === s0 + 260_000 });

  await refreshBars(sql);
  // A bar whose high is below its close: a derived bar, damaged after it was built.
  const bar = new Date(Math.floor(binance.firstAt / 60_000) * 60_000);
  await sql`update market.bars_1m_data set high = close - 1, low = least(low, close - 2)
            where instrument_id = ${usdt} and bucket = ${bar.toISOString()}`;
  // The bar of the trade that arrived 90 s late (the minute before the capture's).
  const nanBar = new Date(Math.floor((binance.lastAt + 1000 - 90_000) / 60_000) * 60_000);
  await sql`update market.bars_1m_data set close = 'NaN' where instrument_id = ${usdt} and bucket = ${nanBar.toISOString()}`;
  plants.push({ name: 'BTC/USDT bar with a NaN close', match: (f) => f.kind === 'non_finite' && f.label === 'bar'
    && f.instrument_id === usdt && f.window_from.getTime() === nanBar.getTime() });
  plants.push({ name: 'BTC/USDT bar with high below close', match: (f) => f.kind === 'ohlc_invalid' && f.label === 'bar'
    && f.instrument_id === usdt && f.window_from.getTime() === bar.getTime() });
  await detect(sql, windows, false);
  planted = await openFindings(sql);
  log('planted', JSON.stringify(faults(planted).map((f) => [f.kind, f.label, f.severity, f.symbol, f.source, f.window_from.toISOString(),
    f.window_to.toISOString(), f.value, f.baseline, f.detail])));
}, 120_000);
afterAll(async () => { await db?.drop(); });

describe('planted faults on real series', () => {
  it('the clean series report nothing but the hours the market was closed', () => {
    expect(faults(clean).map((f) => `${f.kind}/${f.label} ${f.symbol ?? f.source} ${f.window_from.toISOString()}`)).toEqual([]);
    // Each instrument's closed hours are labelled (the forex weekend, once per source).
    const closed = clean.filter((f) => f.kind === 'gap' && f.label === 'market_closed');
    expect(closed.map((f) => [f.symbol, f.window_from.toISOString(), f.window_to.toISOString()])).toEqual(expect.arrayContaining([
      ['EUR/USD', '2019-02-08T22:00:00.000Z', '2019-02-09T12:00:00.000Z'],
    ]));
    expect(closed.every((f) => f.severity === 'info')).toBe(true);
  });

  it('finds every planted fault with its kind and label, and reports precision and recall', () => {
    const found = faults(planted);
    const missed = plants.filter((p) => !found.some(p.match));
    const unexplained = found.filter((f) => !plants.some((p) => p.match(f)));
    const recall = (plants.length - missed.length) / plants.length;
    const precision = (found.length - unexplained.length) / found.length;
    console.log(`quality planted faults: ${plants.length} planted, ${found.length} findings, recall ${recall.toFixed(3)}, precision ${precision.toFixed(3)}`);
    expect(missed.map((p) => p.name)).toEqual([]);
    expect(unexplained.map((f) => `${f.kind}/${f.label} ${f.symbol ?? f.source} ${f.window_from.toISOString()} ${JSON.stringify(f.detail)}`)).toEqual([]);
  });

  it('a hole in the rollover minutes, a real move in both sources and quiet Sunday evenings are not faults', () => {
    const found = faults(planted);
    expect(found.filter((f) => f.window_from >= new Date('2019-02-05T21:50:00Z') && f.window_from < new Date('2019-02-05T22:10:00Z'))).toEqual([]);
    expect(found.filter((f) => f.kind === 'spike' && f.window_from >= new Date('2019-02-07T13:25:00Z') && f.window_from < new Date('2019-02-07T13:45:00Z'))).toEqual([]);
    expect(found.filter((f) => f.symbol === 'GBP/JPY' && f.window_from.getUTCDay() === 0)).toEqual([]);
  });
});
