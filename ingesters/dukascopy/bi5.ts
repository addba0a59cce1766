import { lzma } from '@napi-rs/lzma';
import { TickflowError } from '../../src/errors.ts';
import { INT4_OID, NUMERIC_OID, int4ArrayBytes, numericBinary, writeArrayHeader } from '../runtime/copy-binary.ts';

/**
 * Dukascopy .bi5 files: LZMA "alone" (.lzma: 13-byte header, then the raw stream) around
 * big-endian fixed-size records.
 *
 *   ticks   (HHh_ticks.bi5, one hour)  20 bytes: int32 ms offset from the hour, int32 ask,
 *           int32 bid (points), float32 ask volume, float32 bid volume
 *   candles (BID|ASK_candles_{min,hour,day}_1.bi5: one day, month, year)  24 bytes: int32 s
 *           offset from the file's start, int32 open, close, low, high (points), float32 volume
 *
 * Integers are read signed, as Dukascopy's own (Java) reader and dukascopy-node do: a value
 * at or above 2^31 is no valid price or offset either way, and read signed it is visibly
 * invalid (negative) for the SQL normalizer to quarantine instead of a huge plausible number.
 *
 * Records keep the venue's integers and units. Float32 volumes become the shortest decimal
 * string that turns back into the same float32 (6.3f, not 6.300000190734863): the digits the
 * venue wrote, with no precision invented here. Decoding writes the JSON text of the records
 * straight from a DataView into bytes; nothing is interpreted (SQL gives the integers meaning).
 *
 * @napi-rs/lzma's `lzma` namespace (lzma-rs `lzma_decompress`) reads exactly this legacy
 * .lzma format, natively.
 */

export type Bi5Kind = 'ticks' | 'candles';

export const RECORD_BYTES: Readonly<Record<Bi5Kind, number>> = Object.freeze({ ticks: 20, candles: 24 });

/** [ms offset, ask, bid, ask volume, bid volume]: integers in points, volumes as decimal text. */
export type TickRecord = [number, number, number, string, string];
/** [s offset, open, close, low, high, volume]: the file's own field order. */
export type CandleRecord = [number, number, number, number, number, string];

export interface Bi5Text {
  kind: Bi5Kind;
  /** Number of records. */
  count: number;
  /** The records as a JSON array text, e.g. [[994,114545,114543,"1","2.06"],...]. */
  json: string;
}

const LZMA_HEADER_BYTES = 13;
const UNKNOWN_SIZE_LO = 0xffffffff;

function corrupt(file: string | undefined, message: string, cause?: unknown): TickflowError {
  return new TickflowError('VENUE_FILE_CORRUPT', `dukascopy .bi5${file ? ` ${file}` : ''}: ${message}`,
    cause === undefined ? undefined : { cause });
}

/**
 * Decompresses a .bi5 body and checks it is a whole number of records (and, where the header
 * states it, exactly the announced length). An empty body is a closed hour or day: no records.
 * Throws VENUE_FILE_CORRUPT rather than return anything from a damaged file.
 */
export function decompressBi5(body: Uint8Array, kind: Bi5Kind, file?: string): Buffer {
  if (body.length === 0) return Buffer.alloc(0);
  checkHeader(body, file);
  let raw: Buffer;
  try {
    raw = lzma.decompressSync(body);
  } catch (err) {
    throw undecodable(file, err);
  }
  return checkRecords(body, raw, kind, file);
}

/** decompressBi5 on libuv's thread pool: the same checks and errors. */
export async function decompressBi5Async(body: Uint8Array, kind: Bi5Kind, file?: string): Promise<Buffer> {
  if (body.length === 0) return Buffer.alloc(0);
  checkHeader(body, file);
  let raw: Buffer;
  try {
    raw = await lzma.decompress(body);
  } catch (err) {
    throw undecodable(file, err);
  }
  return checkRecords(body, raw, kind, file);
}

const undecodable = (file: string | undefined, err: unknown): TickflowError =>
  corrupt(file, `LZMA stream does not decode (truncated or damaged): ${(err as Error).message}`, err);

function checkHeader(body: Uint8Array, file: string | undefined): void {
  if (body.length < LZMA_HEADER_BYTES) {
    throw corrupt(file, `expected an LZMA header of ${LZMA_HEADER_BYTES} bytes, received ${body.length} bytes`);
  }
  if (body[0]! >= 225) {
    throw corrupt(file, `expected LZMA properties byte below 225, received ${body[0]}`);
  }
}

