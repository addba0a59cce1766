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
    if (url.searchParams.get('apiKey') !== this.opts.apiKey && req.headers.authorization !== `Bearer ${this.opts.apiKey}`) {
      res.writeHead(401, { 'content-type': 'application/json' })
        .end('{"status":"ERROR","request_id":"x","error":"Unknown API Key"}');
      return;
    }
    if (this.rest429Left > 0) {
      this.rest429Left--;
      res.writeHead(429, { 'content-type': 'application/json' })
        .end('{"status":"ERROR","request_id":"x","error":"You\'ve exceeded the maximum requests per minute, please wait or upgrade your subscription to continue."}');
      return;
    }
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

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
