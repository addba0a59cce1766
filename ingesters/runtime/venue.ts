import type { FeedConfig } from '../../src/config.ts';
import type { Frame, OpsEvent } from './lander.ts';
import type { Transport, TransportHandlers, TransportKind } from './transport.ts';

/** What a venue file says a raw text frame is, decided without parsing prices or times. */
export type Classified =
  | { kind: 'data'; stream: string; key?: string }
  | { kind: 'ack' | 'error' | 'heartbeat'; detail?: Record<string, unknown> }
  | { kind: 'shutdown'; detail?: Record<string, unknown> };

/** The context a venue hook gets for one connection (session). */
export interface SessionContext {
  readonly feed: FeedConfig;
  readonly sessionId: string;
  /** Lands a frame of this session (assigns the session sequence number). */
  land(stream: string, payload: string, receivedAt: string, extra?: Partial<Pick<Frame, 'source' | 'request'>>): void;
  event(kind: OpsEvent['kind'], detail?: Record<string, unknown>): void;
  /** Ends the connection so the runtime reconnects (for example after an unrecoverable sequence break). */
  reconnect(reason: string): void;
  readonly signal: AbortSignal;
}

/** A hook that may hold frames back (order-book sync) and release them in the right order. */
export interface FrameGate {
  /** Returns true when it took the frame (it will land it itself, later or now). */
  take(stream: string, key: string | undefined, payload: string, receivedAt: string): boolean;
  close(): void;
}

/** What a handshake step asks of the runtime: messages to send, and whether it is over. */
export interface HandshakeStep {
  send?: string[];
  /** The connection is ready: the runtime sends the subscribe messages next. */
  done?: boolean;
  /**
   * The venue refused us (a rejected key): an error event, then the circuit breaker's slow
   * retry, because reconnecting at once cannot help.
   */
  refused?: string;
}

/** A per-connection state machine for venues that must be greeted before they stream. */
export interface Handshake {
  /** Called when the connection opens. */
  open(): HandshakeStep;
  /** Called for every frame until a step says done or refused. */
  frame(text: string): HandshakeStep;
}

/** Secrets from the environment (config.secrets), by name. */
export type Secrets = Readonly<Record<string, string>>;

/** What a venue-supplied transport gets from the runtime besides the feed and the handlers. */
export interface TransportContext {
  readonly secrets: Secrets;
  readonly maxPayloadBytes: number;
}

/** One declarative file per venue: how to connect, what to send, how to read control frames. */
export interface WsVenue {
  venue: string;
  /** Channels a feed of this venue may list. */
  channels: readonly string[];
  /** How frames arrive: a WebSocket (the default) or a newline-delimited HTTP stream. */
  transport?: TransportKind;
  /**
   * A venue reached through its own socket protocol and client library opens its connection
   * here instead: it delivers each message as text (classified like any frame), subscribes by
   * itself once open, and resubscribes when the venue says it lost the subscriptions. Its
   * frames land with source 'socket'.
   */
  openTransport?(feed: FeedConfig, handlers: TransportHandlers, ctx: TransportContext): Transport;
  /** The venue closes connections after this long; the runtime rotates before it. */
  maxConnectionSeconds?: number;
  /** The venue's limit on new connections per second (shared by every feed of the venue in this process). */
  maxNewConnectionsPerSecond?: number;
  /** Silence after which a connection is dead whatever the feed configures (the venue's heartbeat promise). */
  maxStaleSeconds?: number;
  /** Throws TickflowError CONFIG_INVALID when a feed cannot work (channels of two clusters, a missing key). */
  validate?(feed: FeedConfig, secrets: Secrets): void;
  url(feed: FeedConfig): string;
  /** Request headers (credentials go here, never in the URL: the URL is recorded in ops). */
  headers?(feed: FeedConfig, secrets: Secrets): Record<string, string>;
  /** Greeting before subscribing (authentication); without it, subscribe messages go at open. */
  handshake?(feed: FeedConfig, secrets: Secrets): Handshake;
  /** Messages sent after the socket opens (for venues that subscribe by message). */
  subscribeMessages?(feed: FeedConfig): string[];
  classify(text: string, feed: FeedConfig): Classified;
  /** Optional gate for frames that need ordering (order-book snapshot + diffs). */
  gate?(ctx: SessionContext): FrameGate;
  /** Venue symbol for a canonical instrument (BTC/USDT -> btcusdt), used to build subscriptions. */
  venueSymbol(instrument: string): string;
}
