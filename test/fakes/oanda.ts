import http from 'node:http';
import type net from 'node:net';

/** OANDA's RFC 3339 form with nanoseconds, for heartbeats the fake writes itself. */
export function oandaTime(ms: number, nanos = '000000'): string {
  return new Date(ms).toISOString().replace(/Z$/, `${nanos}Z`);
}

export interface FakeOandaOptions {
  /** Price lines (raw text, no newline) that the n-th stream connection (1-based) sends, in order. */
  lines: (connection: number) => Iterable<string>;
  /** Milliseconds between lines (0: as fast as the socket takes them). */
  intervalMs?: number;
  /** Heartbeat period (OANDA: about 5 s). */
  heartbeatMs?: number;
  /** The bearer token the fake accepts. */
  token: string;
  /** REST candle pages by instrument, served in order; each call takes the next one. */
  candles?: Record<string, string[]>;
  /**
   * REST candle history answering GET /v3/instruments/:i/candles like the venue (price, granularity,
   * from/to/count, includeFirst, the 5,000-candle maximum, no future `to`) from oandaCandle();
   * instruments listed here are served this way instead of from `candles`.
   */
  history?: OandaCandleHistory;
  /** How many REST requests answer 429 before being served. */
  rest429?: number;
}

interface Stream { res: http.ServerResponse; socket: net.Socket; timer: NodeJS.Timeout | undefined; heartbeat: NodeJS.Timeout | undefined }

/**
 * A local OANDA v20: the pricing stream (GET /v3/accounts/:id/pricing/stream, HTTP/1.1 chunked,
 * one JSON object per line, heartbeats) and REST candles with 429s, on 127.0.0.1. Controls do
 * what a network and the venue do: split the next line across two chunks, cut a stream in the
 * middle of a line, go silent with the connection open, refuse connections.
 */
export class FakeOanda {
  readonly server: http.Server;
  port = 0;
  /** Stream connection attempts, with the monotonic time each arrived. */
  connectTimes: number[] = [];
  /** Authorization headers and paths of every request, in order. */
  requests: Array<{ path: string; authorization: string | undefined }> = [];
  /** Monotonic time of every TCP connection the fake accepted (streams and REST alike). */
  tcpConnections: number[] = [];
  /** Every candle the REST history served, with the time it was served (the test's expectations). */
  served: Array<{ instrument: string; granularity: string; candle: OandaCandle; at: number }> = [];
  private streams = new Set<Stream>();
  private splitNext: number | undefined;
  private cutNext: number | undefined;
  private silent = false;
  private refuse: { status: number; body: string } | undefined;
  private rest429Left: number;
  private candleCalls = new Map<string, number>();

