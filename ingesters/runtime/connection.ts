import type { FeedConfig } from '../../src/config.ts';
import type { Logger } from '../../src/log.ts';
import { redact } from '../../src/redact.ts';
import { monotonicMs, receiveTime } from './clock.ts';
import type { Frame, Lander, OpsEvent } from './lander.ts';
import { reserveConnectionSlot } from './limiter.ts';
import { openTransport, type CloseDetail, type Transport, type TransportHandlers } from './transport.ts';
import { uuidv7 } from './uuid.ts';
import type { FrameGate, Handshake, HandshakeStep, Secrets, SessionContext, WsVenue } from './venue.ts';

export interface RuntimeOptions {
  backoffBaseMs: number;
  backoffCapMs: number;
  /** A connection that delivered data for this long resets the backoff. */
  goodDataMs: number;
  /** Consecutive failed connections that open the circuit breaker... */
  circuitAfter: number;
  /**
   * ...once the feed has also been failing for this long (a venue refusing the connection opens it
   * at once). A venue outage of a minute or two is ridden out by the backoff alone, so the
   * reconnect comes within one backoff interval of the venue's return.
   */
  circuitAfterMs: number;
  /** While the circuit is open, one attempt per this interval. */
  circuitRetryMs: number;
  /**
   * The largest frame landed. A larger one (up to maxReceiveBytes on a WebSocket; any length on
   * an HTTP stream, skipped to its newline) lands as a stand-in on stream 'oversize' (its size,
   * the limit and its first bytes), which SQL quarantines with the reason; the connection goes on.
   */
  maxPayloadBytes: number;
  /** The WebSocket's own payload limit (ws maxPayload): a frame past it closes the connection with 1009. */
  maxReceiveBytes: number;
  /** Frames that arrived before a rotation's new connection took over are cut this long after. */
  rotationOverlapMs: number;
  /** Secrets from the environment; venue files read their credentials from here. */
  secrets: Secrets;
}

export const DEFAULT_RUNTIME: RuntimeOptions = {
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  goodDataMs: 10_000,
  circuitAfter: 8,
  circuitAfterMs: 300_000,
  circuitRetryMs: 60_000,
  maxPayloadBytes: 8 * 1024 * 1024,
  maxReceiveBytes: 64 * 1024 * 1024,
  rotationOverlapMs: 2_000,
  secrets: {},
};

export type FeedState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'circuit_open' | 'stopped';

interface Session {
  id: string;
  /** Undefined while the session waits for a connection slot. */
  transport: Transport | undefined;
  connectTimer: NodeJS.Timeout | undefined;
  seq: number;
  openedAt: number;
  lastActivity: number;
  firstFrameAt: string | undefined;
  lastFrameAt: string | undefined;
  dataSince: number | undefined;
  gate: FrameGate | undefined;
  /** Set while a venue handshake is under way. */
  handshake: Handshake | undefined;
  /** The venue refused this connection (rejected credentials): retrying soon cannot help. */
  refused: boolean;
  watchdog: NodeJS.Timeout | undefined;
  abort: AbortController;
  closeReason: string | undefined;
  ended: boolean;
  closeWaiters: Array<() => void>;
}

/**
 * The shared live-feed runtime: connect (a WebSocket or a newline-delimited HTTP stream, see
 * transport.ts), greet the venue where it wants a handshake, subscribe, probe for liveness
 * where the protocol can, watch for silence, reconnect with capped full-jitter backoff that
 * resets after good data, pace new connections where the venue limits them, rotate before the
 * venue's forced disconnect (new connection first, overlap deduplicated by natural keys in SQL),
 * and trip a circuit breaker when a feed keeps failing or the venue refuses it. Every lifecycle
 * step is an ops event. It knows no venue by name.
 */
export class WsFeed {
  state: FeedState = 'idle';
  messages = 0;
  reconnects = 0;
  lastFrameMono = 0;
  private active: Session | undefined;
  private next: Session | undefined;
  private failures = 0;
  /** Monotonic ms of the first failed connection of the current run of failures. */
  private failingSince: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** The next connection is the first of this run: it closes what a killed run left open. */
  private firstOfRun = false;
  private paused = new Set<Session>();
  private readonly opts: RuntimeOptions;
  private readonly staleAfterMs: number;

