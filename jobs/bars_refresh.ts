import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';

const Payload = z.object({ limit: z.number().int().positive().default(10000) }).strict();

/** What the refresh needs of a connection; a node-postgres client and PGlite both fit. */
export interface Queryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * Makes the bars of up to `limit` invalidated minutes current, on either engine.
 * Rollup: market.refresh_bars() rebuilds them itself and nothing is queued.
 * TimescaleDB: it queues continuous-aggregate windows, and each is refreshed here by its own
 * CALL (refresh_continuous_aggregate() cannot run in a transaction or a function), lowest
 * timeframe first, then removed from the queue. A window left by a crash or an abort is taken
 * by the next run.
 */
export async function refreshBars(db: Queryable, limit: number, signal?: AbortSignal): Promise<{ minutes: number; windows: number; full: boolean }> {
  const { rows } = await db.query<{ minutes: number }>('select market.refresh_bars($1) as minutes', [limit]);
  // Mid-price bars of quote-priced instruments (sql/market/quote_bars*.sql) share the window queue.
  const { rows: quoteRows } = await db.query<{ minutes: number }>('select market.refresh_quote_bars($1) as minutes', [limit]);
  const { rows: windows } = await db.query<{ window_id: string; cagg: string; window_start: string; window_end: string }>(
    'select window_id::text, cagg::text, window_start::text, window_end::text from market.pending_bar_refreshes()');
  for (const w of windows) {
    signal?.throwIfAborted();
    await db.query('call refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)',
      [w.cagg, w.window_start, w.window_end]);
    await db.query('select market.finish_bar_refresh($1::bigint)', [w.window_id]);
  }
  const trades = rows[0]?.minutes ?? 0;
  const quotes = quoteRows[0]?.minutes ?? 0;
  return { minutes: trades + quotes, windows: windows.length, full: trades === limit || quotes === limit };
}

/** Keeps bars 1m..1d in step with the trades (see sql/market/bars_rollup.sql and bars_timescaledb.sql). */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      `bars_refresh: expected {limit?: positive integer}, received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const { limit } = parsed.data;
  const done = await helpers.withPgClient((c) => refreshBars(c, limit, helpers.abortSignal));
  if (done.minutes > 0) helpers.logger.info(`bars: ${done.minutes} minutes rebuilt, ${done.windows} aggregate windows refreshed`);
  // A full batch means more may be waiting: continue now rather than at the next cron tick.
  if (done.full) await helpers.addJob('bars_refresh', { limit }, { jobKey: 'bars_refresh' });
};
export default task;
