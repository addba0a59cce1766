import net from 'node:net';

/** Which way bytes travel: from the client (tickflow) to the server (venue, Postgres), or back. */
export type Direction = 'up' | 'down';

export interface ProxyOptions {
  /** The server behind the proxy; loopback only. */
  targetPort: number;
  /** Keep every byte sent to the client, per connection (for tests that reconstruct what arrived). */
  recordDown?: boolean;
}

/** One client connection through the proxy and its server side. */
export interface ProxiedConnection {
  readonly id: number;
  readonly client: net.Socket;
  readonly server: net.Socket;
  /** Bytes forwarded so far, each way. */
  up: number;
  down: number;
  /** Everything forwarded to the client (with recordDown). */
  readonly received: Buffer[];
  closed: boolean;
  /** Bytes of this connection vanish (see FaultProxy.blackhole). */
  blackholed: boolean;
  /** Bytes held back (see FaultProxy.hold) and whether the server closed while they were. */
  held?: { bytes: Buffer[]; serverClosed: boolean };
}

interface Truncation { direction: Direction; bytes: number; then: 'cut' | 'reset' }

const LOOPBACK = '127.0.0.1';

/**
 * A TCP proxy on 127.0.0.1 between tickflow and a local server (fake venue, Postgres) that does
 * to a connection what networks do, on command: cut it (FIN both ways), reset it (RST), black-hole
 * it (sockets stay open, bytes vanish), delay it, truncate it after a byte count, corrupt bytes,
 * refuse new connections. Every fault that takes a duration ends by itself; stop() destroys
 * everything, so nothing outlives the test.
 */
