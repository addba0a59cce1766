import { once } from 'node:events';
import type postgres from 'postgres';
import { connect, type Sql } from '../../src/db.ts';
import type { Logger } from '../../src/log.ts';
import { TickflowError } from '../../src/errors.ts';
import { redact } from '../../src/redact.ts';
import { monotonicMs } from './clock.ts';
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER, int8Field, tupleStart } from './copy-binary.ts';
import { uuidv7 } from './uuid.ts';

export type FrameSource = 'ws' | 'stream' | 'rest' | 'file' | 'socket';

/** One raw payload and its envelope, exactly as it lands in staging.frames. */
export interface Frame {
  venue: string;
  stream: string;
  sessionId: string | null;
  seq: number;
  receivedAt: string;
  source: FrameSource;
  request: string | null;
  payload: string;
  /**
   * Records of a decoded file as binary COPY fields (see ingesters/dukascopy/bi5.ts): the
   * frame's row of staging.tick_columns after its frame_id, landed in the same transaction.
   */
  columns?: Buffer;
}

export type EventKind = 'connecting' | 'connected' | 'subscribed' | 'ack' | 'error_frame' | 'disconnected'
  | 'rotating' | 'stale' | 'circuit_open' | 'circuit_closed' | 'resync' | 'snapshot' | 'sequence_break';

/** A connection lifecycle event, written to ops in the same transaction as the frames around it. */
export interface OpsEvent {
  sessionId: string;
  feed: string;
  venue: string;
  at: string;
  kind: EventKind;
  url?: string;
  detail?: Record<string, unknown>;
}

export interface LanderOptions {
  maxBatchFrames: number;
  flushIntervalMs: number;
  maxBufferedBytes: number;
  /** Normalize each batch in its landing transaction (a failure there never loses the frames). */
  normalizeInline?: boolean;
  /** Keep each frame's accept time so batch results carry receive-to-commit latencies (benchmarks). */
  trackAcceptTimes?: boolean;
}

export interface BatchResult {
  batchId: string;
  frames: number;
  counts: Record<string, number> | null;
  ms: number;
  /** Monotonic ms at which each frame of the batch was accepted (only with trackAcceptTimes). */
  acceptedAt?: number[];
  /** Monotonic ms at which the batch committed. */
  committedAt: number;
  /** Frames of the batch per venue and stream (for metrics). */
  streams: Array<{ venue: string; stream: string; frames: number }>;
}

const RETRY_MIN_MS = 100;
/** A landing attempt that has not settled by then is retried (the batch id makes that safe). */
const LAND_TIMEOUT_MS = 30_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`landing did not settle within ${ms} ms`)), ms);
  });
  p.catch(() => {}); // a late rejection of an abandoned attempt is expected
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
const RETRY_MAX_MS = 5_000;

function copyEscape(text: string): string {
  // COPY text format: backslash, tab, newline and carriage return must be escaped.
  return /[\\\t\n\r]/.test(text)
    ? text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : text;
}

function copyLine(batchId: string, f: Frame, frameId?: string): string {
  return `${frameId === undefined ? '' : `${frameId}\t`}${batchId}\t${f.venue}\t${f.stream}\t${f.sessionId ?? '\\N'}\t${f.seq}\t${f.receivedAt}\t${f.source}\t${
    f.request === null ? '\\N' : copyEscape(redact(f.request))}\t${copyEscape(f.payload)}\n`;
}

/** Binary COPY of decoded files' records into staging.tick_columns, each under its frame's id. */
export async function copyTickColumns(sql: postgres.Sql<{}> | postgres.TransactionSql<{}>,
                                      rows: Array<{ frameId: string; columns: Buffer }>): Promise<void> {
  const copy = await sql`copy staging.tick_columns (frame_id, ms, ask, bid, ask_volume, bid_volume) from stdin with (format binary)`.writable();
  if (!copy.write(COPY_BINARY_HEADER)) await once(copy, 'drain');
  for (const r of rows) {
    copy.write(tupleStart(6));
    copy.write(int8Field(BigInt(r.frameId)));
    if (!copy.write(r.columns)) await once(copy, 'drain');
  }
  copy.end(COPY_BINARY_TRAILER);
  await once(copy, 'finish');
}

/** What a buffered frame holds in memory, about: its payload, its columns and the envelope. */
const frameBytes = (f: Frame): number => f.payload.length + (f.columns?.length ?? 0) + 120;

function streamCounts(frames: Frame[]): BatchResult['streams'] {
  const counts = new Map<string, { venue: string; stream: string; frames: number }>();
  for (const f of frames) {
    const key = `${f.venue}\t${f.stream}`;
    const c = counts.get(key);
    if (c) c.frames++; else counts.set(key, { venue: f.venue, stream: f.stream, frames: 1 });
  }
  return [...counts.values()];
}

