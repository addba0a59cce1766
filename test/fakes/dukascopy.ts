import http from 'node:http';
import type net from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lzma } from '@napi-rs/lzma';

// A local Dukascopy datafeed: GET {base}/{SYMBOL}/{YYYY}/{MM 0-based}/{DD}/{HH}h_ticks.bi5 as the
// venue serves it (200 with the LZMA file; an empty 200 body for an hour without ticks; 404 for
// what it does not know). Captured files (test/fixtures/dukascopy) are served verbatim at their
// own paths; every other open hour of a synthetic instrument gets a synthetic file made from a
// captured hour: its records (times are offsets within the hour, so they move to the new hour
// unchanged) with the prices shifted by a few points, LZMA-compressed again like the venue's:
// by xz's LZMA encoder (.lzma format, preset 6, a 4 MiB dictionary), which writes the captured
// hours back at their own size (20,337 bytes for 00h, the venue's is 20,343) and as fast to decode.
// Without xz (Debian's xz-utils), @napi-rs/lzma's own encoder is used: files twice the venue's size
// that decode a third slower (it writes few matches).
// An ASK candle file is made from the captured BID file of the same period (prices plus a
// 3-point spread), since only BID candle files were captured.
// Closed hours (forex: Friday 22:00 to Sunday 22:00 UTC, the winter hours; the fake does not
// move them with New York's daylight saving) are empty files.
// The JSON API (GET /v1/...) is served from the captured answers in jetta-json-api/, named by
// their path (v1/candles/minute/BTC-USD/BID/2023/2/19 -> candles-minute-BTC-USD-BID-2023-2-19.json,
// a "-empty" suffix for an answer without data); an ASK answer is made from the BID one (base
// prices 3 points higher, so every price is); anything else is a 404.
// Faults: `faults.set(path, [...])` answers the next requests of a path with these in order
// ('truncated': the first half of the file, 'garbage': an HTML error page with status 200,
// 503, 'empty': an empty 200 body), then the right file again.

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'dukascopy');
const HOUR = 3_600_000;

/** The EURUSD captured hours the synthetic ones are made from: quiet Asian, busy London, quiet evening. */
export const SOURCE_HOURS = ['EURUSD/2019/01/04/00h_ticks.bi5', 'EURUSD/2019/01/04/08h_ticks.bi5', 'EURUSD/2019/01/04/21h_ticks.bi5'] as const;

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** The datafeed path of an hour of ticks (month 0-based). */
export function tickPath(symbol: string, hourMs: number): string {
  const d = new Date(hourMs);
  return `${symbol}/${d.getUTCFullYear()}/${pad2(d.getUTCMonth())}/${pad2(d.getUTCDate())}/${pad2(d.getUTCHours())}h_ticks.bi5`;
}

/** Closed for forex by the fake's simple rule: Friday 22:00 UTC to Sunday 22:00 UTC. */
export function fxClosed(hourMs: number): boolean {
  const d = new Date(hourMs);
  const dow = d.getUTCDay();
  const h = d.getUTCHours();
  return dow === 6 || (dow === 5 && h >= 22) || (dow === 0 && h < 22);
}

const raw = new Map<string, Buffer>();
function rawRecords(rel: string): Buffer {
  let r = raw.get(rel);
  if (!r) { r = lzma.decompressSync(readFileSync(path.join(FIXTURES, rel))); raw.set(rel, r); }
  return r;
}

/** Which captured hour a synthetic hour copies (by time of day) and by how many points its prices move. */
export function synthesisOf(hourMs: number): { source: string; shift: number } {
  const h = new Date(hourMs).getUTCHours();
  const source = h >= 7 && h < 17 ? SOURCE_HOURS[1] : h >= 17 ? SOURCE_HOURS[2] : SOURCE_HOURS[0];
  const day = Math.floor(hourMs / (24 * HOUR));
  return { source, shift: ((day % 8) - 4) * 37 };
}

let xz: boolean | undefined;
/** Records compressed as the venue does (see above), as an LZMA "alone" file. */
function compressLikeVenue(records: Buffer): Buffer {
  if (xz !== false) {
    try {
      const out = execFileSync('xz', ['--format=lzma', '--lzma1=preset=6,dict=4MiB', '-c'], { input: records, maxBuffer: 1 << 28 });
      xz = true;
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      xz = false;
    }
  }
  return lzma.compressSync(records);
}

/** Whether synthetic files come from xz's encoder (false: @napi-rs/lzma's; undefined: none made yet). */
export const compressedByXz = (): boolean | undefined => xz;

const synthetic = new Map<string, Buffer>();
/** The synthetic file of an open hour: a captured hour's records, prices moved by `shift` points. */
export function syntheticFile(hourMs: number): Buffer {
  const { source, shift } = synthesisOf(hourMs);
  const key = `${source}:${shift}`;
  let body = synthetic.get(key);
  if (!body) {
    const records = Buffer.from(rawRecords(source));
    for (let o = 0; o < records.length; o += 20) {
      records.writeInt32BE(records.readInt32BE(o + 4) + shift, o + 4);
      records.writeInt32BE(records.readInt32BE(o + 8) + shift, o + 8);
    }
    body = compressLikeVenue(records);
    synthetic.set(key, body);
  }
  return body;
}

