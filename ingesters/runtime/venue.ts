import type { FeedConfig } from '../../src/config.ts';
import type { Frame, OpsEvent } from './lander.ts';

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

/** One declarative file per venue: how to connect, what to send, how to read control frames. */
export interface WsVenue {
  venue: string;
  /** Channels a feed of this venue may list. */
  channels: readonly string[];
  /** The venue closes connections after this long; the runtime rotates before it. */
  maxConnectionSeconds?: number;
  url(feed: FeedConfig): string;
  /** Messages sent after the socket opens (for venues that subscribe by message). */
  subscribeMessages?(feed: FeedConfig): string[];
  classify(text: string): Classified;
  /** Optional gate for frames that need ordering (order-book snapshot + diffs). */
  gate?(ctx: SessionContext): FrameGate;
  /** Venue symbol for a canonical instrument (BTC/USDT -> btcusdt), used to build subscriptions. */
  venueSymbol(instrument: string): string;
}
