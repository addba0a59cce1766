import { setTimeout as sleep } from 'node:timers/promises';
import { EventName } from '@stoqey/ib';
import type { Config } from '../src/config.ts';
import type { Sql } from '../src/db.ts';
import type { Logger } from '../src/log.ts';
import { receiveTime } from './runtime/clock.ts';
import type { HistoryVenue, PageFetcher } from './runtime/history.ts';
import { RestDeferred, RestRefused, type RestAnswer, type RestPage } from './runtime/rest.ts';
import { TwsClient, TwsRequestError, twsSettings } from './ibkr-tws.ts';

// Interactive Brokers history: reqHistoricalData bars through TWS / IB Gateway (the history
// client id of the feed's tws settings). Each window of a backfill chunk is one request (end =
// the window's end in UTC, duration = its length, formatDate 2: bar times in epoch seconds),
// taken under IBKR's pacing in Postgres (ops.pacing_take: no identical request within 15 s, 6
// per contract per 2 s, 60 per 10 minutes, shared by every worker); a pacing violation (162)
// pauses the venue for everyone (ops.rate_report) and is never retried at once. The answer is
// the HISTORICAL_DATA message (17) taken from the wire (its text fields: date, open, high, low,
// close, volume, WAP, bar count per bar), complete when the library signals the end of the data
// set (its historicalData event with a date starting "finished"; 162 "HMDS query returned no
// data" is an empty window). Pages land as JSON (stream historicalData); SQL reads them.

/** Bar sizes IBKR serves, by timeframe: the request's barSizeSetting and the bar's width. */
const BAR_SIZES: Record<string, { setting: string; ms: number }> = {
  '1s': { setting: '1 secs', ms: 1_000 }, '5s': { setting: '5 secs', ms: 5_000 }, '10s': { setting: '10 secs', ms: 10_000 },
  '15s': { setting: '15 secs', ms: 15_000 }, '30s': { setting: '30 secs', ms: 30_000 }, '1m': { setting: '1 min', ms: 60_000 },
  '2m': { setting: '2 mins', ms: 120_000 }, '3m': { setting: '3 mins', ms: 180_000 }, '5m': { setting: '5 mins', ms: 300_000 },
  '10m': { setting: '10 mins', ms: 600_000 }, '15m': { setting: '15 mins', ms: 900_000 }, '20m': { setting: '20 mins', ms: 1_200_000 },
  '30m': { setting: '30 mins', ms: 1_800_000 }, '1h': { setting: '1 hour', ms: 3_600_000 }, '2h': { setting: '2 hours', ms: 7_200_000 },
  '3h': { setting: '3 hours', ms: 10_800_000 }, '4h': { setting: '4 hours', ms: 14_400_000 }, '8h': { setting: '8 hours', ms: 28_800_000 },
  '1d': { setting: '1 day', ms: 86_400_000 },
};
/** Bars per request: 12 hours of 1-minute bars, an hour of 5-second bars. */
const PAGE_BARS = 720;
const REQUEST_TIMEOUT_MS = 60_000;

const pad = (n: number) => String(n).padStart(2, '0');
/** yyyymmdd-HH:mm:ss, which TWS reads as UTC. */
function twsUtc(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}
/** The shortest duration TWS accepts that covers the window: seconds up to a day, then days, then years. */
function durationOf(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s <= 86_400) return `${s} S`;
  const d = Math.ceil(s / 86_400);
  return d <= 365 ? `${d} D` : `${Math.ceil(d / 365)} Y`;
}

const query = (page: RestPage, k: string): string => page.query.find(([n]) => n === k)?.[1] ?? '';

/**
 * One history connection per Gateway and client id in a process, shared by the jobs running in
 * it (TWS refuses a second connection with a client id in use: error 326). A connection that
 * closed is replaced at the next request.
 */
const connections = new Map<string, { client: TwsClient; ready: Promise<TwsClient>; users: number }>();

function acquire(settings: { host: string; port: number; clientId: number }): Promise<TwsClient> {
  const key = `${settings.host}:${settings.port}:${settings.clientId}`;
  let e = connections.get(key);
  if (e && e.client.ready && !e.client.alive) {
    connections.delete(key);
    e = undefined;
  }
  if (!e) {
    const client = new TwsClient(settings);
    const entry = { client, ready: client.connect().then(() => client), users: 0 };
    entry.ready.catch(() => { if (connections.get(key) === entry) connections.delete(key); });
    connections.set(key, entry);
    e = entry;
  }
  e.users++;
  return e.ready;
}

