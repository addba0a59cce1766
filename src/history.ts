import { setMaxListeners } from 'node:events';
import type { JobHelpers } from 'graphile-worker';
import type { Config } from './config.ts';
import { connect, type Sql } from './db.ts';
import type { Logger } from './log.ts';
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { TickflowError } from './errors.ts';
import { redact } from './redact.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { DEFAULT_REST, RestClient, type RestOptions } from '../ingesters/runtime/rest.ts';
import { PageLanding, type HistoryContext, type HistoryVenue, type PageFetcher } from '../ingesters/runtime/history.ts';
import { HISTORY_VENUES } from '../ingesters/index.ts';

/** What history jobs (backfill_chunk, recover_gap) need of the process that runs them. */
export interface HistoryRuntime {
  url: string;
  config: Config;
  log: Logger;
  /** REST timeouts, retries and backoff (tests shorten them). */
  rest?: Partial<RestOptions>;
  /** Requests in flight at once per job. */
  concurrency?: number;
  /** Pages landed (and normalized) per transaction. */
  pagesPerBatch?: number;
}

let registered: HistoryRuntime | undefined;

/** Called by every process that runs a worker (tickflow start, tickflow backfill). */
export function registerHistoryRuntime(rt: HistoryRuntime): void {
  registered = rt;
}

/** The registered runtime; a worker process of its own (graphile-worker CLI) reads DATABASE_URL. */
export function historyRuntime(): HistoryRuntime {
  if (registered) return registered;
  const config = loadConfig();
  if (!config.databaseUrl) {
    throw new TickflowError('DB_UNAVAILABLE',
      'history jobs: expected the runtime of tickflow start / tickflow backfill, or DATABASE_URL, received neither');
  }
  registered = { url: config.databaseUrl, config, log: createLogger() };
  return registered;
}

/** The venue's REST base URL: a configured feed of the venue that names one, else the venue's own. */
export function restBaseUrl(config: Config, venue: HistoryVenue): string {
  const feeds = config.feeds.filter((f) => f.venue === venue.venue);
  return feeds.find((f) => f.urls.rest)?.urls.rest ?? feeds.map((f) => venue.restUrlFor?.(f.urls)).find(Boolean) ?? venue.defaultBaseUrl;
}

export function historyVenue(name: string): HistoryVenue | undefined {
  return Object.hasOwn(HISTORY_VENUES, name) ? HISTORY_VENUES[name] : undefined;
}

export interface HistoryJob {
  /** The job's own connection; it holds the job's lease (ops.job_leases) for as long as the job runs. */
  sql: Sql;
  log: Logger;
  /** Opens the venue's REST client and landing writer for this job. */
  context(venue: HistoryVenue): Promise<{ ctx: HistoryContext; landing: PageLanding }>;
}

/**
 * Runs a history job body with its own database session, leased to the job: if this process
 * dies, ops.release_orphaned_jobs() sees the session gone and frees the job at once for another
 * worker. The landing writer (if opened) is flushed and closed whatever happens.
 */
export async function withHistoryJob<T>(helpers: JobHelpers, jobKey: string, fn: (job: HistoryJob) => Promise<T>): Promise<T> {
  const rt = historyRuntime();
  const log = rt.log.child({ job: jobKey });
  const sql = connect(rt.url, { max: 1, application: 'tickflow-history' });
  const workerId = helpers.job.locked_by; // the worker pool's id (one per process)
  let lander: Lander | undefined;
  let fetcher: PageFetcher | undefined;
  try {
    if (workerId) await sql`select ops.take_job_lease(${workerId}, ${jobKey})`;
    return await fn({
      sql, log,
      async context(venue) {
        await RestClient.ensureBudget(sql, venue);
        lander = new Lander(rt.url, { ...rt.config.landing, maxBufferedBytes: Math.max(rt.config.landing.maxBufferedBytes, 64 << 20) },
          log.child({ component: 'lander' }));
        const rest = { ...DEFAULT_REST, ...rt.rest };
        const client = venue.openFetcher?.({ sql, config: rt.config, log, maxInlineWaitMs: rest.maxInlineWaitMs })
          ?? new RestClient(sql, venue, restBaseUrl(rt.config, venue), log, rest, rt.config.secrets);
        fetcher = client;
        const signal = helpers.abortSignal ?? new AbortController().signal;
        setMaxListeners(64, signal); // every request and backoff sleep of the job listens to it
        const ctx: HistoryContext = {
          sql, lander, client, venue, log, signal,
          concurrency: rt.concurrency ?? 4,
          pagesPerBatch: rt.pagesPerBatch ?? 12,
        };
        return { ctx, landing: new PageLanding(lander, venue.venue) };
      },
    });
  } finally {
    await fetcher?.close?.().catch((err: Error) => log.warn({ err: redact(err.message) }, 'history fetcher did not close cleanly'));
    await lander?.close().catch((err: Error) => log.warn({ err: redact(err.message) }, 'landing writer did not close cleanly'));
    if (workerId) await sql`select ops.end_job_lease(${workerId}, ${jobKey})`.catch(() => {});
    await sql.end({ timeout: 2 });
  }
}

export function errorText(err: unknown): string {
  return redact(err instanceof Error ? `${isCoded(err) ? `${err.code}: ` : ''}${err.message}` : String(err));
}

function isCoded(err: Error): err is Error & { code: string } {
  return typeof (err as { code?: unknown }).code === 'string';
}
