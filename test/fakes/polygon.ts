import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakePolygonOptions {
  /** The API key the fake accepts. */
  apiKey: string;
  /** Frames (raw JSON arrays) the n-th authenticated connection (1-based) of a cluster sends after it subscribed. */
  frames: (cluster: string, connection: number) => Iterable<string>;
  /** Milliseconds between frames (0: as fast as the socket takes them). */
  intervalMs?: number;
  /** REST aggregate pages by request path (without query), served in order; a page may carry a next_url. */
  aggs?: Record<string, string[]>;
  /** How many REST requests answer 429 before being served. */
  rest429?: number;
  /**
   * Aggregates history answering /v2/aggs/ticker/:t/range/:n/:span/:from/:to like the venue
   * (from/to in ms or dates, both inclusive; adjusted, sort, limit; next_url with a cursor when
   * an answer is cut) from PolygonAggHistory; its tickers are served this way instead of from `aggs`.
   */
  history?: PolygonAggHistory;
  /** Bars per answer at most (the venue cuts long answers and gives a next_url); default the request's limit. */
  resultsPerPage?: number;
}

const status = (s: string, message: string) => JSON.stringify([{ ev: 'status', status: s, message }]);

/**
 * A local Polygon.io: one WebSocket endpoint per cluster (/forex, /indices, /stocks, /crypto)
 * with the real handshake (status connected, then an auth message, auth_success or auth_failed
 * and a close, then subscribe), frames that are arrays of events, and REST aggregates with
 * next_url paging and 429s. It records what clients send, so tests can check the order.
 */
export class FakePolygon {
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  port = 0;
  /** Every message a client sent, with its cluster and connection number. */
  received: Array<{ cluster: string; connection: number; text: string }> = [];
  /** Connection attempts per cluster. */
  connections: Record<string, number> = {};
  authFailures = 0;
  restRequests: string[] = [];
  /** Authorization header of every REST request, in order (with restRequests). */
  restAuthorizations: Array<string | undefined> = [];
  private sockets = new Set<WebSocket>();
  private silent = false;
  private rest429Left: number;
  private aggCalls = new Map<string, number>();

  constructor(private readonly opts: FakePolygonOptions) {
    this.server = http.createServer((req, res) => this.rest(req, res));
    this.wss = new WebSocketServer({ server: this.server, autoPong: true });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    this.rest429Left = opts.rest429 ?? 0;
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `ws://127.0.0.1:${this.port}`;
  }

  get restUrl(): string { return `http://127.0.0.1:${this.port}`; }
  get openConnections(): number { return this.sockets.size; }

  /** Stops (or resumes) frames and pong answers, leaving the TCP connections up. */
  setSilent(on: boolean): void {
    this.silent = on;
    for (const ws of this.sockets) {
      const sock = (ws as unknown as { _socket: net.Socket })._socket;
      if (on) sock.pause(); else sock.resume();
    }
  }
  dropAll(): void { for (const ws of this.sockets) ws.terminate(); }
  /** The next n REST requests are answered 429 (over the plan's limit). */
  throttleNext(n: number): void { this.rest429Left = n; }

  private onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    const cluster = (req.url ?? '/').replace(/^\//, '').split('?')[0]!;
    if (!['forex', 'indices', 'stocks', 'crypto'].includes(cluster)) { ws.close(1008, 'unknown cluster'); return; }
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    const n = (this.connections[cluster] = (this.connections[cluster] ?? 0) + 1);
    let authed = false;
    let streaming = false;
    ws.send(status('connected', 'Connected Successfully'));
    ws.on('message', (data) => {
      const text = data.toString();
      this.received.push({ cluster, connection: n, text });
      const msg = JSON.parse(text) as { action: string; params: string };
      if (msg.action === 'auth') {
        if (msg.params === this.opts.apiKey) {
          authed = true;
          ws.send(status('auth_success', 'authenticated'));
        } else {
          this.authFailures++;
          ws.send(status('auth_failed', 'authentication failed'));
          setTimeout(() => ws.close(1008, 'authentication failed'), 10);
        }
        return;
      }
      if (msg.action === 'subscribe') {
        if (!authed) { ws.send(status('error', 'not authorized')); return; }
        ws.send(status('success', `subscribed to: ${msg.params}`));
        if (!streaming) { streaming = true; this.stream(ws, cluster, n); }
      }
    });
  }

