import http from 'node:http';
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';

/** A captured line: receive time (ns) and the raw message exactly as the venue sent it. */
export interface CapturedLine { ns: bigint; text: string }

/** Reads a hftbacktest-format capture ("<ns> <raw message>" per line). */
export function readCapture(file: string): CapturedLine[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
    const sp = line.indexOf(' ');
    return { ns: BigInt(line.slice(0, sp)), text: line.slice(sp + 1) };
  });
}

export interface FakeBinanceOptions {
  /** Frames each new connection receives, in order (filtered by the streams it asked for). */
  frames: () => Iterable<string>;
  /** Milliseconds between frames (0: as fast as the socket takes them). */
  intervalMs?: number;
  /** Frames per second, sent in 10 ms ticks (overrides intervalMs). */
  ratePerSecond?: number;
  /** REST depth snapshot bodies by symbol (e.g. BTCUSDT). */
  snapshots?: Record<string, string>;
  /** Delay before the REST snapshot answers. */
  snapshotDelayMs?: number;
  /** Send frames of streams the connection did not ask for too (a venue that misroutes or invents a stream). */
  sendUnsubscribed?: boolean;
}

/**
 * A local Binance: the combined-stream WebSocket (/stream?streams=...) and REST /api/v3/depth on
 * 127.0.0.1, replaying captured frames. Controls cut connections, black-hole them (no frames,
 * no pong), and swap snapshots, so tests can do to tickflow what the venue and the network do.
 */
export class FakeBinance {
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  port = 0;
  connections = 0;
  /** Data frames sent on every connection so far. */
  framesSent = 0;
  restRequests: string[] = [];
  private sockets = new Set<WebSocket>();
  private blackholed = false;

  constructor(private opts: FakeBinanceOptions) {
    this.server = http.createServer((req, res) => this.rest(req, res));
    this.wss = new WebSocketServer({ server: this.server, path: '/stream', autoPong: true });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `ws://127.0.0.1:${this.port}`;
  }

  get restUrl(): string { return `http://127.0.0.1:${this.port}`; }

  setSnapshot(symbol: string, body: string): void { (this.opts.snapshots ??= {})[symbol] = body; }
  setFrames(frames: () => Iterable<string>): void { this.opts.frames = frames; }

  /** Closes every connection abruptly (TCP reset), as a network drop does. */
  dropAll(): void { for (const ws of this.sockets) ws.terminate(); }

  /** Stops sending and stops answering pings on every open connection, leaving TCP up. */
  blackhole(on = true): void {
    this.blackholed = on;
    for (const ws of this.sockets) {
      const sock = (ws as unknown as { _socket: net.Socket })._socket;
      if (on) sock.pause(); else sock.resume();
    }
  }

  get openConnections(): number { return this.sockets.size; }

  private onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    this.connections++;
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    const url = new URL(req.url ?? '/', 'http://x');
    const wanted = new Set((url.searchParams.get('streams') ?? '').split('/'));
    const it = this.opts.frames()[Symbol.iterator]();
    if (this.opts.ratePerSecond) {
      const perTick = Math.max(1, Math.round(this.opts.ratePerSecond / 100));
      const started = performance.now();
      let sent = 0;
      const tick = () => {
        if (ws.readyState !== ws.OPEN) return;
        // Catch up to the schedule, so timer jitter does not lower the rate.
        const due = Math.floor(((performance.now() - started) / 10) + 1) * perTick;
        while (sent < due) {
          const next = it.next();
          if (next.done) return;
          ws.send(next.value);
          this.framesSent++;
          sent++;
        }
        setTimeout(tick, 10);
      };
      setTimeout(tick, 10);
      return;
    }
    const send = () => {
      if (ws.readyState !== ws.OPEN) return;
      if (this.blackholed) { setTimeout(send, 20); return; }
      for (let n = 0; n < 200; n++) {
        const next = it.next();
        if (next.done) return;
        const m = /^\{"stream":"([^"]+)"/.exec(next.value);
        if (m && !wanted.has(m[1]!) && !this.opts.sendUnsubscribed) continue;
        ws.send(next.value);
        this.framesSent++;
        if (this.opts.intervalMs) { setTimeout(send, this.opts.intervalMs); return; }
        if (ws.bufferedAmount > 1 << 20) break;
      }
      setImmediate(send);
    };
    setTimeout(send, 10);
  }

  private rest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.restRequests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/v3/depth') {
      const body = this.opts.snapshots?.[url.searchParams.get('symbol') ?? ''];
      setTimeout(() => {
        if (!body) { res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":-1121,"msg":"Invalid symbol."}'); return; }
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      }, this.opts.snapshotDelayMs ?? 0);
      return;
    }
    res.writeHead(404).end();
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
