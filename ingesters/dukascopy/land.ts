import { TickflowError } from '../../src/errors.ts';
import { decodeBi5, decodeBi5TickColumns, decodeBi5TickColumnsAsync, type Bi5Columns, type Bi5Kind } from './bi5.ts';

/**
 * Dukascopy files become staging frames: one frame per file, the decoded records kept in the
 * venue's integers and units, wrapped with what the file's path and the instrument's metadata
 * say about them. SQL (sql/venues/dukascopy_010_normalize_v1.sql) gives them meaning.
 *
 * Payload (JSON text), one of:
 *   {"instrument":"EURUSD","start":"2019-02-04T08:00:00Z","point":100000,"format":"bi5-ticks-v2","records":6120}
 *     with the records as columns beside the frame (staging.tick_columns, binary COPY): ms offsets,
 *     asks and bids as int4[], ask and bid volumes as numeric[];
 *   {"instrument":"EURUSD","start":"2019-02-04T00:00:00Z","point":100000,"format":"bi5-candles-v1",
 *    "side":"bid","records":[[s,open,close,low,high,"volume"],...]}
 * (Frames of format bi5-ticks-v1, ticks as "records":[[ms,ask,bid,"askVolume","bidVolume"],...], are
 * what earlier versions landed; SQL still reads them.)
 * - start: the UTC start of the file's period (hour, day, month or year), from its path; the
 *   path's month is 0-based, start's month is the calendar month.
 * - point: the divisor that turns the integer prices into the instrument's price
 *   (10^priceScale of the venue's instrument metadata: 100000 for EURUSD, 1000 for GBPJPY,
 *   10 for BTCUSD). The file does not carry it, so the frame does.
 * - records: offsets and prices as the file's signed 32-bit integers; volumes (float32 in the
 *   file, in millions of units) as the shortest decimal that is the same float32. Ticks: the
 *   number of records, which are in the columns.
 * An empty file (a closed hour or day) is a frame with no records: coverage, not a gap.
 */

export type DukascopyStream = 'ticks' | 'candles_m1' | 'candles_h1' | 'candles_d1';

/** The envelope and payload of one staging.frames row (the shape the landing writer takes). */
export interface DukascopyFrame {
  venue: 'dukascopy';
  stream: DukascopyStream;
  sessionId: null;
  seq: number;
  receivedAt: string;
  source: 'file';
  request: string;
  payload: string;
  columns?: Buffer;
}

export interface DukascopyFile {
  /** INSTRUMENT/YYYY/MM/DD/HHh_ticks.bi5 etc., month 0-based as in the datafeed URL. */
  request: string;
  instrument: string;
  kind: Bi5Kind;
  stream: DukascopyStream;
  /** Candle files only. */
  side: 'bid' | 'ask' | null;
  /** UTC start of the file's period, e.g. 2019-02-04T08:00:00Z. */
  start: string;
}

const PATH_RE = /(?:^|\/)([A-Z0-9][A-Z0-9._-]*)\/(\d{4})\/(?:(\d{2})\/(?:(\d{2})\/)?)?(?:(\d{2})h_ticks|(BID|ASK)_candles_(min|hour|day)_1)\.bi5$/;
const CANDLE_STREAM = { min: 'candles_m1', hour: 'candles_h1', day: 'candles_d1' } as const;

