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
  private streams = new Set<Stream>();
  private splitNext: number | undefined;
  private cutNext: number | undefined;
  private silent = false;
  private refuse: { status: number; body: string } | undefined;
  private rest429Left: number;
  private candleCalls = new Map<string, number>();

  constructor(private readonly opts: FakeOandaOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
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

  async stop(): Promise<void> {
    for (const s of this.streams) s.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