/** An ASK candle file from a BID one: every price 3 points higher, volumes as they are. */
function askFromBid(bid: Buffer): Buffer {
  const records = Buffer.from(lzma.decompressSync(bid));
  for (let o = 0; o < records.length; o += 24) {
    for (let f = 4; f <= 16; f += 4) records.writeInt32BE(records.readInt32BE(o + f) + 3, o + f);
  }
  return compressLikeVenue(records);
}

export type Fault = 'truncated' | 'garbage' | 'empty' | 503;

export interface FakeDukascopyOptions {
  /** Venue symbols whose uncaptured open hours get synthetic files (others: 404). */
  synthetic?: string[];
  /** Paths served as empty files although open (an hour the venue has no ticks for). */
  emptyHours?: string[];
  /** Milliseconds to hold each answer (a slow venue). */
  delayMs?: number;
}

export class FakeDukascopy {
  private server?: http.Server;
  private readonly sockets = new Set<net.Socket>();
  readonly requests: string[] = [];
  /** When each request arrived (ms since the epoch), and the most requests open at once. */
  readonly times: number[] = [];
  maxInFlight = 0;
  private inFlight = 0;
  readonly faults = new Map<string, Fault[]>();
  /** Paths that answer 503 until removed (a venue that went away). */
  readonly down = new Set<string>();
  /** Bytes of every 200 answer that was the right file, by path (what the independent decoder reads). */
  readonly served = new Map<string, Buffer>();
  /** The .bi5 datafeed's base URL, and the JSON API's. */
  baseUrl = '';
  jsonUrl = '';

  constructor(private readonly opts: FakeDukascopyOptions = {}) {}

  /** The JSON API's answer for a v1/... path, or undefined (404). */
  json(rel: string): Buffer | undefined {
    const name = rel.replace(/^v1\//, '').split('/').join('-');
    for (const file of [`${name}.json`, `${name}-empty.json`]) {
      try {
        return readFileSync(path.join(FIXTURES, 'jetta-json-api', file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (!rel.includes('/ASK/')) return undefined;
    const bid = this.json(rel.replace('/ASK/', '/BID/'));
    if (!bid) return undefined;
    const j = JSON.parse(bid.toString('utf8')) as Record<string, number | null>;
    for (const k of ['open', 'high', 'low', 'close']) {
      // Test data, not venue data: three points on the base price, rounded back to the instrument's scale.
      if (j[k] !== null) j[k] = Number((j[k]! + 3 * j.multiplier!).toFixed(Math.round(-Math.log10(j.multiplier!))));
    }
    return Buffer.from(JSON.stringify(j));
  }

  /** The file the venue has for a datafeed path, or undefined (404). */
  file(rel: string): Buffer | undefined {
    if (rel.startsWith('v1/')) return this.json(rel);
    if ((this.opts.emptyHours ?? []).includes(rel)) return Buffer.alloc(0);
    try {
      return readFileSync(path.join(FIXTURES, rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const ask = /^(.*)\/ASK_candles_(min|hour|day)_1\.bi5$/.exec(rel);
    if (ask) {
      const bid = this.file(`${ask[1]}/BID_candles_${ask[2]}_1.bi5`);
      return bid && bid.length > 0 ? askFromBid(bid) : bid;
    }
    const m = /^([A-Z0-9]+)\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})h_ticks\.bi5$/.exec(rel);
    if (!m || !(this.opts.synthetic ?? []).includes(m[1]!)) return undefined;
    const hourMs = Date.UTC(+m[2]!, +m[3]!, +m[4]!, +m[5]!);
    return fxClosed(hourMs) ? Buffer.alloc(0) : syntheticFile(hourMs);
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const rel = url.pathname.replace(/^\/(datafeed\/)?/, '');
      this.requests.push(rel);
      this.times.push(Date.now());
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
      res.on('close', () => { this.inFlight--; });
      const answer = () => {
        const fault = this.faults.get(rel)?.shift();
        if (this.down.has(rel) || fault === 503) { res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable'); return; }
        const body = this.file(rel);
        if (!body) { res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>'); return; }
        const sent = fault === 'truncated' ? body.subarray(0, body.length >> 1)
          : fault === 'garbage' ? Buffer.from('<html><body>Please try again later</body></html>')
            : fault === 'empty' ? Buffer.alloc(0) : body;
        if (!fault) this.served.set(rel, body);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': sent.length }).end(sent);
      };
      if (this.opts.delayMs) setTimeout(answer, this.opts.delayMs); else answer();
    });
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as net.AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}/datafeed`;
    this.jsonUrl = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