function badPath(path: string, expected: string): TickflowError {
  return new TickflowError('VENUE_FILE_CORRUPT', `dukascopy file path ${JSON.stringify(path)}: expected ${expected}`);
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

function daysInMonth(year: number, month1: number): number {
  if (month1 === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month1) ? 30 : 31;
}

/**
 * What a datafeed path (or URL) names: instrument, kind, stream and period start. The path is
 * our own request, not venue data, so reading its digits here interprets nothing the venue sent.
 */
export function parseDukascopyPath(path: string): DukascopyFile {
  const m = PATH_RE.exec(path);
  if (!m) {
    throw badPath(path, 'INSTRUMENT/YYYY[/MM[/DD]]/(HHh_ticks|BID_candles_min_1|BID_candles_hour_1|BID_candles_day_1).bi5');
  }
  const [, instrument, y, mm, dd, hh, side, unit] = m as unknown as [string, string, string, string?, string?, string?, string?, ('min' | 'hour' | 'day')?];
  const want = hh !== undefined || unit === 'min' ? 2 : unit === 'hour' ? 1 : 0;
  const got = dd !== undefined ? 2 : mm !== undefined ? 1 : 0;
  if (want !== got) {
    const what = hh !== undefined ? 'an hourly tick file' : `${unit === 'hour' ? 'an' : 'a'} ${unit}_1 candle file`;
    throw badPath(path, `${what} under ${['YYYY', 'YYYY/MM', 'YYYY/MM/DD'][want]}`);
  }
  const year = +y;
  const month1 = mm === undefined ? 1 : +mm + 1;
  const day = dd === undefined ? 1 : +dd;
  const hour = hh === undefined ? 0 : +hh;
  if (month1 > 12) throw badPath(path, `a 0-based month 00..11, received ${mm}`);
  if (day < 1 || day > daysInMonth(year, month1)) throw badPath(path, `a day 01..${daysInMonth(year, month1)}, received ${dd}`);
  if (hour > 23) throw badPath(path, `an hour 00..23, received ${hh}`);
  const request = m[0].startsWith('/') ? m[0].slice(1) : m[0];
  return {
    request,
    instrument,
    kind: hh !== undefined ? 'ticks' : 'candles',
    stream: hh !== undefined ? 'ticks' : CANDLE_STREAM[unit!],
    side: side === undefined ? null : side === 'BID' ? 'bid' : 'ask',
    start: `${y}-${pad2(month1)}-${pad2(day)}T${pad2(hour)}:00:00Z`,
  };
}

/** The price divisor from the venue's instrument metadata (priceScale 5 -> 100000). */
export function pointFromPriceScale(priceScale: number): number {
  if (!Number.isInteger(priceScale) || priceScale < 0 || priceScale > 9) {
    throw new TickflowError('VENUE_FILE_CORRUPT', `dukascopy priceScale: expected an integer 0..9, received ${priceScale}`);
  }
  return 10 ** priceScale;
}

export interface DukascopyFileInput {
  /** Datafeed path or URL of the file. */
  path: string;
  /** The file's bytes as downloaded (possibly empty). */
  body: Uint8Array;
  /** Price divisor, a power of ten (see pointFromPriceScale). */
  point: number;
  /** Our receive time (ISO 8601), when the file was downloaded. */
  receivedAt: string;
  /** Position of the frame in its batch. */
  seq?: number;
}

/**
 * Decodes one .bi5 file into its staging frame (pure: no I/O). Throws VENUE_FILE_CORRUPT for
 * a damaged file or an unknown path; a file that decodes is landed whole, and SQL quarantines
 * single bad records.
 */
export function dukascopyFrame(input: DukascopyFileInput): DukascopyFrame {
  const file = parseDukascopyPath(input.path);
  return {
    venue: 'dukascopy',
    stream: file.stream,
    sessionId: null,
    seq: input.seq ?? 0,
    receivedAt: input.receivedAt,
    source: 'file',
    request: file.request,
    ...dukascopyLanded(input.path, input.body, input.point),
  };
}

function head(file: DukascopyFile, point: number, format: string): string {
  return `{"instrument":"${file.instrument}","start":"${file.start}","point":${point},"format":"${format}"` +
    (file.side === null ? '' : `,"side":"${file.side}"`);
}

/** What one .bi5 file lands as: its payload, and for ticks the records as binary COPY columns. */
export interface DukascopyLanded {
  payload: string;
  columns?: Buffer;
}

/** What one .bi5 file lands as (see above); throws VENUE_FILE_CORRUPT for a damaged file or an unknown path. */
export function dukascopyLanded(path: string, body: Uint8Array, point: number): DukascopyLanded {
  const file = fileOf(path, point);
  if (file.kind === 'ticks') return ticksLanded(file, point, decodeBi5TickColumns(body, file.request));
  const { json } = decodeBi5(body, file.kind, file.request);
  return { payload: `${head(file, point, 'bi5-candles-v1')},"records":${json}}` };
}

/** dukascopyLanded with the LZMA stream of a tick file decoded off the event loop (backfills). */
export async function dukascopyLandedAsync(path: string, body: Uint8Array, point: number): Promise<DukascopyLanded> {
  const file = fileOf(path, point);
  if (file.kind === 'ticks') return ticksLanded(file, point, await decodeBi5TickColumnsAsync(body, file.request));
  return dukascopyLanded(path, body, point);
}

function fileOf(path: string, point: number): DukascopyFile {
  const file = parseDukascopyPath(path);
  if (!Number.isInteger(point) || point < 1 || !/^10*$/.test(String(point))) {
    throw new TickflowError('VENUE_FILE_CORRUPT', `dukascopy point for ${file.request}: expected a power of ten, received ${point}`);
  }
  return file;
}

function ticksLanded(file: DukascopyFile, point: number, columns: Bi5Columns): DukascopyLanded {
  return { payload: `${head(file, point, 'bi5-ticks-v2')},"records":${columns.count}}`, columns: columns.fields };
}

/**
 * The staging payload of a file that does not decode: format bi5-undecodable, the reason, and
 * the bytes as received (base64), so SQL quarantines it with the reason and it stays replayable.
 */
export function dukascopyUndecodable(path: string, body: Uint8Array, point: number, reason: string): string {
  const base64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  // An unknown path: nothing but the reason (which names the path) and the bytes can be said.
  const known = PATH_RE.test(path) ? `${head(parseDukascopyPath(path), point, 'bi5-undecodable')},` : '{"format":"bi5-undecodable",';
  return `${known}"error":${JSON.stringify(reason)},"bytes":${body.length},"base64":"${base64}"}`;
}