  private stream(ws: WebSocket, cluster: string, n: number): void {
    const it = this.opts.frames(cluster, n)[Symbol.iterator]();
    const send = () => {
      if (ws.readyState !== ws.OPEN) return;
      if (this.silent) { setTimeout(send, 20); return; }
      for (let k = 0; k < 200; k++) {
        const next = it.next();
        if (next.done) return;
        ws.send(next.value);
        if (this.opts.intervalMs) { setTimeout(send, this.opts.intervalMs); return; }
        if (ws.bufferedAmount > 1 << 20) break;
      }
      setImmediate(send);
    };
    setTimeout(send, 5);
  }

  private rest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.restRequests.push(url.pathname + url.search);
    this.restAuthorizations.push(req.headers.authorization);
    const key = url.searchParams.get('apiKey') ?? /^Bearer (.*)$/.exec(req.headers.authorization ?? '')?.[1];
    if (key !== this.opts.apiKey) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ERROR', request_id: requestId(this.restRequests.length),
        error: key === undefined ? 'API Key was not provided' : 'Unknown API Key' }));
      return;
    }
    if (this.rest429Left > 0) {
      this.rest429Left--;
      res.writeHead(429, { 'content-type': 'application/json' })
        .end('{"status":"ERROR","request_id":"x","error":"You\'ve exceeded the maximum requests per minute, please wait or upgrade your subscription to continue."}');
      return;
    }
    const m = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/([1-9][0-9]*)\/(second|minute|hour|day)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (m && this.opts.history?.tickers.has(m[1]!)) { this.aggsHistory(m as unknown as string[], url, res); return; }
    const pages = this.opts.aggs?.[url.pathname];
    if (!pages) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"NOT_FOUND"}'); return; }
    // A cursor names the page; the first request has none.
    const page = Number(url.searchParams.get('cursor') ?? '0');
    const calls = this.aggCalls.get(url.pathname) ?? 0;
    this.aggCalls.set(url.pathname, calls + 1);
    const body = pages[page];
    if (body === undefined) { res.writeHead(400).end('{"status":"ERROR","error":"bad cursor"}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body.replace('{NEXT_URL_BASE}', this.restUrl));
  }

  private aggsHistory([, ticker, n, span, fromText, toText]: string[], url: URL, res: http.ServerResponse): void {
    const fail = (status: number, error: string) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ERROR', request_id: requestId(this.restRequests.length), error }));
    };
    // A next_url's cursor carries the first request's parameters.
    const cursor = url.searchParams.get('cursor');
    const q = cursor ? new URLSearchParams(Buffer.from(cursor, 'base64url').toString('utf8')) : url.searchParams;
    const time = (text: string, endOfDay: boolean) => /^[0-9]+$/.test(text) ? Number(text)
      : /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) + (endOfDay ? 86_399_999 : 0) : Number.NaN;
    const from = time(fromText!, false);
    const to = time(toText!, true);
    if (Number.isNaN(from) || Number.isNaN(to)) { fail(400, 'Could not parse the time parameter'); return; }
    const limit = Number(q.get('limit') ?? '5000');
    if (!Number.isInteger(limit) || limit < 1 || limit > 50_000) { fail(400, 'Could not parse the limit parameter'); return; }
    const adjusted = q.get('adjusted') !== 'false';
    const width = Number(n) * { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }[span!]!;
    const cap = Math.min(limit, this.opts.resultsPerPage ?? limit);
    const now = Date.now();
    const bars: PolygonBar[] = [];
    let next: number | undefined;
    for (let t = Math.ceil(from / width) * width; t <= to && t <= now; t += width) {
      const bar = this.opts.history!.bar(ticker!, width, t);
      if (!bar) continue;
      if (bars.length === cap) { next = t; break; }
      bars.push(bar);
    }
    const results = bars.map((b) => polygonBarJson(b));
    let body = `{"ticker":"${ticker}","queryCount":${bars.length},"resultsCount":${bars.length},"adjusted":${adjusted},` +
      `"results":[${results.join(',')}],"status":"OK","request_id":"${requestId(this.restRequests.length)}","count":${bars.length}`;
    if (next !== undefined) {
      const c = Buffer.from(`adjusted=${adjusted}&limit=${limit}&sort=${q.get('sort') ?? 'asc'}`).toString('base64url');
      body += `,"next_url":"https://api.polygon.io/v2/aggs/ticker/${ticker}/range/${n}/${span}/${next}/${toText}?cursor=${c}"`;
    }
    if (bars.length === 0) body = `{"ticker":"${ticker}","queryCount":0,"resultsCount":0,"adjusted":${adjusted},"status":"OK","request_id":"${requestId(this.restRequests.length)}","count":0}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}}`);
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const requestId = (n: number) => n.toString(16).padStart(32, '0');