export class FaultProxy {
  readonly server: net.Server;
  port = 0;
  /** Connections accepted so far (refused ones included). */
  accepted = 0;
  refusedCount = 0;
  readonly connections: ProxiedConnection[] = [];
  private blackholed = false;
  private refusing = false;
  private delayMs = 0;
  private corruptEvery: { direction: Direction; every: number } | undefined;
  private truncation: Truncation | undefined;
  private holdAt: ((seen: Buffer) => number | undefined) | undefined;
  private timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: ProxyOptions) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, LOOPBACK, () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** The open connections. */
  get open(): ProxiedConnection[] { return this.connections.filter((c) => !c.closed); }

  /** Closes every open connection cleanly (FIN to both ends), after what was already forwarded. */
  cut(): number {
    const open = this.open;
    for (const c of open) { c.client.end(); c.server.end(); this.after(1000, () => this.destroy(c)); }
    return open.length;
  }

  /** Resets every open connection (TCP RST to both ends). */
  reset(): number {
    const open = this.open;
    for (const c of open) this.resetConnection(c);
    return open.length;
  }

  /**
   * Black hole: the connections open now stay up, but no byte gets through either way (nor pings,
   * nor pongs), as when a route or a NAT entry dies. Connections opened later pass (a reconnect
   * finds a working path). Ends after forMs (if given); returns how many connections it caught.
   */
  blackhole(on = true, forMs?: number): number {
    const open = this.open;
    for (const c of open) c.blackholed = on;
    if (on && forMs !== undefined) this.after(forMs, () => { for (const c of open) c.blackholed = false; });
    return open.length;
  }

  /** Black-holes every connection, new ones included, until blackholeAll(false) or forMs has passed. */
  blackholeAll(on = true, forMs?: number): void {
    this.blackholed = on;
    if (on && forMs !== undefined) this.after(forMs, () => { this.blackholed = false; });
  }

  /** Holds every forwarded chunk for ms (both ways) until delay(0) or forMs has passed. */
  delay(ms: number, forMs?: number): void {
    this.delayMs = ms;
    if (ms > 0 && forMs !== undefined) this.after(forMs, () => { this.delayMs = 0; });
  }

  /** Flips one byte in every `every` bytes forwarded in that direction, until corrupt(undefined). */
  corrupt(spec: { direction: Direction; every: number } | undefined): void { this.corruptEvery = spec; }

  /**
   * Forwards only `bytes` more bytes in that direction on each connection open now (counted from
   * now), then cuts (FIN) or resets it: a stream broken off in the middle of whatever it carried.
   * Connections opened later are not affected.
   */
  truncate(direction: Direction, bytes: number, then: 'cut' | 'reset' = 'cut'): void {
    this.truncation = { direction, bytes, then };
    for (const c of this.open) (c as ProxiedConnection & { budget?: number }).budget = bytes;
  }

  /**
   * Holds back what the server sends from a point on: `at` sees each connection's bytes from the
   * server so far and returns the offset where holding starts (undefined: not yet). Held bytes,
   * and the server's close after them, reach the client at release(), in one write: as when a
   * loaded machine reads a server's last messages and its close together.
   */
  hold(at: (seen: Buffer) => number | undefined): void { this.holdAt = at; }

  /** Sends every connection's held bytes in one write (then its close, if the server closed). */
  release(): void {
    this.holdAt = undefined;
    for (const c of this.connections) {
      const held = c.held;
      if (!held || c.closed) continue;
      c.held = undefined;
      c.client.write(Buffer.concat(held.bytes));
      if (held.serverClosed) { c.client.end(); this.after(1000, () => this.destroy(c)); }
    }
  }

  /** Refuses new connections (accepted, then reset at once) until refuse(false) or forMs has passed. */
  refuse(on = true, forMs?: number): void {
    this.refusing = on;
    if (on && forMs !== undefined) this.after(forMs, () => { this.refusing = false; });
  }

  /** Back to a plain pipe for new bytes (open connections stay as they are). */
  heal(): void {
    this.blackholed = false;
    this.refusing = false;
    this.delayMs = 0;
    this.corruptEvery = undefined;
    this.truncation = undefined;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.connections) this.destroy(c);
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    t.unref();
    this.timers.add(t);
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.refusing) { this.refusedCount++; client.resetAndDestroy(); return; }
    const server = net.connect({ host: LOOPBACK, port: this.opts.targetPort });
    const c: ProxiedConnection & { budget?: number } = {
      id: this.accepted, client, server, up: 0, down: 0, received: [], closed: false, blackholed: this.blackholed,
    };
    this.connections.push(c);
    client.setNoDelay(true);
    server.setNoDelay(true);
    const close = () => this.destroy(c);
    client.on('error', close);
    server.on('error', () => { if (!c.closed) this.resetConnection(c); });
    client.on('close', close);
    server.on('close', () => {
      if (c.held) { c.held.serverClosed = true; return; }
      if (!c.closed) { client.end(); this.after(1000, close); }
    });
    client.on('end', () => server.end());
    server.on('end', () => { if (!c.held) client.end(); });
    client.on('data', (chunk: Buffer) => this.forward(c, 'up', chunk));
    server.on('data', (chunk: Buffer) => this.forward(c, 'down', chunk));
  }

  private forward(c: ProxiedConnection & { budget?: number; seen?: Buffer }, direction: Direction, chunk: Buffer): void {
    if (c.closed || c.blackholed || this.blackholed) return;
    let data = chunk;
    if (direction === 'down' && c.held) { c.held.bytes.push(Buffer.from(data)); return; }
    if (direction === 'down' && this.holdAt) {
      const before = c.seen?.length ?? 0;
      c.seen = c.seen ? Buffer.concat([c.seen, data]) : Buffer.from(data);
      const at = this.holdAt(c.seen);
      if (at !== undefined) {
        c.held = { bytes: [Buffer.from(data.subarray(Math.max(0, at - before)))], serverClosed: false };
        data = data.subarray(0, Math.max(0, at - before));
      }
    }
    let finish: Truncation['then'] | undefined;
    if (this.truncation?.direction === direction && c.budget !== undefined) {
      if (data.length >= c.budget) {
        data = data.subarray(0, c.budget);
        finish = this.truncation.then;
      }
      c.budget -= data.length;
    }
    if (this.corruptEvery?.direction === direction && data.length > 0) {
      data = Buffer.from(data);
      const every = this.corruptEvery.every;
      const done = direction === 'up' ? c.up : c.down;
      for (let k = (every - (done % every)) % every; k < data.length; k += every) data[k] = data[k]! ^ 0x5a;
    }
    if (direction === 'up') c.up += data.length; else c.down += data.length;
    if (direction === 'down' && this.opts.recordDown) c.received.push(Buffer.from(data));
    const to = direction === 'up' ? c.server : c.client;
    const send = () => {
      if (c.closed) return;
      if (data.length > 0) to.write(data);
      if (finish === 'cut') { c.client.end(); c.server.end(); this.after(1000, () => this.destroy(c)); }
      if (finish === 'reset') this.resetConnection(c);
    };
    if (this.delayMs > 0) this.after(this.delayMs, send); else send();
  }

  private resetConnection(c: ProxiedConnection): void {
    if (c.closed) return;
    c.closed = true;
    c.client.resetAndDestroy();
    c.server.resetAndDestroy();
  }

  private destroy(c: ProxiedConnection): void {
    if (c.closed) return;
    c.closed = true;
    c.client.destroy();
    c.server.destroy();
  }
}