function checkRecords(body: Uint8Array, raw: Buffer, kind: Bi5Kind, file: string | undefined): Buffer {
  // Unpacked size: 64-bit little-endian, all ones when unknown. Files are far below 4 GiB.
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const sizeLo = view.getUint32(5, true);
  const sizeHi = view.getUint32(9, true);
  const known = !(sizeLo === UNKNOWN_SIZE_LO && sizeHi === UNKNOWN_SIZE_LO);
  if (known && (sizeHi !== 0 || sizeLo !== raw.length)) {
    throw corrupt(file, `expected ${sizeHi * 2 ** 32 + sizeLo} decompressed bytes (LZMA header), received ${raw.length}`);
  }
  const size = RECORD_BYTES[kind];
  if (raw.length % size !== 0) {
    throw corrupt(file, `expected a whole number of ${size}-byte ${kind} records, received ${raw.length} decompressed bytes`);
  }
  return raw;
}

function plainDecimal(text: string): string {
  // Number#toString uses exponents below 1e-6 and from 1e21: write those out in full.
  const e = text.indexOf('e');
  if (e < 0) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exp = +text.slice(e + 1);
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const point = (dot < 0 ? mantissa.length : dot) + exp;
  const body = point <= 0 ? `0.${'0'.repeat(-point)}${digits}`
    : point >= digits.length ? digits + '0'.repeat(point - digits.length)
      : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${body}` : body;
}

/**
 * The shortest decimal text that Math.fround turns back into this float32 value (up to 9
 * significant digits always suffice). NaN and infinities come out as "NaN", "Infinity" and
 * "-Infinity", which SQL quarantines.
 */
export function float32Text(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  for (let p = 1; p <= 9; p++) {
    // Our own formatting of a float read from the file, not venue text: reading it back is safe.
    const candidate = +value.toPrecision(p);
    if (Math.fround(candidate) === value) return plainDecimal(String(candidate));
  }
  return plainDecimal(String(value));
}

// The payload text is written as ASCII bytes into one reused buffer, then read out as a flat
// one-byte string: faster than concatenating strings, which must be flattened again later.
const RECORD_TEXT_MAX = 200; // "[" + 5 signed int32 + a quoted float32 decimal (<= 58) + separators
let out = Buffer.allocUnsafe(1 << 16);

function room(p: number, bytes: number): void {
  if (p + bytes > out.length) {
    const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, p + bytes));
    out.copy(bigger, 0, 0, p);
    out = bigger;
  }
}

function writeInt(p: number, value: number): number {
  let v = value;
  if (v < 0) { out[p++] = 45; v = -v; }
  let digits = v < 10 ? 1 : v < 100 ? 2 : v < 1e3 ? 3 : v < 1e4 ? 4 : v < 1e5 ? 5 : v < 1e6 ? 6 : v < 1e7 ? 7
    : v < 1e8 ? 8 : v < 1e9 ? 9 : 10;
  const end = p + digits;
  let q = end;
  while (digits-- > 0) {
    const rest = Math.floor(v / 10);
    out[--q] = 48 + v - rest * 10;
    v = rest;
  }
  return end;
}

// Volumes repeat a lot (1, 0.75, 2.25 ...), so their quoted text is cached by the float's bit
// pattern. Shifted by 2^30, every non-negative float32 bit pattern is a small integer (a V8
// Smi), which keeps the lookup cheap; negative floats (never valid volumes) are merely slower.
const volumeCache = new Map<number, Buffer>();
const VOLUME_CACHE_LIMIT = 1 << 16;

function writeVolume(p: number, view: DataView, offset: number): number {
  const key = view.getInt32(offset) - 0x40000000;
  let text = volumeCache.get(key);
  if (text === undefined) {
    text = Buffer.from(`"${float32Text(view.getFloat32(offset))}"`, 'latin1');
    if (volumeCache.size >= VOLUME_CACHE_LIMIT) volumeCache.clear();
    volumeCache.set(key, text);
  }
  out.set(text, p);
  return p + text.length;
}

/** Decodes a .bi5 body into the JSON text of its records (see TickRecord / CandleRecord). */
export function decodeBi5(body: Uint8Array, kind: Bi5Kind, file?: string): Bi5Text {
  const raw = decompressBi5(body, kind, file);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = RECORD_BYTES[kind];
  const count = raw.length / size;
  room(0, count * 48 + 2);
  let p = 0;
  out[p++] = 91; // [
  for (let i = 0, o = 0; i < count; i++, o += size) {
    room(p, RECORD_TEXT_MAX);
    if (i > 0) out[p++] = 44; // ,
    out[p++] = 91;
    p = writeInt(p, view.getInt32(o)); out[p++] = 44;
    p = writeInt(p, view.getInt32(o + 4)); out[p++] = 44;
    p = writeInt(p, view.getInt32(o + 8)); out[p++] = 44;
    if (kind === 'ticks') {
      p = writeVolume(p, view, o + 12); out[p++] = 44;
      p = writeVolume(p, view, o + 16);
    } else {
      p = writeInt(p, view.getInt32(o + 12)); out[p++] = 44;
      p = writeInt(p, view.getInt32(o + 16)); out[p++] = 44;
      p = writeVolume(p, view, o + 20);
    }
    out[p++] = 93; // ]
  }
  out[p++] = 93;
  return { kind, count, json: out.toString('latin1', 0, p) };
}

// The binary numeric of a volume, cached by the float's bit pattern like its text above.
const numericCache = new Map<number, Buffer>();

function volumeNumeric(view: DataView, offset: number): Buffer {
  const key = view.getInt32(offset) - 0x40000000;
  let bytes = numericCache.get(key);
  if (bytes === undefined) {
    bytes = numericBinary(float32Text(view.getFloat32(offset)));
    if (numericCache.size >= VOLUME_CACHE_LIMIT) numericCache.clear();
    numericCache.set(key, bytes);
  }
  return bytes;
}

export interface Bi5Columns {
  /** Number of records. */
  count: number;
  /**
   * The records as five binary COPY fields, in file order: ms offsets, asks and bids (int4[], the
   * file's integers), ask and bid volumes (numeric[], the same decimals as float32Text).
   */
  fields: Buffer;
}

/**
 * Decodes an hour of ticks into columns for binary COPY (staging.tick_columns). The integers are
 * the file's own big-endian bytes, copied; nothing is interpreted.
 */
export function decodeBi5TickColumns(body: Uint8Array, file?: string): Bi5Columns {
  return tickColumns(decompressBi5(body, 'ticks', file));
}

/** decodeBi5TickColumns with the LZMA stream decoded on libuv's thread pool, off the event loop. */
export async function decodeBi5TickColumnsAsync(body: Uint8Array, file?: string): Promise<Bi5Columns> {
  return tickColumns(await decompressBi5Async(body, 'ticks', file));
}

function tickColumns(raw: Buffer): Bi5Columns {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = RECORD_BYTES.ticks;
  const count = raw.length / size;
  const volumes: Buffer[][] = [new Array<Buffer>(count), new Array<Buffer>(count)];
  const volumeBytes = [0, 0];
  for (let v = 0; v < 2; v++) {
    const column = volumes[v]!;
    let bytes = 0;
    for (let i = 0, o = 12 + 4 * v; i < count; i++, o += size) {
      const n = volumeNumeric(view, o);
      column[i] = n;
      bytes += 4 + n.length;
    }
    volumeBytes[v] = bytes;
  }
  const numericArrayBytes = (bytes: number) => (count === 0 ? 16 : 24 + bytes);
  const out = Buffer.allocUnsafe(3 * int4ArrayBytes(count) + numericArrayBytes(volumeBytes[0]!) + numericArrayBytes(volumeBytes[1]!));
  let p = 0;
  for (let c = 0; c < 3; c++) {
    p = writeArrayHeader(out, p, INT4_OID, count, count * 8);
    for (let i = 0, o = c * 4; i < count; i++, o += size, p += 8) {
      out[p] = 0; out[p + 1] = 0; out[p + 2] = 0; out[p + 3] = 4;
      out[p + 4] = raw[o]!; out[p + 5] = raw[o + 1]!; out[p + 6] = raw[o + 2]!; out[p + 7] = raw[o + 3]!;
    }
  }
  for (let v = 0; v < 2; v++) {
    p = writeArrayHeader(out, p, NUMERIC_OID, count, volumeBytes[v]!);
    for (const n of volumes[v]!) {
      const len = n.length;
      out[p] = 0; out[p + 1] = 0; out[p + 2] = 0; out[p + 3] = len;
      for (let b = 0; b < len; b++) out[p + 4 + b] = n[b]!;
      p += 4 + len;
    }
  }
  return { count, fields: out };
}

/** The records as arrays (for tests and tools; landing uses the text from decodeBi5). */
export function decodeBi5Records(body: Uint8Array, kind: 'ticks', file?: string): TickRecord[];
export function decodeBi5Records(body: Uint8Array, kind: 'candles', file?: string): CandleRecord[];
export function decodeBi5Records(body: Uint8Array, kind: Bi5Kind, file?: string): TickRecord[] | CandleRecord[] {
  return JSON.parse(decodeBi5(body, kind, file).json) as TickRecord[] | CandleRecord[];
}