  constructor(private readonly opts: FakeOandaOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', () => { this.tcpConnections.push(performance.now()); });
    this.rest429Left = opts.rest429 ?? 0;
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  get connections(): number { return this.connectTimes.length; }
  get openStreams(): number { return this.streams.size; }

  /** The next price line is written as two chunks, split after `at` bytes, 40 ms apart. */
  splitNextLine(at: number): void { this.splitNext = at; }
  /** The next price line is cut after `at` bytes and the connection is destroyed. */
  cutNextLine(at: number): void { this.cutNext = at; }
  /** Stops (or resumes) prices and heartbeats on open streams; the TCP connection stays up. */
  setSilent(on: boolean): void { this.silent = on; }
  /** Answers new stream requests with this status and body (undefined: serve them). */
  refuseWith(status: number | undefined, body = '{"errorMessage":"Insufficient authorization to perform request."}'): void {
    this.refuse = status === undefined ? undefined : { status, body };
  }
  dropAll(): void { for (const s of this.streams) s.socket.destroy(); }
  /** The next n REST requests are answered 429 (the venue's request limit). */
  throttleNext(n: number): void { this.rest429Left = n; }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({ path: url.pathname + url.search, authorization: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${this.opts.token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errorMessage":"Insufficient authorization to perform request."}');
      if (/\/pricing\/stream$/.test(url.pathname)) this.connectTimes.push(performance.now());
      return;
    }
    if (/^\/v3\/accounts\/[A-Za-z0-9-]+\/pricing\/stream$/.test(url.pathname)) { this.stream(url, res); return; }
    const candles = /^\/v3\/instruments\/([A-Z0-9_]+)\/candles$/.exec(url.pathname);
    if (candles) {
      if (this.rest429Left === 0 && this.opts.history?.instruments.has(candles[1]!)) {
        this.history(candles[1]!, url, req, res);
        return;
      }
      if (this.rest429Left > 0) {
        this.rest429Left--;
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' })
          .end('{"errorMessage":"Rate limit violation of newly established connections."}');
        return;
      }
      const pages = this.opts.candles?.[candles[1]!] ?? [];
      const n = this.candleCalls.get(candles[1]!) ?? 0;
      this.candleCalls.set(candles[1]!, n + 1);
      const body = pages[n];
      if (body === undefined) { res.writeHead(400, { 'content-type': 'application/json' }).end('{"errorMessage":"Invalid value specified for \'instrument\'"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    res.writeHead(404).end();
  }

  private stream(url: URL, res: http.ServerResponse): void {
    this.connectTimes.push(performance.now());
    const n = this.connectTimes.length;
    if (this.refuse) { res.writeHead(this.refuse.status, { 'content-type': 'application/json' }).end(this.refuse.body); return; }
    const wanted = new Set((url.searchParams.get('instruments') ?? '').split(','));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.flushHeaders();
    const s: Stream = { res, socket: res.socket!, timer: undefined, heartbeat: undefined };
    s.socket.setNoDelay(true);
    this.streams.add(s);
    const done = () => { if (s.timer) clearTimeout(s.timer); if (s.heartbeat) clearInterval(s.heartbeat); this.streams.delete(s); };
    res.on('close', done);
    s.heartbeat = setInterval(() => {
      if (!this.silent) res.write(`{"type":"HEARTBEAT","time":"${oandaTime(Date.now(), '123456')}"}\n`);
    }, this.opts.heartbeatMs ?? 5000);
    const it = this.opts.lines(n)[Symbol.iterator]();
    const send = () => {
      if (res.destroyed) return;
      if (this.silent) { s.timer = setTimeout(send, 20); return; }
      for (let k = 0; k < 500; k++) {
        const next = it.next();
        if (next.done) return;
        const m = /"instrument":"([A-Z0-9_]+)"/.exec(next.value);
        if (m && !wanted.has(m[1]!)) continue;
        const line = `${next.value}\n`;
        if (this.cutNext !== undefined) {
          const at = this.cutNext;
          this.cutNext = undefined;
          res.write(line.slice(0, at), () => setTimeout(() => s.socket.destroy(), 30));
          return;
        }
        if (this.splitNext !== undefined) {
          const at = this.splitNext;
          this.splitNext = undefined;
          res.write(line.slice(0, at));
          s.timer = setTimeout(() => { res.write(line.slice(at)); s.timer = setTimeout(send, this.opts.intervalMs ?? 0); }, 40);
          return;
        }
        res.write(line);
        if (this.opts.intervalMs) { s.timer = setTimeout(send, this.opts.intervalMs); return; }
      }
      s.timer = setTimeout(send, 0);
    };
    s.timer = setTimeout(send, 5);
  }

  private history(instrument: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const fail = (message: string) => { res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errorMessage: message })); };
    const q = url.searchParams;
    const granularity = q.get('granularity') ?? 'S5';
    const width = OANDA_WIDTHS[granularity];
    if (!width) { fail(`Invalid value specified for 'granularity'`); return; }
    const price = q.get('price') ?? 'M';
    if (!/^[MBA]{1,3}$/.test(price)) { fail(`Invalid value specified for 'price'`); return; }
    const now = Date.now();
    const time = (name: string) => { const v = q.get(name); return v === null ? undefined : Date.parse(v); };
    const from = time('from');
    const to = time('to');
    if (Number.isNaN(from) || Number.isNaN(to)) { fail(`Invalid value specified for '${Number.isNaN(from) ? 'from' : 'to'}'`); return; }
    if (to !== undefined && to > now) { fail(`Invalid value specified for 'to'. Time is in the future`); return; }
    if (from !== undefined && to !== undefined && q.has('count')) { fail(`Invalid value specified for 'count'. Count must not be specified when both from and to are specified`); return; }
    const count = q.has('count') ? Number(q.get('count')) : 500;
    if (!Number.isInteger(count) || count < 1 || count > 5000) { fail(`Invalid value specified for 'count'. Maximum value for 'count' exceeded`); return; }
    // Candles cover [from, to] by their start times; a range of more than 5,000 of them is refused.
    const start = Math.ceil((from ?? (to ?? now) - count * width) / width) * width;
    const end = to ?? (from !== undefined ? Math.min(now, start + (count - 1) * width) : now);
    if (from !== undefined && to !== undefined && Math.floor((end - start) / width) + 1 > 5000) { fail(`Maximum value for 'count' exceeded`); return; }
    const skipFirst = q.get('includeFirst') === 'false' && from !== undefined && from === start;
    const out: string[] = [];
    for (let t = start; t <= end && t <= now; t += width) {
      if (skipFirst && t === start) continue;
      const c = this.opts.history!.candle(instrument, granularity, t, now);
      if (!c) continue;
      this.served.push({ instrument, granularity, candle: c, at: now });
      out.push(oandaCandleJson(c, price, req.headers['accept-datetime-format'] === 'UNIX'));
    }
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(`{"instrument":"${instrument}","granularity":"${granularity}","candles":[${out.join(',')}]}`);
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// ---------- candle history ----------

export const OANDA_WIDTHS: Record<string, number> = {
  S5: 5_000, S10: 10_000, S15: 15_000, S30: 30_000, M1: 60_000, M2: 120_000, M4: 240_000, M5: 300_000, M10: 600_000,
  M15: 900_000, M30: 1_800_000, H1: 3_600_000, H2: 7_200_000, H3: 10_800_000, H4: 14_400_000, H6: 21_600_000,
  H8: 28_800_000, H12: 43_200_000, D: 86_400_000,
};

export interface OandaOhlc { o: string; h: string; l: string; c: string }
export interface OandaCandle { time: number; complete: boolean; volume: number; bid: OandaOhlc; mid: OandaOhlc; ask: OandaOhlc }

function hash32(x: number): number {
  let h = (x ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Forex is closed from Friday 22:00 to Sunday 22:00 UTC here (the venue's week, without daylight saving). */
export function forexClosed(ms: number): boolean {
  const d = new Date(ms);
  const hourOfWeek = d.getUTCDay() * 24 + d.getUTCHours();
  return hourOfWeek >= 5 * 24 + 22 || hourOfWeek < 22;
}

const fx = (units: number) => { const s = String(units).padStart(6, '0'); return `${s.slice(0, -5)}.${s.slice(-5)}`; };

const units = (text: string) => Number(text.replace('.', ''));

/**
 * The candle history of the fake venue. Buckets of the captured pages given (real OANDA answers,
 * test/fixtures/oanda) are served with their captured mid, volume and completeness; bid and ask,
 * which those pages lack, are derived around the captured mid (a spread of 2 to 6 units of
 * 1e-5). Every other bucket is generated deterministically in the same form (5 decimals, volume
 * a tick count), or has no candle (closed, or no tick in it: the venue sends none then). A
 * bucket still open at `now` is served incomplete, with part of its ticks.
 */
export class OandaCandleHistory {
  readonly instruments: Set<string>;
  private readonly captured = new Map<string, { volume: number; complete: boolean; mid: OandaOhlc }>();

  constructor(instruments: string[], capturedPages: string[] = [], private readonly alwaysOpen: string[] = []) {
    this.instruments = new Set(instruments);
    for (const text of capturedPages) {
      const page = JSON.parse(text) as { instrument: string; granularity: string; candles: Array<{ time: string; volume: number; complete: boolean; mid?: OandaOhlc }> };
      for (const c of page.candles) {
        if (c.mid) this.captured.set(`${page.instrument}|${page.granularity}|${Date.parse(c.time)}`, { volume: c.volume, complete: c.complete, mid: c.mid });
      }
    }
  }

  isCaptured(instrument: string, granularity: string, time: number): boolean {
    return this.captured.has(`${instrument}|${granularity}|${time}`);
  }

  candle(instrument: string, granularity: string, time: number, now: number): OandaCandle | undefined {
    const width = OANDA_WIDTHS[granularity]!;
    if (time > now) return undefined;
    const k = Math.floor(time / 1000) + instrument.length * 7919 + width;
    const h1 = hash32(k);
    const h2 = hash32(k ^ 0x5bd1e995);
    const half = 1 + (h2 % 3);
    const around = (m: OandaOhlc, d: number): OandaOhlc => ({ o: fx(units(m.o) + d), h: fx(units(m.h) + d), l: fx(units(m.l) + d), c: fx(units(m.c) + d) });
    const got = this.captured.get(`${instrument}|${granularity}|${time}`);
    if (got) return { time, complete: got.complete, volume: got.volume, bid: around(got.mid, -half), mid: got.mid, ask: around(got.mid, half) };
    if ((!this.alwaysOpen.includes(instrument) && forexClosed(time)) || h1 % 37 === 0) return undefined;
    const complete = time + width <= now;
    const base = 110_000 + (Math.floor(time / 3_600_000) % 9000); // units of 1e-5
    const open = base + (h1 % 200);
    const close = complete ? base + (h2 % 200) : open + ((h2 >>> 8) % 7) - 3;
    const high = Math.max(open, close) + (complete ? (h1 >>> 8) % 30 : 0);
    const low = Math.min(open, close) - (complete ? (h2 >>> 16) % 30 : 0);
    const mid = { o: fx(open), h: fx(high), l: fx(low), c: fx(close) };
    const volume = 1 + (h1 % 400);
    return { time, complete, volume: complete ? volume : Math.ceil(volume / 3), bid: around(mid, -half), mid, ask: around(mid, half) };
  }
}

/** A candle as the venue writes it for the requested price components (RFC 3339 with nanoseconds, or UNIX). */
export function oandaCandleJson(c: OandaCandle, price: string, unix = false): string {
  const time = unix ? `${c.time / 1000}.000000000` : new Date(c.time).toISOString().replace(/\.\d{3}Z$/, '.000000000Z');
  const ohlc = (x: OandaOhlc) => `{"o":"${x.o}","h":"${x.h}","l":"${x.l}","c":"${x.c}"}`;
  let out = `{"complete":${c.complete},"volume":${c.volume},"time":"${time}"`;
  if (price.includes('B')) out += `,"bid":${ohlc(c.bid)}`;
  if (price.includes('M')) out += `,"mid":${ohlc(c.mid)}`;
  if (price.includes('A')) out += `,"ask":${ohlc(c.ask)}`;
  return `${out}}`;
}
