import { Logger as WorkerLogger, run, type Runner, type TaskList } from 'graphile-worker';
import { loadConfig, type Config } from '../../src/config.ts';
import { registerHistoryRuntime } from '../../src/history.ts';
import { loadTasks } from '../../src/worker.ts';
import type { RestOptions } from '../../ingesters/runtime/rest.ts';
import { quietLog } from './feeds.ts';

/** A config whose Binance REST history is the fake venue (the feed itself is not started). */
export function historyConfig(restUrl: string, over: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      feeds: [{ name: 'binance-history', venue: 'binance', enabled: false, channels: ['trade'], instruments: ['BTC/USDT'],
                urls: { rest: restUrl } }],
      ...over,
    },
  });
}

/** Short timeouts and backoff, so retries happen within a test's time. */
export const FAST_REST: Partial<RestOptions> = {
  headersTimeoutMs: 1500, bodyTimeoutMs: 1500, attempts: 3, backoffBaseMs: 20, backoffCapMs: 200, maxInlineWaitMs: 30_000,
};

const workerLogger = new WorkerLogger(() => (level, message) => {
  if (process.env.TEST_LOG_LEVEL && level === 'error') console.error(message);
});

export interface HistoryWorkers { runners: Runner[]; stop(): Promise<void> }

/**
 * graphile-worker pools running the history tasks against a test database; several pools stand
 * for several worker processes (each has its own connections; only Postgres coordinates them).
 */
export async function startHistoryWorkers(url: string, restUrl: string, opts: {
  pools?: number; concurrency?: number; rest?: Partial<RestOptions>; pagesPerBatch?: number; requestsPerJob?: number;
  /** A config of its own (another venue's history URLs); by default historyConfig(restUrl). */
  config?: Config;
} = {}): Promise<HistoryWorkers> {
  registerHistoryRuntime({ url, config: opts.config ?? historyConfig(restUrl), log: quietLog, rest: { ...FAST_REST, ...opts.rest },
    pagesPerBatch: opts.pagesPerBatch, concurrency: opts.requestsPerJob });
  const all = await loadTasks();
  const taskList: TaskList = { backfill_chunk: all.backfill_chunk!, recover_gap: all.recover_gap!, backfill: all.backfill! };
  const runners: Runner[] = [];
  for (let k = 0; k < (opts.pools ?? 1); k++) {
    runners.push(await run({ connectionString: url, concurrency: opts.concurrency ?? 4, noHandleSignals: true, pollInterval: 100,
      taskList, logger: workerLogger }));
  }
  return { runners, stop: async () => { for (const r of runners) await r.stop(); } };
}