function release(client: TwsClient): void {
  const key = `${client.settings.host}:${client.settings.port}:${client.settings.clientId}`;
  const e = connections.get(key);
  if (!e || e.client !== client) { client.close(); return; }
  if (--e.users > 0) return;
  connections.delete(key);
  client.close();
}

/** What the fetcher needs of the job that opens it. */
export interface IbFetcherEnv { sql: Sql; config: Config; log: Logger; maxInlineWaitMs: number }

/**
 * Fetches history pages over a TWS connection of its own (opened at the first page, closed with
 * the job). Returns answers shaped like REST answers: status 200 with the page, or the refusal.
 */
class TwsHistoryFetcher implements PageFetcher {
  requests = 0;
  private held: Promise<TwsClient> | undefined;

  constructor(private readonly env: IbFetcherEnv) {}

  /** The shared connection, taken at the first request; one that closed is given back and replaced. */
  private async connect(): Promise<TwsClient> {
    if (this.held) {
      const c = await this.held.catch(() => undefined);
      if (c?.alive) return c;
      if (c) release(c);
      this.held = undefined;
    }
    const t = twsSettings(this.env.config.feeds.find((f) => f.venue === 'ib'));
    this.held = acquire({ host: t.host, port: t.port, clientId: t.historyClientId });
    return this.held;
  }

  async get(page: RestPage, signal: AbortSignal, onBad: (answer: RestAnswer, why: string) => void): Promise<RestAnswer> {
    const client = await this.connect();
    const symbol = query(page, 'symbol');
    const timeframe = query(page, 'timeframe');
    const bar = BAR_SIZES[timeframe];
    if (!bar) throw new RestRefused(`ib: no ${timeframe} bars (it has ${Object.keys(BAR_SIZES).join(', ')})`);
    let q;
    try {
      q = await client.qualify(symbol);
    } catch (err) {
      throw new RestRefused(`ib: contract ${symbol} could not be qualified: ${(err as Error).message}`);
    }
    const what = q.secType === 'CASH' ? 'MIDPOINT' : 'TRADES';
    const endMs = Math.min(Number(query(page, 'to')), Date.now());
    const end = twsUtc(endMs);
    const duration = durationOf(endMs - Number(query(page, 'from')));
    const identity = `${q.conId}|${end}|${duration}|${bar.setting}|${what}`;
    const request = `reqHistoricalData ${symbol} conId=${q.conId} end=${end} duration=${duration} bar=${bar.setting} what=${what}`;
    for (let attempt = 0; ; attempt++) {
      for (;;) {
        signal.throwIfAborted();
        const [row] = await this.env.sql<{ wait: number }[]>`select ops.pacing_take('ib', ${q.conId}, ${identity}) as wait`;
        const wait = row?.wait ?? 0;
        if (wait === 0) break;
        if (wait > this.env.maxInlineWaitMs) throw new RestDeferred(new Date(Date.now() + wait), wait);
        await sleep(wait, undefined, { signal });
      }
      this.requests++;
      const reqId = client.reqId();
      let fields: string[];
      try {
        fields = await this.ask(client, reqId, q.contract, end, duration, bar.setting, what, signal);
      } catch (err) {
        if (!(err instanceof TwsRequestError)) throw err;
        const body = JSON.stringify({ conId: q.conId, symbol, error: err.message, code: String(err.code) });
        const answer: RestAnswer = { page, status: err.code, body, receivedAt: receiveTime(), request: `${request} error ${err.code}` };
        if (err.code === 162 && /no data/i.test(err.message)) {
          fields = ['17', String(reqId), '', '', '0']; // an empty window (a closed market): a page without bars
        } else if (err.code === 162 && /pacing/i.test(err.message)) {
          // Everyone waits (the pause is in Postgres); the request goes again after it.
          // (Another client of the account spent the budget.) The pause is the longest per-request or
          // per-contract window: 15 s at IBKR.
          onBad(answer, `pacing violation`);
          await this.env.sql`select ops.rate_report('ib', 429, null, null,
            (select extract(epoch from max(window_length)) from ops.pacing_rules where venue = 'ib' and scope <> 'venue'))`;
          this.env.log.warn({ venue: 'ib', request }, 'TWS reported a historical-data pacing violation; pausing the venue');
          continue;
        } else {
          onBad(answer, err.message);
          throw new RestRefused(`ib: ${request}: ${err.message}`);
        }
      }
      const bars = [];
      const count = Number(fields[4]);
      for (let k = 0; k < count; k++) {
        const b = fields.slice(5 + 8 * k, 13 + 8 * k);
        bars.push({ date: b[0], open: b[1], high: b[2], low: b[3], close: b[4], volume: b[5], wap: b[6], count: b[7] });
      }
      const body = JSON.stringify({ conId: q.conId, symbol, secType: q.secType, what, timeframe, barSize: bar.setting,
        formatDate: '2', serverVersion: String(client.ib.serverVersion), reqId: String(reqId), start: fields[2], end: fields[3], bars });
      return { page, status: 200, body, receivedAt: receiveTime(), request };
    }
  }

