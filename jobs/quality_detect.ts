import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';
import { boundedLabel, qualityAlerts } from '../src/metrics.ts';

const isoTime = z.iso.datetime({ offset: true });
const Payload = z.object({
  /** Detectors to run (quality.detectors); all of them when absent. */
  detectors: z.array(z.string().regex(/^[a-z_]+$/)).min(1).optional(),
  /** A window to (re)judge, for on-demand runs; without it each detector looks back its own lookback. */
  from: isoTime.optional(),
  to: isoTime.optional(),
  /** Canonical symbols (EUR/USD) to narrow the instrument detectors to; all instruments when absent. */
  symbols: z.array(z.string().min(1)).min(1).optional(),
}).strict().refine((p) => (p.from === undefined) === (p.to === undefined) && (p.from === undefined || Date.parse(p.from) < Date.parse(p.to!)),
  { message: 'from and to come together, from before to' });
export type QualityDetectPayload = z.infer<typeof Payload>;

/** What the run needs of a connection; a node-postgres client (helpers.withPgClient) fits. */
export interface Queryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export interface Alert {
  finding_id: number;
  kind: string;
  label: string;
  severity: string;
  venue: string | null;
  symbol: string | null;
  source: string;
  window_from: string;
  window_to: string;
  value: string | number | null;
  baseline: string | number | null;
}
export interface DetectorRun { detector: string; found: number; new: number; updated: number; resolved: number; ms: number; alerts: Alert[] }

/**
 * Runs quality detectors (quality.run_detector, one statement and so one transaction each) over
 * a window, or over each detector's own lookback up to a minute ago, then refreshes the daily
 * coverage of the days touched. Returns every detector's result with the alerts it raised (their
 * NOTIFY on tickflow_alerts is sent by SQL on commit).
 */
export async function runQualityDetectors(db: Queryable, payload: QualityDetectPayload = {}, signal?: AbortSignal): Promise<DetectorRun[]> {
  const { rows: detectors } = await db.query<{ detector: string; lookback_s: number }>(
    `select detector, extract(epoch from lookback)::float8 as lookback_s from quality.detectors
     where $1::text[] is null or detector = any ($1::text[]) order by detector`, [payload.detectors ?? null]);
  const unknown = (payload.detectors ?? []).filter((d) => !detectors.some((x) => x.detector === d));
  if (unknown.length > 0) {
    throw new TickflowError('JOB_PAYLOAD_INVALID', `quality_detect: expected detectors from quality.detectors, received ${unknown.join(', ')}`);
  }
  let instruments: number[] | null = null;
  if (payload.symbols) {
    const { rows } = await db.query<{ id: number }>('select instrument_id as id from market.instruments where symbol = any ($1::text[])', [payload.symbols]);
    instruments = rows.map((r) => r.id);
    if (instruments.length === 0) return [];
  }
  const { rows: [clock] } = await db.query<{ now: string }>(`select (date_trunc('minute', now()) - interval '1 minute')::text as now`);
  const runs: DetectorRun[] = [];
  for (const d of detectors) {
    signal?.throwIfAborted();
    const to = payload.to ?? clock!.now;
    const from = payload.from ?? new Date(Date.parse(to) - d.lookback_s * 1000).toISOString();
    const { rows } = await db.query<{ r: DetectorRun }>('select quality.run_detector($1, $2::timestamptz, $3::timestamptz, $4::integer[]) as r',
      [d.detector, from, to, instruments]);
    runs.push(rows[0]!.r);
  }
  // The daily coverage of the days touched: for an on-demand range always, on schedule once an
  // hour (it reads whole days of quotes).
  if (runs.length > 0 && (payload.from !== undefined || new Date(clock!.now).getUTCMinutes() < 5)) {
    await db.query('select quality.refresh_daily_coverage($1::timestamptz, $2::timestamptz, $3::integer[])',
      [payload.from ?? clock!.now, payload.to ?? clock!.now, instruments]);
  }
  return runs;
}

/** An alert's log line and metric (its NOTIFY was sent by SQL). */
export function alertLine(a: Alert): string {
  return `quality alert: ${a.severity} ${a.kind}${a.label ? `/${a.label}` : ''} ${a.symbol ?? a.source} ${a.window_from} .. ${a.window_to}`
    + ` value ${a.value ?? '-'} baseline ${a.baseline ?? '-'} (finding ${a.finding_id})`;
}

/** Runs the detectors on schedule (the last lookback of each) or over a window on demand. */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      `quality_detect: expected {detectors?, from?, to?, symbols?}, received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const runs = await helpers.withPgClient((c) => runQualityDetectors(c, parsed.data, helpers.abortSignal));
  for (const run of runs) {
    for (const a of run.alerts) {
      qualityAlerts.inc({ kind: boundedLabel('finding_kind', a.kind), severity: a.severity });
      helpers.logger.warn(alertLine(a), { alert: a });
    }
  }
  const found = runs.filter((r) => r.new > 0 || r.resolved > 0);
  if (found.length > 0) {
    helpers.logger.info(`quality: ${found.map((r) => `${r.detector} +${r.new} -${r.resolved}`).join(', ')}`);
  }
};
export default task;
