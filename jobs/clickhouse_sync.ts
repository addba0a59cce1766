import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { connect } from '../src/db.ts';
import { TickflowError } from '../src/errors.ts';
import { clickhouseError, clickhouseOptions, openClickHouse } from '../src/clickhouse/client.ts';
import { registeredSyncRuntime, registerSyncRuntime, STREAMS, syncClickHouse, type SyncRuntime } from '../src/clickhouse/sync.ts';
import { createLogger } from '../src/log.ts';

const Payload = z.strictObject({
  streams: z.array(z.enum(STREAMS)).min(1).optional(),
  maxBatches: z.number().int().positive().optional(),
  batchRows: z.number().int().positive().max(1_000_000).optional(),
});

/**
 * The runtime registered by `tickflow start` (which owns the embedded ClickHouse folder). A
 * worker process of its own can only sync to a ClickHouse server: with CLICKHOUSE_URL and
 * DATABASE_URL it opens both once and keeps them for the life of the process.
 */
async function runtime(): Promise<SyncRuntime | undefined> {
  const existing = registeredSyncRuntime();
  if (existing) return existing;
  const config = loadConfig();
  const options = clickhouseOptions(config);
  if (!options.enabled) return undefined;
  if (!config.clickhouseUrl || !config.databaseUrl) {
    throw clickhouseError('CLICKHOUSE_SYNC',
      'clickhouse_sync: expected the sync runtime of `tickflow start` (embedded ClickHouse is owned by that process) ' +
      'or both CLICKHOUSE_URL and DATABASE_URL, received neither');
  }
  const ch = await openClickHouse(config, options);
  const rt: SyncRuntime = { sql: connect(config.databaseUrl, { max: 2, application: 'tickflow-clickhouse-sync' }), ch, options, log: createLogger() };
  registerSyncRuntime(rt);
  return rt;
}

/** Ships new market rows to ClickHouse (see src/clickhouse/sync.ts); a no-op when ClickHouse is off. */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      `clickhouse_sync: expected {streams?: (${STREAMS.join('|')})[], maxBatches?: positive integer, batchRows?: 1..1000000}, ` +
      `received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const rt = await runtime();
  if (!rt) {
    helpers.logger.debug('clickhouse_sync: ClickHouse is switched off (clickhouse.enabled = false)');
    return;
  }
  const report = await syncClickHouse(rt, { ...parsed.data, signal: helpers.abortSignal });
  if (report.skipped) {
    helpers.logger.debug('clickhouse_sync: another sync is running');
    return;
  }
  const rows = report.streams.reduce((n, s) => n + s.rows, 0);
  if (rows > 0) helpers.logger.info(`clickhouse_sync: ${rows} rows shipped in ${Math.round(report.ms)} ms`);
};
export default task;