  /**
   * One reqHistoricalData: resolves with the fields of its HISTORICAL_DATA message once the
   * library signals the end of the data set, rejects with TWS's error for the request.
   */
  private ask(client: TwsClient, reqId: number, contract: object, end: string, duration: string, barSize: string,
              what: string, signal: AbortSignal): Promise<string[]> {
    return new Promise((resolve, reject) => {
      if (!client.alive) { reject(new Error(`ib: the TWS connection at ${client.key} is closed`)); return; }
      let wire: string[] | undefined;
      let bars = 0;
      const timer = setTimeout(() => { done(); client.ib.cancelHistoricalData(reqId);
        reject(new Error(`ib: no answer to historical request ${reqId} within ${REQUEST_TIMEOUT_MS} ms`)); }, REQUEST_TIMEOUT_MS);
      const onWire = (f: string[]) => { if (f[0] === '17' && f[1] === String(reqId)) wire = f; };
      // historicalData(reqId, date, open, high, low, close, volume, barCount, WAP, hasGaps): one
      // event per bar, then the end marker, whose date is "finished-<start>-<end>".
      const onBar = (id: number, date: string) => {
        if (id !== reqId) return;
        if (!date.startsWith('finished')) { bars++; return; }
        done();
        if (!wire) { reject(new Error(`ib: historical request ${reqId} ended without its message`)); return; }
        // The wire layout is read by position: it must agree with the library's count of bars.
        if (Number(wire[4]) !== bars || wire.length !== 5 + 8 * bars) {
          reject(new Error(`ib: historical message of request ${reqId} has ${wire[4]} bars in ${wire.length} fields, the library decoded ${bars}`));
          return;
        }
        resolve(wire);
      };
      const onError = (err: Error, code: number, id: number) => {
        if (id !== reqId) return;
        done();
        reject(new TwsRequestError(code, err.message));
      };
      const onClosed = () => { done(); reject(new Error('ib: TWS closed the connection during a historical request')); };
      const onAbort = () => { done(); reject(signal.reason as Error); };
      const off = client.onWire(onWire);
      const done = () => {
        clearTimeout(timer);
        off();
        client.ib.off(EventName.historicalData, onBar);
        client.ib.off(EventName.error, onError);
        client.ib.off(EventName.disconnected, onClosed);
        signal.removeEventListener('abort', onAbort);
      };
      client.ib.on(EventName.historicalData, onBar);
      client.ib.on(EventName.error, onError);
      client.ib.on(EventName.disconnected, onClosed);
      signal.addEventListener('abort', onAbort, { once: true });
      client.ib.reqHistoricalData(reqId, contract, end, duration, barSize as never, what as never, 0, 2, false);
    });
  }

  async close(): Promise<void> {
    const c = await this.held?.catch(() => undefined);
    this.held = undefined;
    if (c) release(c);
  }
}

export const ibkrHistory: HistoryVenue = {
  venue: 'ib',
  defaultBaseUrl: 'tws://127.0.0.1:4001',
  // Pacing, not weight: ops.pacing_rules (sql/venues/ibkr_040_pacing.sql).
  defaultLimits: [],
  classify: (status) => (status === 200 ? 'ok' : 'refused'),
  complete: () => true,
  venueSymbol: (symbol) => symbol,
  timeframes: Object.keys(BAR_SIZES),
  widthMs: (timeframe) => BAR_SIZES[timeframe]?.ms,
  pageSize: PAGE_BARS,
  candlePage: (symbol, timeframe, fromMs, toMs) => ({ stream: 'historicalData', path: 'reqHistoricalData', weight: 1,
    query: [['symbol', symbol], ['timeframe', timeframe], ['from', String(fromMs)], ['to', String(toMs)]] }),
  // Tick history (reqHistoricalTicks) is not fetched: trades and quotes are not recovered from IBKR.
  idStreams: {},
  idAt: () => { throw new RestRefused('ib: trades are not fetched from IBKR history (bars only)'); },
  openFetcher: (env) => new TwsHistoryFetcher(env),
};
