import type { Runner } from 'graphile-worker';
import type { Config } from './config.ts';
import { connect, openDatabase, type Database, type Sql } from './db.ts';
import type { Logger } from './log.ts';
import { migrate } from './migrate.ts';
import { startWorker } from './worker.ts';
import { Lander } from '../ingesters/runtime/lander.ts';
import { WsFeed } from '../ingesters/runtime/connection.ts';
import { WS_VENUES } from '../ingesters/index.ts';
import { TickflowError } from './errors.ts';
import { startClickHouseService } from './clickhouse/sync.ts';
import { attachSources, forgetLander, instrumentJobs, instrumentLander } from './metrics.ts';
import { startOpsServer, type OpsServer } from './http.ts';

export interface App {
  db: Database;
  sql: Sql;
  lander: Lander;
  feeds: WsFeed[];
  worker: Runner | undefined;
  /** The operations endpoint (/metrics, /health, /ready), when it is listening. */
  http: OpsServer | undefined;
  stop(): Promise<void>;
}

/**
 * Everything `tickflow start` runs, in one process: database, schema, worker, ingesters.
 * `ingest` (feeds only, for the tickflow_ingester role) and `worker` (worker, maintenance and the
 * ClickHouse sync, for tickflow_worker) split it in two processes; neither migrates: that is
 * `tickflow migrate`, run by the schema owner.
 */
export async function startApp(config: Config, log: Logger,
                               opts: { worker?: boolean; feeds?: boolean; only?: 'ingest' | 'worker' } = {}): Promise<App> {
  if (opts.only === 'ingest') opts = { ...opts, worker: false };
  if (opts.only === 'worker') opts = { ...opts, feeds: false };
  const db = await openDatabase(config, log);
  const sql = connect(db.url, { max: 8 });
  try {
    if (!opts.only) await migrate(sql, db.url, log);
    if (opts.only !== 'ingest') {
      await sql`select ops.set_setting('retention.staging_days', ${String(config.retention.stagingDays)})`;
      await sql`select ops.set_setting('retention.ticks_days', ${String(config.retention.ticksDays)})`;
      await sql`select ops.run_maintenance()`;
    }
  } catch (err) {
    await sql.end({ timeout: 1 });
    await db.stop();
    throw err;
  }
  // Accept times give the receive-to-commit latency histogram (about 0.25 µs per frame).
  const lander = new Lander(db.url, { ...config.landing, trackAcceptTimes: config.metrics.enabled }, log.child({ component: 'lander' }));
  instrumentLander(lander);
  // New trades (and tradeable quotes of quote-priced instruments) invalidate bars; ask the worker
  // to rebuild them, at most once a second.
  let barsQueued = 0;
  lander.onBatch((r) => {
    if (!r.counts || !(Number(r.counts.trades) > 0 || Number(r.counts.bar_quotes) > 0) || performance.now() - barsQueued < 1000) return;
    barsQueued = performance.now();
    sql`select ops.request_bars_refresh()` // queues bars_refresh; callable by the ingester role
      .catch((err: Error) => log.warn({ err: err.message }, 'could not queue bars_refresh'));
  });
  let clickhouse: Awaited<ReturnType<typeof startClickHouseService>>;
  try {
    clickhouse = opts.only === 'ingest' ? undefined : await startClickHouseService(config, sql, log.child({ component: 'clickhouse' }));
  } catch (err) {
    await sql.end({ timeout: 1 });
    await db.stop();
    throw err;
  }
  const worker = opts.worker === false ? undefined : await startWorker(db.url, config, log.child({ component: 'worker' }));
  if (worker) instrumentJobs(worker.events);
  const feeds: WsFeed[] = [];
  if (opts.feeds !== false) {
    for (const feed of config.feeds.filter((f) => f.enabled)) {
      const venue = WS_VENUES[feed.venue];
      if (!venue) throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}.venue: expected a live venue (${Object.keys(WS_VENUES).join(', ')}), received ${feed.venue}`);
      const unknown = feed.channels.filter((c) => !venue.channels.includes(c));
      if (unknown.length > 0) {
        throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}.channels: expected any of ${venue.channels.join(', ')}, received ${unknown.join(', ')}`);
      }
      const f = new WsFeed(venue, feed, lander, log.child({ feed: feed.name }), { secrets: config.secrets });
      f.start();
      feeds.push(f);
    }
  }
  // An ingest-only process may read nothing in Postgres (tickflow_ingester): the worker reports those.
  const detachMetrics = attachSources({ sql: opts.only === 'ingest' ? undefined : sql, feeds, clickhouse: clickhouse !== undefined, log });
  let ops: OpsServer | undefined;
  if (config.metrics.enabled) {
    try {
      ops = await startOpsServer(config.metrics, [{ name: 'database', check: async () => { await sql`select 1`; } }],
        log.child({ component: 'http' }));
    } catch (err) {
      // Capture matters more than its dashboard: run on, and say loudly why /metrics is missing.
      log.error({ host: config.metrics.host, port: config.metrics.port, err: (err as Error).message },
        'operations endpoint could not listen; running without /metrics, /health and /ready');
    }
  }
  log.info({ feeds: feeds.map((f) => f.feed.name), embedded: db.embedded }, 'tickflow started');
  let stopped = false;
  return {
    db, sql, lander, feeds, worker, http: ops,
    async stop() {
      if (stopped) return;
      stopped = true;
      await ops?.close();
      await Promise.all(feeds.map((f) => f.stop()));
      await lander.close(); // in-flight batches are flushed before the database goes away
      forgetLander(lander);
      detachMetrics();
      await worker?.stop();
      await clickhouse?.stop();
      await sql.end({ timeout: 5 });
      await db.stop();
      log.info('tickflow stopped');
    },
  };
}