// ---------- aggregates history ----------

export interface PolygonBar { t: number; o: string; h: string; l: string; c: string; v?: string; vw?: string; n?: string }

function hash32(x: number): number {
  let h = (x ^ 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Integer units of 10^-scale as JSON number text, the way the venue prints numbers (no trailing zeros). */
function num(units: number, scale: number): string {
  const s = String(units).padStart(scale + 1, '0');
  const frac = s.slice(-scale).replace(/0+$/, '');
  return frac ? `${s.slice(0, -scale)}.${frac}` : s.slice(0, -scale);
}

/**
 * The aggregates the fake venue has, generated deterministically per ticker and bar in the
 * shape of the venue's documented examples (test/fixtures/polygon/docs-examples.jsonl): forex
 * (C:) 5-decimal prices, v = n = tick count, closed from Friday 22:00 to Sunday 22:00 UTC;
 * indices (I:) 2-decimal values and no volume; stocks 4-decimal prices, v shares and n trades,
 * both in 13:30-20:00 UTC on weekdays. Some bars of open hours have no data (no bar is sent).
 */
export class PolygonAggHistory {
  readonly tickers: Set<string>;
  constructor(tickers: string[]) { this.tickers = new Set(tickers); }

  bar(ticker: string, width: number, t: number): PolygonBar | undefined {
    const d = new Date(t);
    const day = d.getUTCDay();
    const minuteOfDay = d.getUTCHours() * 60 + d.getUTCMinutes();
    const forex = ticker.startsWith('C:');
    const open = forex
      ? !((day === 5 && minuteOfDay >= 22 * 60) || day === 6 || (day === 0 && minuteOfDay < 22 * 60))
      : day >= 1 && day <= 5 && minuteOfDay >= 13 * 60 + 30 && minuteOfDay < 20 * 60;
    const k = Math.floor(t / 1000) + ticker.length * 104_729 + width;
    const h1 = hash32(k);
    const h2 = hash32(k ^ 0x27d4eb2f);
    if (!open || h1 % 29 === 0) return undefined;
    const [scale, base, step] = forex ? [5, 110_000 + (Math.floor(t / 3_600_000) % 9000), 1]
      : ticker.startsWith('I:') ? [2, 1_500_000 + (Math.floor(t / 3_600_000) % 90_000), 5] : [4, 1_500_000 + (Math.floor(t / 3_600_000) % 90_000), 10];
    const o = base + (h1 % 200) * step;
    const c = base + (h2 % 200) * step;
    const h = Math.max(o, c) + ((h1 >>> 8) % 30) * step;
    const l = Math.min(o, c) - ((h2 >>> 8) % 30) * step;
    const bar: PolygonBar = { t, o: num(o, scale), h: num(h, scale), l: num(l, scale), c: num(c, scale) };
    if (ticker.startsWith('I:')) return bar;
    const ticks = 1 + (h2 % 900);
    return { ...bar, v: String(forex ? ticks : ticks * 100), vw: num(Math.floor((o + c) / 2), scale), n: String(ticks) };
  }
}

/** A bar in the venue's key order (v, vw, o, c, h, l, t, n; indices o, c, h, l, t). */
export function polygonBarJson(b: PolygonBar): string {
  return b.v === undefined ? `{"o":${b.o},"c":${b.c},"h":${b.h},"l":${b.l},"t":${b.t}}`
    : `{"v":${b.v},"vw":${b.vw},"o":${b.o},"c":${b.c},"h":${b.h},"l":${b.l},"t":${b.t},"n":${b.n}}`;
}