  constructor(
    private readonly venue: WsVenue,
    readonly feed: FeedConfig,
    private readonly lander: Lander,
    private readonly log: Logger,
    opts: Partial<RuntimeOptions> = {},
  ) {
    this.opts = { ...DEFAULT_RUNTIME, ...opts };
    venue.validate?.(feed, this.opts.secrets);
    this.staleAfterMs = Math.min(feed.staleAfterSeconds, venue.maxStaleSeconds ?? Infinity) * 1000;
  }

  start(): void {
    this.stopping = false;
    this.firstOfRun = true;
    this.active = this.open();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.state = 'stopped';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.rotateTimer) clearTimeout(this.rotateTimer);
    const closing = [this.active, this.next].filter((s): s is Session => s !== undefined && !s.ended);
    await Promise.all(closing.map((s) => this.end(s, 'shutdown')));
  }

  private event(s: Session, kind: OpsEvent['kind'], detail?: Record<string, unknown>, url?: string): void {
    this.lander.event({ sessionId: s.id, feed: this.feed.name, venue: this.venue.venue, at: receiveTime(), kind, detail, url });
  }

  private open(): Session {
    const s: Session = {
      id: uuidv7(), transport: undefined, connectTimer: undefined, seq: 0, openedAt: monotonicMs(),
      lastActivity: monotonicMs(), firstFrameAt: undefined, lastFrameAt: undefined, dataSince: undefined,
      gate: undefined, handshake: undefined, refused: false, watchdog: undefined, abort: new AbortController(),
      closeReason: undefined, ended: false, closeWaiters: [],
    };
    if (this.state !== 'circuit_open') this.state = 'connecting';
    const wait = this.venue.maxNewConnectionsPerSecond
      ? reserveConnectionSlot(this.venue.venue, this.venue.maxNewConnectionsPerSecond) : 0;
    if (wait > 0) s.connectTimer = setTimeout(() => { s.connectTimer = undefined; this.connect(s, wait); }, wait);
    else this.connect(s, 0);
    return s;
  }

  private connect(s: Session, waitedMs: number): void {
    if (s.ended) return;
    const url = this.venue.url(this.feed);
    // A run that was killed (-9, power loss) never recorded its sessions' ends: the first
    // connection of the next run closes them in SQL and opens their gaps (ops.record_events).
    const first = this.firstOfRun ? { firstOfRun: true, channels: this.feed.channels, instruments: this.feed.instruments } : {};
    this.firstOfRun = false;
    this.event(s, 'connecting', { attempt: this.failures, ...first, ...(waitedMs > 0 ? { waitedForSlotMs: Math.round(waitedMs) } : {}) }, url);
    s.gate = this.venue.gate?.(this.context(s));
    s.lastActivity = monotonicMs();
    const handlers: TransportHandlers = {
      onOpen: () => {
        s.lastActivity = monotonicMs();
        this.event(s, 'connected');
        s.watchdog = setInterval(() => this.checkStale(s), Math.min(1000, this.staleAfterMs / 4));
        const hs = this.venue.handshake?.(this.feed, this.opts.secrets);
        if (hs) { s.handshake = hs; this.step(s, hs.open()); } else this.subscribe(s);
      },
      onMessage: (text) => this.onMessage(s, text),
      onOversize: (bytes, head) => this.onOversize(s, bytes, head),
      onActivity: () => { s.lastActivity = monotonicMs(); },
      onRefused: (status, body) => {
        // 401 and 403 say the credentials are wrong: reconnecting soon cannot help.
        if (status === 401 || status === 403) s.refused = true;
        s.closeReason ??= `refused: HTTP ${status}`;
        this.event(s, 'error_frame', { status, raw: body });
      },
      onError: (err) => {
        s.closeReason ??= `error: ${redact(err.message)}`;
        this.log.warn({ session: s.id, err: redact(err.message) }, 'connection error');
      },
      onClose: (code, reason, detail) => this.onClose(s, code, reason, detail),
    };
    s.transport = this.venue.openTransport
      ? this.venue.openTransport(this.feed, handlers, { secrets: this.opts.secrets, maxPayloadBytes: this.opts.maxPayloadBytes })
      : openTransport(this.venue.transport ?? 'ws', {
        url, headers: this.venue.headers?.(this.feed, this.opts.secrets), maxPayloadBytes: this.opts.maxPayloadBytes,
        maxReceiveBytes: this.opts.maxReceiveBytes,
      }, handlers);
  }

  private subscribe(s: Session): void {
    for (const m of this.venue.subscribeMessages?.(this.feed) ?? []) s.transport?.send(m);
  }

  /** Applies one handshake step: send what it asks, then subscribe once it is done. */
  private step(s: Session, st: HandshakeStep): void {
    for (const m of st.send ?? []) s.transport?.send(m);
    if (st.refused !== undefined) {
      s.handshake = undefined;
      s.refused = true;
      this.event(s, 'error_frame', { reason: `handshake refused: ${st.refused}` });
      s.closeReason = `refused: ${st.refused}`;
      s.transport?.terminate();
      return;
    }
    if (st.done) {
      s.handshake = undefined;
      this.subscribe(s);
    }
  }

  private context(s: Session): SessionContext {
    return {
      feed: this.feed,
      sessionId: s.id,
      signal: s.abort.signal,
      land: (stream, payload, receivedAt, extra) => this.land(s, stream, payload, receivedAt, extra),
      event: (kind, detail) => this.event(s, kind, detail),
      reconnect: (reason) => { s.closeReason = reason; s.transport?.terminate(); },
    };
  }

  private land(s: Session, stream: string, payload: string, receivedAt: string,
               extra?: Partial<Pick<Frame, 'source' | 'request'>>): void {
    const ok = this.lander.offer({
      venue: this.venue.venue, stream, sessionId: s.id, seq: ++s.seq, receivedAt,
      source: extra?.source ?? (this.venue.openTransport ? 'socket' : this.venue.transport === 'http-stream' ? 'stream' : 'ws'), request: extra?.request ?? null, payload,
    });
    if (!ok && !this.paused.has(s)) {
      // Backpressure: stop reading from the connection until the landing buffer drains.
      this.paused.add(s);
      s.transport?.pause();
      void this.lander.drain().then(() => { this.paused.delete(s); if (!s.ended) s.transport?.resume(); });
    }
  }

  private onMessage(s: Session, text: string): void {
    if (s.ended) return;
    const receivedAt = receiveTime();
    const now = monotonicMs();
    s.lastActivity = now;
    const c = this.venue.classify(text, this.feed); // binary frames arrive base64-encoded
    if (c.kind === 'data') {
      this.messages++;
      this.lastFrameMono = now;
      s.lastFrameAt = receivedAt;
      if (s.firstFrameAt === undefined) {
        s.firstFrameAt = receivedAt;
        s.dataSince = now;
        this.event(s, 'subscribed', { firstFrameAt: receivedAt });
        this.onFirstData(s);
      }
      if (!s.gate?.take(c.stream, c.key, text, receivedAt)) this.land(s, c.stream, text, receivedAt);
      return;
    }
    if (c.kind === 'ack') this.event(s, 'ack', { ...c.detail, raw: text.slice(0, 500) });
    else if (c.kind === 'error') this.event(s, 'error_frame', { ...c.detail, raw: text.slice(0, 500) });
    if (s.handshake) { this.step(s, s.handshake.frame(text)); return; }
    if (c.kind !== 'shutdown') return;
    // The venue announced it will close this connection: take over with a new one first.
    this.event(s, 'rotating', { reason: 'venue shutdown notice', raw: text.slice(0, 200) });
    this.rotate();
  }

  /** A frame over the payload limit: never landed raw, never dropped unseen. */
  private onOversize(s: Session, bytes: number, head: string): void {
    if (s.ended) return;
    s.lastActivity = monotonicMs();
    this.log.warn({ session: s.id, bytes, limit: this.opts.maxPayloadBytes }, 'frame over the payload limit: quarantined');
    this.land(s, 'oversize', JSON.stringify({ bytes, limit: this.opts.maxPayloadBytes, head }), receiveTime());
  }

  private onFirstData(s: Session): void {
    if (s === this.next && this.active && !this.active.ended) {
      // A rotation's new connection is live: let the old one overlap briefly, then close it.
      const old = this.active;
      this.active = s;
      this.next = undefined;
      setTimeout(() => { void this.end(old, 'rotated'); }, this.opts.rotationOverlapMs);
    }
    if (s === this.active) {
      if (this.state === 'circuit_open') this.event(s, 'circuit_closed');
      this.state = 'connected';
      this.scheduleRotation();
    }
  }

  private scheduleRotation(): void {
    if (this.rotateTimer) clearTimeout(this.rotateTimer);
    const seconds = this.feed.rotateAfterSeconds ?? (this.venue.maxConnectionSeconds ? this.venue.maxConnectionSeconds - 3600 : undefined);
    if (!seconds) return;
    this.rotateTimer = setTimeout(() => { this.rotate(); }, seconds * 1000);
  }

  /** Opens the replacement connection; the current one closes once the new one has data. */
  rotate(): void {
    if (this.stopping || this.next) return;
    if (this.active) this.event(this.active, 'rotating', { reason: 'scheduled' });
    this.next = this.open();
  }

  private checkStale(s: Session): void {
    if (s.ended) return;
    const idle = monotonicMs() - s.lastActivity;
    if (idle > this.staleAfterMs) {
      this.event(s, 'stale', { silentMs: Math.round(idle) });
      s.closeReason = `stale: no frame for ${Math.round(idle)} ms`;
      s.transport?.terminate();
    } else if (idle > this.staleAfterMs / 2) {
      s.transport?.ping(); // a half-open TCP connection answers nothing; a live one answers pong
    }
  }

  private end(s: Session, reason: string): Promise<void> {
    if (s.ended) return Promise.resolve();
    s.closeReason = reason;
    if (!s.transport) {
      // Still waiting for a connection slot: nothing was opened.
      if (s.connectTimer) clearTimeout(s.connectTimer);
      s.ended = true;
      return Promise.resolve();
    }
    const transport = s.transport;
    return new Promise((resolve) => {
      s.closeWaiters.push(resolve);
      transport.close(reason);
      setTimeout(() => { transport.terminate(); resolve(); }, 2000).unref();
    });
  }

  private onClose(s: Session, code: number, reason: string, detail: CloseDetail): void {
    if (s.ended) { for (const w of s.closeWaiters.splice(0)) w(); return; }
    s.ended = true;
    s.abort.abort();
    s.gate?.close();
    if (s.watchdog) clearInterval(s.watchdog);
    this.paused.delete(s);
    const why = s.closeReason ?? (reason ? `closed by venue: ${code} ${reason}` : `closed: ${code}`);
    // channels and instruments: the gap ledger opens one gap per instrument and channel.
    this.event(s, 'disconnected', { reason: why, code, hadData: s.firstFrameAt !== undefined,
      lastFrameAt: s.lastFrameAt ?? null, channels: this.feed.channels, instruments: this.feed.instruments, ...detail });
    // Our own closes (shutdown, rotation) are routine; anything else loses data until the reconnect.
    if (why === 'shutdown' || why === 'rotated') this.log.info({ session: s.id, reason: why }, 'disconnected');
    else this.log.warn({ session: s.id, reason: why, hadData: s.firstFrameAt !== undefined }, 'disconnected');
    for (const w of s.closeWaiters.splice(0)) w();
    if (s === this.next) { this.next = undefined; return; }
    if (s !== this.active || this.stopping) return;
    if (this.next && !this.next.ended) { this.active = this.next; this.next = undefined; return; }
    this.active = undefined;
    const good = s.dataSince !== undefined && monotonicMs() - s.dataSince >= this.opts.goodDataMs;
    this.failures = s.refused ? Math.max(this.failures + 1, this.opts.circuitAfter) : good ? 0 : this.failures + 1;
    if (this.failures === 0) this.failingSince = undefined;
    else this.failingSince ??= monotonicMs();
    this.scheduleReconnect(s.refused);
  }

  private scheduleReconnect(refused = false): void {
    let delay: number;
    const failingMs = this.failingSince === undefined ? 0 : monotonicMs() - this.failingSince;
    if (this.failures >= this.opts.circuitAfter && (refused || this.state === 'circuit_open' || failingMs >= this.opts.circuitAfterMs)) {
      if (this.state !== 'circuit_open') {
        this.lander.event({ sessionId: uuidv7(), feed: this.feed.name, venue: this.venue.venue, at: receiveTime(),
          kind: 'circuit_open', detail: { failures: this.failures, failingMs: Math.round(failingMs), retryEveryMs: this.opts.circuitRetryMs,
            ...(refused ? { refused: true } : {}) } });
        this.log.error({ failures: this.failures, refused }, refused
          ? 'venue refused the feed: circuit open, retrying slowly'
          : 'feed keeps failing: circuit open, retrying slowly');
      }
      this.state = 'circuit_open';
      delay = this.opts.circuitRetryMs;
    } else {
      this.state = 'backoff';
      const ceiling = Math.min(this.opts.backoffCapMs, this.opts.backoffBaseMs * 2 ** this.failures);
      delay = this.opts.backoffBaseMs / 2 + Math.random() * ceiling;
    }
    this.reconnects++;
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; if (!this.stopping) this.active = this.open(); }, delay);
  }
}