/**
 * The landing writer: frames in, COPY batches out. It flushes when a batch is full or a few
 * tens of milliseconds after its first frame, keeps memory bounded (offer() reports when the
 * buffer is over its limit and 'drain' is emitted when it is not), and retries a failed batch
 * with the same batch id until it commits, so an accepted frame is never lost and never landed
 * twice.
 */
export class Lander {
  private frames: Frame[] = [];
  private acceptTimes: number[] = [];
  private events: OpsEvent[] = [];
  private bytes = 0;
  /** Monotonic ms at which the buffer last went from empty to holding something. */
  private pendingSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closing = false;
  private waiters: Array<() => void> = [];
  private listeners: Array<(r: BatchResult) => void> = [];
  private eventListeners: Array<(e: OpsEvent) => void> = [];
  /** Frames accepted but not yet committed. */
  pending = 0;
  landedFrames = 0;
  acceptedFrames = 0;
  private acceptedEvents = 0;
  private landedEvents = 0;
  failedAttempts = 0;

  private sql: Sql;

  /** The writer owns one connection: batches are sequential, and a broken one is replaced whole. */
  constructor(private readonly url: string, private readonly opts: LanderOptions, private readonly log: Logger) {
    this.sql = connect(url, { max: 1, application: 'tickflow-lander' });
  }

  /** Accepts a frame; returns false when the buffer is over its limit (the caller should pause). */
  offer(frame: Frame): boolean {
    if (this.closing) throw new TickflowError('LANDING_CLOSED', `frame for ${frame.venue}/${frame.stream} offered after close()`);
    if (this.frames.length === 0 && this.events.length === 0) this.pendingSince = monotonicMs();
    this.frames.push(frame);
    if (this.opts.trackAcceptTimes) this.acceptTimes.push(monotonicMs());
    this.bytes += frameBytes(frame);
    this.pending++;
    this.acceptedFrames++;
    this.schedule();
    return this.bytes < this.opts.maxBufferedBytes;
  }

  event(e: OpsEvent): void {
    for (const l of this.eventListeners) l(e);
    if (this.frames.length === 0 && this.events.length === 0) this.pendingSince = monotonicMs();
    this.events.push(e);
    this.acceptedEvents++;
    this.schedule();
  }

