import { createWriteStream, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { clickhouseError, type ClickHouse } from './client.ts';

/** Output formats written by ClickHouse itself (no row passes through JavaScript values). */
export const EXPORT_FORMATS = ['Parquet', 'CSV', 'CSVWithNames', 'TSVWithNames', 'JSONEachRow', 'Arrow'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Tables and views a slice can be taken from, with their time column. */
const SLICE_TABLES = {
  trades: 'traded_at',
  quotes: 'quoted_at',
  book_snapshots: 'taken_at',
  bars_1m: 'bucket',
  bars_5m: 'bucket',
  bars_15m: 'bucket',
  bars_1h: 'bucket',
  bars_4h: 'bucket',
  bars_1d: 'bucket',
} as const;
export type SliceTable = keyof typeof SLICE_TABLES;

const timestamp = z.string().regex(/^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?Z?$/, 'a UTC time such as 2026-01-31 or 2026-01-31T12:00:00Z');

const ExportRequest = z.strictObject({
  /** A SELECT (no FORMAT clause), or use `slice`. */
  query: z.string().min(1).optional(),
  /** Values for {name:Type} placeholders in `query`. */
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  slice: z.strictObject({
    table: z.enum(Object.keys(SLICE_TABLES) as [SliceTable, ...SliceTable[]]),
    venue: z.string().min(1).optional(),
    symbol: z.string().min(1).optional(),
    /** Inclusive start of the time column, UTC. */
    from: timestamp.optional(),
    /** Exclusive end of the time column, UTC. */
    to: timestamp.optional(),
  }).optional(),
  format: z.enum(EXPORT_FORMATS),
  file: z.string().min(1),
}).refine((r) => (r.query === undefined) !== (r.slice === undefined), 'exactly one of query and slice');

export type ExportRequest = z.input<typeof ExportRequest>;

export interface ExportResult {
  file: string;
  format: ExportFormat;
  bytes: number;
  ms: number;
}

/**
 * Writes a query's result, or a slice of a table (venue, symbol, time range), to a file in
 * Parquet, CSV, TSV, JSON lines or Arrow, formatted by ClickHouse. The embedded engine writes
 * the file itself (INTO OUTFILE, streamed, nothing buffered in Node); a server streams the
 * formatted bytes over HTTP into the file. Backs `tickflow export`.
 */
export async function exportToFile(ch: ClickHouse, request: ExportRequest): Promise<ExportResult> {
  const parsed = ExportRequest.safeParse(request);
  if (!parsed.success) {
    throw clickhouseError('EXPORT_INVALID', `export: expected {query | slice, format: ${EXPORT_FORMATS.join('|')}, file}, ` +
      `received ${JSON.stringify(request)} (${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')})`);
  }
  const req = parsed.data;
  const started = performance.now();
  const file = path.resolve(req.file);
  mkdirSync(path.dirname(file), { recursive: true });
  const { select, params } = req.query !== undefined
    ? { select: `SELECT * FROM (${req.query.trim().replace(/;\s*$/, '')})`, params: req.params ?? {} }
    : sliceQuery(req.slice!);

  try {
    if (ch.mode === 'embedded') {
      await ch.client.command({
        query: `${select} INTO OUTFILE ${quoteString(file)} TRUNCATE FORMAT ${req.format}`,
        query_params: params,
      });
    } else {
      const result = await ch.client.exec({ query: `${select} FORMAT ${req.format}`, query_params: params });
      await pipeline(result.stream, createWriteStream(file));
    }
  } catch (err) {
    throw clickhouseError('EXPORT_INVALID', `export to ${file}: ${(err as Error).message}`, { cause: err });
  }
  return { file, format: req.format, bytes: statSync(file).size, ms: performance.now() - started };
}

function sliceQuery(slice: NonNullable<z.infer<typeof ExportRequest>['slice']>): { select: string; params: Record<string, string> } {
  const time = SLICE_TABLES[slice.table];
  const where: string[] = [];
  const params: Record<string, string> = {};
  if (slice.venue !== undefined) { where.push('venue = {venue:String}'); params.venue = slice.venue; }
  if (slice.symbol !== undefined) { where.push('symbol = {symbol:String}'); params.symbol = slice.symbol; }
  if (slice.from !== undefined) { where.push(`${time} >= {from:DateTime64(6, 'UTC')}`); params.from = utc(slice.from); }
  if (slice.to !== undefined) { where.push(`${time} < {to:DateTime64(6, 'UTC')}`); params.to = utc(slice.to); }
  const order = slice.table.startsWith('bars_') ? 'venue, symbol, bucket' : `instrument_id, ${time}`;
  return {
    select: `SELECT * FROM ${slice.table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order}`,
    params,
  };
}

function utc(text: string): string {
  return text.replace('T', ' ').replace(/Z$/, '');
}

function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
