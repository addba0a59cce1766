import http from 'node:http';
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';

// A local Binance for history and recovery: REST klines, aggTrades, historicalTrades (and recent
// trades) answering like the venue (same JSON shapes and field order, same errors), with the
// venue's request-weight limit (X-MBX-USED-WEIGHT-1M, 429 with Retry-After, then 418 bans), and
// a live trade tape streamed on /stream?streams=<symbol>@trade/<symbol>@bookTicker whose ids the
// REST history serves, so a disconnect can be recovered id for id.
//
// Klines: the real captured page (test/fixtures/binance/nautilus-http_spot_market_klines.json,
// BTCUSDT 1m, 2021-10-22 23:03..23:12 UTC) is served verbatim for its minutes; every other
// minute is generated deterministically from its open time (klineRow), in the same format.

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'binance');
export const CAPTURED_KLINES: unknown[][] = JSON.parse(readFileSync(path.join(FIXTURES, 'nautilus-http_spot_market_klines.json'), 'utf8'));
export const CAPTURED_KLINES_SYMBOL = 'BTCUSDT';

export const WEIGHTS: Record<string, number> = {
  '/api/v3/klines': 2, '/api/v3/aggTrades': 4, '/api/v3/historicalTrades': 25, '/api/v3/trades': 25,
};

const SCALE = 100_000_000n;
export function fmt8(v: bigint): string {
  return `${v / SCALE}.${(v % SCALE).toString().padStart(8, '0')}`;
}

