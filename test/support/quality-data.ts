import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeBi5Records } from '../../ingesters/dukascopy/bi5.ts';
import { dukascopyFrame, parseDukascopyPath } from '../../ingesters/dukascopy/land.ts';
import type { Sql } from '../../src/db.ts';

export const DUKASCOPY = path.join(import.meta.dirname, '..', 'fixtures', 'dukascopy');
export const POINT: Record<string, number> = { EURUSD: 100_000, GBPJPY: 1_000, BTCUSD: 10 };

export interface Frame {
  venue: string;
  stream: string;
  sessionId: string | null;
  receivedAt: string;
  source: string;
  request: string | null;
  payload: string;
}

/** Lands frames as one batch, the way the landing writer does, and normalizes it (the one path). */
export async function landFrames(sql: Sql, frames: Frame[]): Promise<Record<string, number>> {
  const batchId = randomUUID();
  const times = frames.map((f) => f.receivedAt).sort();
  await sql`insert into ops.batches (batch_id, frames, first_received_at, last_received_at)
            values (${batchId}, ${frames.length}, ${times[0] ?? null}, ${times.at(-1) ?? null})`;
  for (const [i, f] of frames.entries()) {
    await sql`insert into staging.frames (batch_id, venue, stream, session_id, seq, received_at, source, request, payload)
              values (${batchId}, ${f.venue}, ${f.stream}, ${f.sessionId}, ${i}, ${f.receivedAt}, ${f.source}, ${f.request},
                      ${f.payload})`;
  }
  const [row] = await sql<{ counts: Record<string, number> }[]>`select staging.normalize_batch(${batchId}) as counts`;
  return row!.counts;
}

/** A real Dukascopy file from test/fixtures/dukascopy as its staging frame. */
export function dukascopyFile(rel: string, receivedAt = '2026-01-01T00:00:00Z'): Frame {
  const instrument = rel.split('/')[0]!;
  return dukascopyFrame({ path: rel, body: readFileSync(path.join(DUKASCOPY, rel)), point: POINT[instrument]!, receivedAt });
}

/** Records of a real file, with the UTC start of its period (ms). */
export function dukascopyRecords(rel: string): { start: number; candles: [number, number, number, number, number, string][] } {
  const start = Date.parse(parseDukascopyPath(rel).start);
  return { start, candles: decodeBi5Records(readFileSync(path.join(DUKASCOPY, rel)), 'candles', rel) };
}

/** A candle file frame built from (possibly edited) records: the payload land.ts writes for such a file. */
export function candleFrame(rel: string, records: (number | string)[][], receivedAt = '2026-01-01T00:00:00Z'): Frame {
  const file = parseDukascopyPath(rel);
  return {
    venue: 'dukascopy', stream: file.stream, sessionId: null, receivedAt, source: 'file', request: file.request,
    payload: `{"instrument":"${file.instrument}","start":"${file.start}","point":${POINT[file.instrument]},"format":"bi5-candles-v1",`
      + `"side":"${file.side}","records":${JSON.stringify(records)}}`,
  };
}

/** A tick file frame built from (possibly edited) records [ms, ask, bid, askVolume, bidVolume]. */
export function tickFrame(rel: string, records: (number | string)[][], receivedAt = '2026-01-01T00:00:00Z'): Frame {
  const file = parseDukascopyPath(rel);
  return {
    venue: 'dukascopy', stream: 'ticks', sessionId: null, receivedAt, source: 'file', request: file.request,
    payload: `{"instrument":"${file.instrument}","start":"${file.start}","point":${POINT[file.instrument]},"format":"bi5-ticks-v1",`
      + `"records":${JSON.stringify(records)}}`,
  };
}

/** Deterministic pseudo-random numbers (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Finding {
  kind: string;
  label: string;
  severity: string;
  instrument_id: number | null;
  symbol: string | null;
  venue: string | null;
  source: string;
  window_from: Date;
  window_to: Date;
  value: string | null;
  baseline: string | null;
  detail: Record<string, unknown>;
}

export async function openFindings(sql: Sql): Promise<Finding[]> {
  return sql<Finding[]>`
    select f.kind, f.label, f.severity, f.instrument_id, i.symbol, i.venue, f.source, f.window_from, f.window_to,
           f.value::text as value, f.baseline::text as baseline, f.detail
    from quality.findings f left join market.instruments i using (instrument_id)
    where f.resolved_at is null
    order by f.window_from, f.kind, f.source`;
}

/** Runs every registered detector over the window, like the quality_detect job; returns their results. */
export async function runAllDetectors(sql: Sql, from: string, to: string): Promise<Record<string, { found: number; alerts: unknown[] }>> {
  const out: Record<string, { found: number; alerts: unknown[] }> = {};
  const names = await sql<{ detector: string }[]>`select detector from quality.detectors order by detector`;
  for (const { detector } of names) {
    const [row] = await sql<{ r: { found: number; alerts: unknown[] } }[]>`select quality.run_detector(${detector}, ${from}, ${to}) as r`;
    out[detector] = row!.r;
  }
  return out;
}
