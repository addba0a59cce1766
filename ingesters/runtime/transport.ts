import { request } from 'undici';
import WebSocket from 'ws';

/**
 * How bytes reach the feed runtime: a WebSocket (one message per frame) or a long-lived HTTP
 * response streamed in chunks and split into newline-delimited messages. The runtime drives
 * both through this one interface, so connect, watchdog, backoff, rotation and the circuit
 * breaker are written once.
 */
export interface Transport {
  /** Sends a text message (WebSocket only: an HTTP stream has no upstream). */
  send(text: string): void;
  /** Sends a liveness probe where the protocol has one; false when it has none. */
  ping(): boolean;
  pause(): void;
  resume(): void;
  /** Closes politely where the protocol allows it (WebSocket close frame), else like terminate(). */
  close(reason: string): void;
  /** Drops the connection at once. */
  terminate(): void;
  readonly isOpen: boolean;
}

/** What a close carries besides its code and reason. */
export interface CloseDetail {
  /** Bytes of an incomplete last line that were discarded (HTTP stream cut mid-line). */
  discardedBytes?: number;
  discardedHead?: string;
}

export interface TransportHandlers {
  onOpen(): void;
  /** One complete message, as text. */
  onMessage(text: string, isBinary: boolean): void;
  /**
   * A message larger than maxPayloadBytes: not delivered, but reported with its size and its
   * first bytes (as text; base64 for binary), and the connection goes on.
   */
  onOversize?(bytes: number, head: string): void;
  /** Bytes arrived (any, even an incomplete line): the connection is alive. */
  onActivity(): void;
  /** The venue refused the connection (HTTP status other than 200, with the start of its body). */
  onRefused(status: number, body: string): void;
  onError(err: Error): void;
  /** Called once per transport. */
  onClose(code: number, reason: string, detail: CloseDetail): void;
}

export interface TransportOptions {
  url: string;
  headers?: Record<string, string>;
  /** The largest message delivered; a larger one goes to onOversize (or, without it, ends the connection). */
  maxPayloadBytes: number;
  /**
   * WebSocket only: the most one message may carry at all (ws maxPayload, so memory stays
   * bounded); past it the connection closes with 1009. Default: 8 times maxPayloadBytes.
   */
  maxReceiveBytes?: number;
}

/** How much of an oversized message is kept to say what it was. */
export const OVERSIZE_HEAD_BYTES = 1024;

function rawLength(data: WebSocket.RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawHead(data: WebSocket.RawData, isBinary: boolean): string {
  const buf = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? Buffer.from(data) : data;
  const head = buf.subarray(0, OVERSIZE_HEAD_BYTES);
  return isBinary ? head.toString('base64') : head.toString('utf8');
}

export type TransportKind = 'ws' | 'http-stream';

export function openTransport(kind: TransportKind, opts: TransportOptions, h: TransportHandlers): Transport {
  return kind === 'ws' ? wsTransport(opts, h) : httpStreamTransport(opts, h);
}

function wsTransport(opts: TransportOptions, h: TransportHandlers): Transport {
  const oversize = h.onOversize?.bind(h);
  const ws = new WebSocket(opts.url, {
    // Set explicitly (ws would allow 100 MiB): frames between maxPayloadBytes and this are
    // received whole and reported as oversized; a larger one cannot be skipped (1009 close).
    maxPayload: oversize ? (opts.maxReceiveBytes ?? opts.maxPayloadBytes * 8) : opts.maxPayloadBytes,
    handshakeTimeout: 10_000, perMessageDeflate: false,
    ...(opts.headers ? { headers: opts.headers } : {}),
  });
  let closed = false;
  ws.on('open', () => h.onOpen());
  ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    h.onActivity();
    if (oversize) {
      const bytes = rawLength(data);
      if (bytes > opts.maxPayloadBytes) { oversize(bytes, rawHead(data, isBinary)); return; }
    }
    h.onMessage(isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString(), isBinary);
  });
  ws.on('pong', () => h.onActivity());
  ws.on('error', (err) => h.onError(err));
  ws.on('close', (code, reason) => {
    if (closed) return;
    closed = true;
    h.onClose(code, reason.toString(), {});
  });
  return {
    send: (text) => ws.send(text),
    ping: () => { if (ws.readyState !== WebSocket.OPEN) return false; ws.ping(); return true; },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: (reason) => { if (ws.readyState === WebSocket.OPEN) ws.close(1000, reason); else ws.terminate(); },
    terminate: () => ws.terminate(),
    get isOpen() { return ws.readyState === WebSocket.OPEN; },
  };
}