  /** Resolves when the buffer is below its limit again. */
  async drain(): Promise<void> {
    if (this.bytes < this.opts.maxBufferedBytes) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  onBatch(listener: (r: BatchResult) => void): void { this.listeners.push(listener); }

  /** Called with every connection event as it is accepted (before it lands). */
  onEvent(listener: (e: OpsEvent) => void): void { this.eventListeners.push(listener); }

  private schedule(): void {
    if (this.frames.length >= this.opts.maxBatchFrames && !this.flushing) { void this.kick(); return; }
    if (!this.timer && !this.flushing) {
      // The flush interval counts from the oldest waiting frame, not from now.
      const wait = Math.max(0, this.opts.flushIntervalMs - (monotonicMs() - this.pendingSince));
      this.timer = setTimeout(() => { this.timer = undefined; void this.kick(); }, wait);
    }
  }

  private kick(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (!this.flushing) {
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = undefined;
        if (this.frames.length + this.events.length > 0) this.schedule();
      });
    }
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    while (this.frames.length > 0 || this.events.length > 0) {
      const frames = this.frames.splice(0, this.opts.maxBatchFrames);
      const acceptedAt = this.opts.trackAcceptTimes ? this.acceptTimes.splice(0, frames.length) : undefined;
      const events = frames.length < this.opts.maxBatchFrames ? this.events.splice(0) : [];
      await this.landWithRetry(frames, events, acceptedAt);
      let freed = 0;
      for (const f of frames) freed += frameBytes(f);
      this.bytes -= freed;
      this.pending -= frames.length;
      this.landedFrames += frames.length;
      this.landedEvents += events.length;
      if (this.bytes < this.opts.maxBufferedBytes && this.waiters.length > 0) {
        for (const w of this.waiters.splice(0)) w();
      }
      // Below a full batch, land at once only what has waited the flush interval already
      // (it arrived while this batch landed); otherwise the timer does, so small batches do not spin.
      if (this.frames.length < this.opts.maxBatchFrames && !this.closing
          && (this.frames.length + this.events.length === 0 || monotonicMs() - this.pendingSince < this.opts.flushIntervalMs)) break;
    }
  }

  private async landWithRetry(frames: Frame[], events: OpsEvent[], acceptedAt?: number[]): Promise<void> {
    const batchId = uuidv7();
    let delay = RETRY_MIN_MS;
    for (;;) {
      const started = monotonicMs();
      try {
        const counts = await withTimeout(this.land(batchId, frames, events), LAND_TIMEOUT_MS);
        const committedAt = monotonicMs();
        const result = { batchId, frames: frames.length, counts, ms: committedAt - started, committedAt, acceptedAt,
          streams: this.listeners.length > 0 ? streamCounts(frames) : [] };
        for (const l of this.listeners) l(result);
        return;
      } catch (err) {
        this.failedAttempts++;
        // Drop the connection whatever state it is in; the retry opens a fresh one.
        const broken = this.sql;
        this.sql = connect(this.url, { max: 1, application: 'tickflow-lander' });
        void broken.end({ timeout: 0 }).catch(() => {});
        this.log.warn({ err: redact(String((err as Error).message)), batchId, frames: frames.length, retryInMs: delay },
          'landing batch failed; retrying the same batch');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(RETRY_MAX_MS, delay * 2);
      }
    }
  }

  private async land(batchId: string, frames: Frame[], events: OpsEvent[]): Promise<Record<string, number> | null> {
    let counts: Record<string, number> | null = null;
    await this.sql.begin(async (tx) => {
      // The batch's earliest and latest receive times (our own fixed-width ISO text, so text order
      // is time order): normalization reads only the staging partitions between them.
      let first: string | null = null;
      let last: string | null = null;
      for (const f of frames) {
        if (first === null || f.receivedAt < first) first = f.receivedAt;
        if (last === null || f.receivedAt > last) last = f.receivedAt;
      }
      const inserted = await tx`
        insert into ops.batches (batch_id, frames, first_received_at, last_received_at)
        values (${batchId}, ${frames.length}, ${first}, ${last})
        on conflict (batch_id) do nothing
        returning batch_id`;
      if (inserted.length === 0) return; // committed by an attempt whose acknowledgement was lost
      if (frames.length > 0) {
        // Frames with records as columns take their frame ids first, to land their columns under them.
        const ids = frames.some((f) => f.columns)
          ? (await tx<{ id: string }[]>`select nextval('staging.frame_id_seq')::text as id from generate_series(1, ${frames.length})`)
            .map((r) => r.id)
          : undefined;
        const copy = ids
          ? await tx`copy staging.frames (frame_id, batch_id, venue, stream, session_id, seq, received_at, source, request, payload) from stdin`.writable()
          : await tx`copy staging.frames (batch_id, venue, stream, session_id, seq, received_at, source, request, payload) from stdin`.writable();
        let chunk = '';
        for (let k = 0; k < frames.length; k++) {
          chunk += copyLine(batchId, frames[k]!, ids?.[k]);
          if (chunk.length > 1 << 16) {
            if (!copy.write(chunk)) await once(copy, 'drain');
            chunk = '';
          }
        }
        copy.end(chunk);
        await once(copy, 'finish');
        if (ids) {
          await copyTickColumns(tx, frames.flatMap((f, k) => (f.columns ? [{ frameId: ids[k]!, columns: f.columns }] : [])));
        }
      }
      if (events.length > 0) {
        const doc = events.map((e) => ({ ...e, url: e.url ? redact(e.url) : undefined,
          detail: e.detail ? JSON.parse(redact(JSON.stringify(e.detail))) : {} }));
        await tx`select ops.record_events(${tx.json(doc)})`;
      }
      if (frames.length > 0 && this.opts.normalizeInline !== false) {
        try {
          const [row] = await tx.savepoint((sp) => sp`select staging.normalize_batch(${batchId}) as counts`);
          counts = (row?.counts ?? null) as Record<string, number> | null;
        } catch (err) {
          // The frames stay landed; the catch-up job normalizes the batch later.
          const message = redact((err as Error).message);
          this.log.error({ batchId, err: message }, 'normalization failed; batch kept for the catch-up job');
          await tx`update ops.batches set normalize_error = ${message} where batch_id = ${batchId}`;
        }
      }
    });
    return counts;
  }

  /** Lands everything accepted before the call (frames that keep arriving do not extend it). */
  async flush(): Promise<void> {
    const frames = this.acceptedFrames;
    const events = this.acceptedEvents;
    while (this.landedFrames < frames || this.landedEvents < events) {
      await this.kick();
    }
  }

  /** Flushes and refuses further frames. */
  async close(): Promise<void> {
    this.closing = true;
    await this.flush();
    await this.sql.end({ timeout: 5 });
  }
}