/** A deterministic 64-bit mix of an integer (splitmix64). */
function mix(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  return z ^ (z >> 31n);
}
function mixNum(x: number): number {
  // 32-bit integer hash (Number arithmetic: fast enough for a million klines).
  let h = (x ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const WIDTH_MS: Record<string, number> = { '1s': 1000, '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000 };

function cents(c: number): string {
  return `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}000000`;
}

/** The generated kline of an open time, as the venue's JSON array text. */
export function klineRow(openTime: number, widthMs: number): string {
  const k = Math.floor(openTime / widthMs);
  const h1 = mixNum(k);
  const h2 = mixNum(k ^ 0x5bd1e995);
  const base = 3_000_000 + (k % 4_000_000); // cents: 30,000.00 .. 70,000.00
  const open = base + (h1 % 2000);
  const close = base + (h2 % 2000);
  const high = Math.max(open, close) + (h1 % 500);
  const low = Math.min(open, close) - (h2 % 500);
  const volUnits = 100_000 + (h1 % 90_000_000); // 1e-8 units
  const vol = `${Math.floor(volUnits / 1e8)}.${String(volUnits % 1e8).padStart(8, '0')}`;
  const trades = 100 + (h2 % 2000);
  return `[${openTime},"${cents(open)}","${cents(high)}","${cents(low)}","${cents(close)}","${vol}",${openTime + widthMs - 1},"${Math.floor(volUnits * 0.0005)}.00000000",${trades},"${vol}","0.00000000","0"]`;
}

export interface TapeTrade { id: bigint; price: bigint; qty: bigint; time: number; buyerMaker: boolean; agg: bigint }
interface Agg { a: bigint; f: bigint; l: bigint; price: bigint; qty: bigint; time: number; m: boolean }

/** A venue's trade history for one symbol, produced in real time (ids consecutive). */
export class TradeTape {
  readonly trades: TapeTrade[] = [];
  readonly aggs: Agg[] = [];
  private price: bigint;

  constructor(readonly symbol: string, readonly firstId: bigint, firstPrice: string, readonly firstAggId: bigint) {
    const [i, f = ''] = firstPrice.split('.');
    this.price = BigInt(i!) * SCALE + BigInt(f.padEnd(8, '0').slice(0, 8));
  }

  get nextId(): bigint { return this.firstId + BigInt(this.trades.length); }

  produce(time: number): TapeTrade {
    const id = this.nextId;
    const x = mix(id);
    const step = (x % 3n) - 1n; // -1, 0, +1 cent
    this.price += step * 1_000_000n;
    const qty = ((x >> 8n) % 5000n + 1n) * 1000n; // multiples of 0.00001
    const buyerMaker = ((x >> 40n) & 1n) === 1n;
    const last = this.aggs[this.aggs.length - 1];
    let agg: bigint;
    if (last && last.time === time && last.price === this.price && last.m === buyerMaker) {
      last.l = id; last.qty += qty; agg = last.a;
    } else {
      agg = last ? last.a + 1n : this.firstAggId;
      this.aggs.push({ a: agg, f: id, l: id, price: this.price, qty, time, m: buyerMaker });
    }
    const t: TapeTrade = { id, price: this.price, qty, time, buyerMaker, agg };
    this.trades.push(t);
    return t;
  }

  byId(id: bigint): TapeTrade | undefined {
    const k = id - this.firstId;
    return k >= 0n && k < BigInt(this.trades.length) ? this.trades[Number(k)] : undefined;
  }

  static tradeMessage(symbol: string, t: TapeTrade): string {
    return `{"stream":"${symbol.toLowerCase()}@trade","data":{"e":"trade","E":${t.time},"s":"${symbol}","t":${t.id},"p":"${fmt8(t.price)}","q":"${fmt8(t.qty)}","T":${t.time},"m":${t.buyerMaker},"M":true}}`;
  }

  static tickerMessage(symbol: string, t: TapeTrade): string {
    return `{"stream":"${symbol.toLowerCase()}@bookTicker","data":{"u":${t.id},"s":"${symbol}","b":"${fmt8(t.price - 1_000_000n)}","B":"1.50000000","a":"${fmt8(t.price)}","A":"0.75000000"}}`;
  }

  static historicalItem(t: TapeTrade): string {
    return `{"id":${t.id},"price":"${fmt8(t.price)}","qty":"${fmt8(t.qty)}","quoteQty":"${fmt8((t.price * t.qty) / SCALE)}","time":${t.time},"isBuyerMaker":${t.buyerMaker},"isBestMatch":true}`;
  }

  static aggItem(a: Agg): string {
    return `{"a":${a.a},"p":"${fmt8(a.price)}","q":"${fmt8(a.qty)}","f":${a.f},"l":${a.l},"T":${a.time},"m":${a.m},"M":true}`;
  }
}

export type FaultKind = 'status500' | 'status503' | 'cut' | 'hang' | 'error400' | 'ban418';
interface Fault { match: (url: URL) => boolean; kind: FaultKind; times: number }

export interface RequestRecord { at: number; path: string; query: string; weight: number; status: number }

export interface FakeHistoryOptions {
  /** Request-weight limit per window (the venue: 6,000 per minute). */
  weightLimit?: number;
  windowMs?: number;
  /** How long a 418 ban lasts. */
  banSeconds?: number;
  /** After a 429, requests already in flight get 429 too for this long; later ones are banned (418). */
  graceMs?: number;
  /** Delay before every REST answer. */
  delayMs?: number;
  /** Minutes (per symbol and interval) the venue has no kline for: [fromMs, toMs). */
  klineHoles?: Array<[number, number]>;
  /** Live trades per second per tape while the tape runs. */
  tradesPerSecond?: number;
  /**
   * Trades per second per tape during an outage (default: tradesPerSecond). A short outage at a
   * higher rate leaves as many ids missing as a long one at the normal rate would.
   */
  outageTradesPerSecond?: number;
  symbols?: string[];
  /** Trades per tape after which the tape stops producing (0: no end). */
  tradeLimit?: number;
}

/** The fake venue. start() listens on 127.0.0.1; every REST request is logged with its weight and answer. */
export class FakeBinanceHistory {
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  port = 0;
  readonly requests: RequestRecord[] = [];
  /** Accepted weight per window index (floor(ms / windowMs)). */
  readonly windows = new Map<number, number>();
  readonly tapes = new Map<string, TradeTape>();
  private faults: Fault[] = [];
  private throttledAt = 0;
  private throttledUntil = 0;
  private bannedUntil = 0;
  private sockets = new Map<WebSocket, Set<string>>();
  private ticker: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private owed = 0;
  private skipping = 0;
  /** Ids produced while no connection could receive them (outages) or skipped on live connections. */
  readonly undelivered: bigint[] = [];
  outageUntil = 0;
  connections = 0;
  refused = 0;
  readonly opts: Required<FakeHistoryOptions>;

  constructor(opts: FakeHistoryOptions = {}) {
    this.opts = {
      weightLimit: 6000, windowMs: 60_000, banSeconds: 120, graceMs: 1000, delayMs: 0, klineHoles: [],
      tradesPerSecond: 50, outageTradesPerSecond: opts.tradesPerSecond ?? 50, symbols: ['BTCUSDT'], tradeLimit: 0, ...opts,
    };
    // Tapes start from a real capture's ids and prices (hftbacktest spot BTCUSDT 2024-08-08).
    const starts: Record<string, [bigint, string, bigint]> = {
      BTCUSDT: [3735683259n, '61837.63000000', 3100000000n],
      ETHUSDT: [1552000000n, '2586.41000000', 1180000000n],
    };
    for (const s of this.opts.symbols) {
      const [id, price, agg] = starts[s] ?? [1_000_000n, '100.00000000', 500_000n];
      this.tapes.set(s, new TradeTape(s, id, price, agg));
    }
    this.server = http.createServer((req, res) => { void this.rest(req, res); });
    this.wss = new WebSocketServer({
      server: this.server, path: '/stream', autoPong: true,
      verifyClient: (_info, cb) => {
        if (Date.now() < this.outageUntil) { this.refused++; cb(false, 503, 'Service Unavailable'); } else cb(true);
      },
    });
    this.wss.on('connection', (ws, req) => {
      this.connections++;
      const url = new URL(req.url ?? '/', 'http://x');
      this.sockets.set(ws, new Set((url.searchParams.get('streams') ?? '').split('/')));
      ws.on('close', () => this.sockets.delete(ws));
    });
  }

  async start(): Promise<{ ws: string; rest: string }> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return { ws: `ws://127.0.0.1:${this.port}`, rest: `http://127.0.0.1:${this.port}` };
  }

  get restUrl(): string { return `http://127.0.0.1:${this.port}`; }

  /** Starts producing live trades (tradesPerSecond per tape) and streaming them to subscribers. */
  startTape(): void {
    this.lastTick = performance.now();
    this.owed = 0;
    this.ticker = setInterval(() => this.tick(), 10);
  }

  /** Every tape has produced tradeLimit trades. */
  get tapeFinished(): boolean {
    return this.opts.tradeLimit > 0 && [...this.tapes.values()].every((t) => t.trades.length >= this.opts.tradeLimit);
  }

  stopTape(): void { if (this.ticker) clearInterval(this.ticker); this.ticker = undefined; }

  private tick(): void {
    const mono = performance.now();
    const now = Date.now();
    const down = now < this.outageUntil;
    this.owed += ((mono - this.lastTick) / 1000) * (down ? this.opts.outageTradesPerSecond : this.opts.tradesPerSecond);
    this.lastTick = mono;
    for (; this.owed >= 1; this.owed--) {
      if (this.tapeFinished) { this.stopTape(); return; }
      const skip = this.skipping > 0;
      if (skip) this.skipping--;
      for (const tape of this.tapes.values()) {
        const t = tape.produce(now);
        if (down || skip || this.sockets.size === 0) { this.undelivered.push(t.id); continue; }
        const lower = tape.symbol.toLowerCase();
        for (const [ws, streams] of this.sockets) {
          if (ws.readyState !== ws.OPEN) continue;
          if (streams.has(`${lower}@trade`)) ws.send(TradeTape.tradeMessage(tape.symbol, t));
          if (streams.has(`${lower}@bookTicker`)) ws.send(TradeTape.tickerMessage(tape.symbol, t));
        }
      }
    }
  }

  /** Produces n trades per tape, the k-th at startMs + k * stepMs (history from the past). */
  produceAt(n: number, startMs: number, stepMs: number): void {
    for (let k = 0; k < n; k++) for (const tape of this.tapes.values()) tape.produce(startMs + Math.floor(k * stepMs));
  }

  /** Produces n trades per tape at once, at the current time (history without a live stream). */
  produceNow(n: number): void {
    const now = Date.now();
    for (let k = 0; k < n; k++) for (const tape of this.tapes.values()) tape.produce(now);
  }

  /** The next n trades of every tape are not sent on the live connections (the venue skipped ids). */
  skipLive(n: number): void { this.skipping += n; }

  /** The venue stops serving the stream for ms: every connection is cut and new ones are refused (503). */
  outage(ms: number): void {
    this.outageUntil = Date.now() + ms;
    for (const ws of this.sockets.keys()) ws.terminate();
  }

  /** The next `times` requests matching `match` fail as `kind`. */
  fail(match: (url: URL) => boolean, kind: FaultKind, times = Number.POSITIVE_INFINITY): void {
    this.faults.push({ match, kind, times });
  }

  clearFaults(): void { this.faults = []; }

  /** Forces the next request to be answered with a ban (as if another client on our address had earned it). */
  banFor(seconds: number): void { this.bannedUntil = Date.now() + seconds * 1000; }

  private windowOf(ms: number): number { return Math.floor(ms / this.opts.windowMs); }

  private answer(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body), ...headers }).end(body);
  }

  private async rest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://x');
    const weight = WEIGHTS[url.pathname];
    const record: RequestRecord = { at, path: url.pathname, query: url.search, weight: weight ?? 0, status: 0 };
    this.requests.push(record);
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    if (weight === undefined) { record.status = 404; this.answer(res, 404, ''); return; }
    // The venue's limits, in its order: a ban first, then the weight of the current window.
    if (at < this.bannedUntil) {
      record.status = 418;
      this.answer(res, 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned until ${this.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans."}`,
        { 'retry-after': String(Math.ceil((this.bannedUntil - at) / 1000)) });
      return;
    }
    if (at < this.throttledUntil) {
      if (at - this.throttledAt > this.opts.graceMs) {
        this.bannedUntil = at + this.opts.banSeconds * 1000;
        record.status = 418;
        this.answer(res, 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned until ${this.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans."}`,
          { 'retry-after': String(this.opts.banSeconds) });
        return;
      }
      record.status = 429;
      this.answer(res, 429, '{"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}',
        { 'retry-after': String(Math.ceil((this.throttledUntil - at) / 1000)) });
      return;
    }
    const win = this.windowOf(at);
    const used = this.windows.get(win) ?? 0;
    if (used + weight > this.opts.weightLimit) {
      this.throttledAt = at;
      this.throttledUntil = (win + 1) * this.opts.windowMs;
      record.status = 429;
      this.answer(res, 429, '{"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}',
        { 'retry-after': String(Math.ceil((this.throttledUntil - at) / 1000)), 'x-mbx-used-weight-1m': String(used) });
      return;
    }
    this.windows.set(win, used + weight);
    const headers = { 'x-mbx-used-weight-1m': String(used + weight), 'x-mbx-used-weight': String(used + weight) };
    const fault = this.faults.find((f) => f.times > 0 && f.match(url));
    if (fault) {
      fault.times--;
      record.status = fault.kind === 'error400' ? 400 : fault.kind === 'status500' ? 500 : fault.kind === 'status503' ? 503 : 200;
      if (fault.kind === 'hang') return; // never answers: the client's timeout ends it
      if (fault.kind === 'ban418') { // a ban earned by another client on our address
        this.bannedUntil = at + this.opts.banSeconds * 1000;
        record.status = 418;
        this.answer(res, 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned until ${this.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans."}`,
          { 'retry-after': String(this.opts.banSeconds) });
        return;
      }
      if (fault.kind === 'error400') { this.answer(res, 400, '{"code":-1121,"msg":"Invalid symbol."}', headers); return; }
      if (fault.kind === 'status500' || fault.kind === 'status503') {
        this.answer(res, record.status, '{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}', headers);
        return;
      }
      // cut: the headers promise a full body; half of it arrives, then the connection drops.
      const body = this.body(url);
      if (typeof body !== 'string') { this.answer(res, body.status, body.body, headers); return; }
      res.writeHead(200, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(body), ...headers });
      res.write(body.slice(0, Math.floor(body.length / 2)));
      setTimeout(() => res.socket?.destroy(), 5);
      return;
    }
    const body = this.body(url);
    if (typeof body === 'string') { record.status = 200; this.answer(res, 200, body, headers); } else { record.status = body.status; this.answer(res, body.status, body.body, headers); }
  }

  private body(url: URL): string | { status: number; body: string } {
    const q = url.searchParams;
    const symbol = q.get('symbol') ?? '';
    const limitText = q.get('limit');
    const limit = limitText === null ? 500 : Number(limitText);
    if (!/^[A-Z0-9]{2,20}$/.test(symbol)) return { status: 400, body: '{"code":-1100,"msg":"Illegal characters found in parameter \'symbol\'; legal range is \'^[A-Z0-9-_.]{1,20}$\'."}' };
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return { status: 400, body: '{"code":-1130,"msg":"Invalid data sent for a parameter."}' };
    if (url.pathname === '/api/v3/klines') {
      const width = WIDTH_MS[q.get('interval') ?? ''];
      if (!width) return { status: 400, body: '{"code":-1120,"msg":"Invalid interval."}' };
      const start = Number(q.get('startTime') ?? '0');
      const end = q.has('endTime') ? Number(q.get('endTime')) : Date.now();
      const rows: string[] = [];
      const now = Date.now();
      for (let t = Math.ceil(start / width) * width; t <= end && t <= now && rows.length < limit; t += width) {
        if (this.opts.klineHoles.some(([a, b]) => t >= a && t < b)) continue;
        const captured = symbol === CAPTURED_KLINES_SYMBOL && width === 60_000 ? CAPTURED_KLINES.find((k) => k[0] === t) : undefined;
        rows.push(captured ? JSON.stringify(captured) : klineRow(t, width));
      }
      return `[${rows.join(',')}]`;
    }
    const tape = this.tapes.get(symbol);
    if (!tape) return { status: 400, body: '{"code":-1121,"msg":"Invalid symbol."}' };
    if (url.pathname === '/api/v3/historicalTrades' || url.pathname === '/api/v3/trades') {
      const fromId = q.has('fromId') && url.pathname === '/api/v3/historicalTrades'
        ? BigInt(q.get('fromId')!) : tape.nextId - BigInt(limit);
      const out: string[] = [];
      for (let id = fromId < tape.firstId ? tape.firstId : fromId; out.length < limit; id++) {
        const t = tape.byId(id);
        if (!t) break;
        out.push(TradeTape.historicalItem(t));
      }
      return `[${out.join(',')}]`;
    }
    // aggTrades: by fromId, or the first ones at or after startTime (and not after endTime).
    let aggs = tape.aggs;
    if (q.has('fromId')) {
      const from = BigInt(q.get('fromId')!);
      aggs = aggs.filter((a) => a.a >= from);
    } else if (q.has('startTime')) {
      const s = Number(q.get('startTime'));
      const e = q.has('endTime') ? Number(q.get('endTime')) : Number.POSITIVE_INFINITY;
      if (q.has('endTime') && e - s >= 3_600_000) return { status: 400, body: '{"code":-1127,"msg":"More than 1 hours between startTime and endTime."}' };
      aggs = aggs.filter((a) => a.time >= s && a.time <= e);
    } else {
      aggs = aggs.slice(-limit);
    }
    return `[${aggs.slice(0, limit).map(TradeTape.aggItem).join(',')}]`;
  }

  /** Weight accepted in the busiest window. */
  maxWindowWeight(): number { return Math.max(0, ...this.windows.values()); }

  async stop(): Promise<void> {
    this.stopTape();
    for (const ws of this.sockets.keys()) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