/**
 * Splits a byte stream into lines ("\n", an optional "\r" before it removed). A line split
 * across chunks is reassembled; bytes after the last newline wait for the next chunk and are
 * never a message on their own (rest() reports them when the stream ends). Lines are decoded
 * as UTF-8 only once complete, so a multi-byte character split by a chunk boundary is intact.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes of an oversized line skipped so far (0: not skipping), and its first bytes. */
  private skipped = 0;
  private skippedHead: Buffer | undefined;

  /**
   * With onOversize, a line longer than maxLineBytes is skipped to its newline and reported
   * (size, first bytes), and the stream goes on; without it, push() throws.
   */
  constructor(private readonly maxLineBytes: number,
              private readonly onOversize?: (bytes: number, head: string) => void) {}

  /** The complete lines that chunk finishes (empty lines are skipped). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    this.each(chunk, (line) => { lines.push(line); });
    return lines;
  }

  /** Calls onLine for each complete line that chunk finishes, in order with the oversize reports. */
  each(chunk: Buffer, onLine: (line: string) => void): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      let line: Buffer;
      if (this.skipped > 0) {
        // The end of an oversized line: report it, then carry on with the next line.
        const bytes = this.skipped + (nl - start);
        const head = this.skippedHead!;
        this.skipped = 0;
        this.skippedHead = undefined;
        start = nl + 1;
        this.onOversize!(bytes, head.toString('utf8'));
        continue;
      }
      if (this.partBytes > 0) {
        this.parts.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.parts);
        this.parts = [];
        this.partBytes = 0;
      } else {
        line = chunk.subarray(start, nl);
      }
      const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
      start = nl + 1;
      if (end > this.maxLineBytes && this.onOversize) {
        this.onOversize(end, line.subarray(0, OVERSIZE_HEAD_BYTES).toString('utf8'));
        continue;
      }
      if (end > 0) onLine(line.toString('utf8', 0, end));
    }
    if (start < chunk.length) {
      if (this.skipped > 0) { this.skipped += chunk.length - start; return; }
      this.parts.push(chunk.subarray(start));
      this.partBytes += chunk.length - start;
      if (this.partBytes > this.maxLineBytes) {
        if (!this.onOversize) throw new Error(`line longer than ${this.maxLineBytes} bytes without a newline`);
        // Skip to the next newline: memory stays bounded, the lines after it are kept.
        const part = Buffer.concat(this.parts);
        this.skippedHead = Buffer.from(part.subarray(0, OVERSIZE_HEAD_BYTES)); // a copy: the rest is freed
        this.skipped = part.length;
        this.parts = [];
        this.partBytes = 0;
      }
    }
  }

  /** Bytes received after the last newline (an incomplete line; the kept head of one being skipped). */
  rest(): Buffer { return this.skipped > 0 ? this.skippedHead! : Buffer.concat(this.parts); }

  /** How many bytes the incomplete last line has (all of them, also while skipping an oversized one). */
  get restBytes(): number { return this.skipped > 0 ? this.skipped : this.partBytes; }
}

/** A GET whose response body is an endless stream of newline-delimited messages (undici). */
function httpStreamTransport(opts: TransportOptions, h: TransportHandlers): Transport {
  const abort = new AbortController();
  const splitter = new LineSplitter(opts.maxPayloadBytes, h.onOversize?.bind(h));
  let body: { pause(): void; resume(): void; destroy(err?: Error): void } | undefined;
  let open = false;
  let closed = false;
  let closeReason: string | undefined;

  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    open = false;
    const rest = splitter.rest();
    // A trailing fragment is what a cut stream leaves: it is reported, never landed.
    h.onClose(code, closeReason ?? reason, rest.length > 0
      ? { discardedBytes: splitter.restBytes, discardedHead: rest.subarray(0, 120).toString('utf8') }
      : {});
  };

  request(opts.url, {
    method: 'GET', headers: opts.headers, signal: abort.signal, headersTimeout: 10_000,
    // The stream is open-ended: the runtime's watchdog, not a body timeout, decides it is dead.
    bodyTimeout: 0,
  }).then(async (res) => {
    if (res.statusCode !== 200) {
      let text = '';
      try { text = (await res.body.text()).slice(0, 500); } catch { text = '(body unreadable)'; }
      h.onRefused(res.statusCode, text);
      finish(res.statusCode, `HTTP ${res.statusCode}`);
      return;
    }
    body = res.body;
    open = true;
    h.onOpen();
    res.body.on('data', (chunk: Buffer) => {
      h.onActivity();
      try {
        splitter.each(chunk, (line) => { if (!closed) h.onMessage(line, false); });
      } catch (err) {
        closeReason = `error: ${(err as Error).message}`;
        res.body.destroy();
      }
    });
    res.body.on('end', () => finish(1000, 'stream ended by the venue'));
    res.body.on('error', (err: Error) => {
      if (!abort.signal.aborted) h.onError(err);
      finish(1006, `stream error: ${err.message}`);
    });
    res.body.on('close', () => finish(1006, 'stream closed'));
  }).catch((err: Error) => {
    if (!abort.signal.aborted) h.onError(err);
    finish(1006, `request failed: ${err.message}`);
  });

  const stop = (reason: string) => {
    closeReason ??= reason;
    abort.abort();
    body?.destroy();
    // A request that never produced a response still reports its close.
    setImmediate(() => finish(1006, reason));
  };
  return {
    send: () => { throw new Error('an HTTP stream carries no messages upstream'); },
    ping: () => false,
    pause: () => body?.pause(),
    resume: () => body?.resume(),
    close: (reason) => stop(reason),
    terminate: () => stop('terminated'),
    get isOpen() { return open && !closed; },
  };
}
