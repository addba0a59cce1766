import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventEmitter } from 'node:events';
import { Logger as WorkerLogger, run, type Runner, type RunnerOptions, type Task, type TaskList, type WorkerEvents } from 'graphile-worker';
import type { Config } from './config.ts';
import { clickhouseOptions } from './clickhouse/options.ts';
import { connect } from './db.ts';
import type { Logger } from './log.ts';
import { ROOT } from './migrate.ts';
import { redact } from './redact.ts';
import { registerHistoryRuntime } from './history.ts';

export const JOBS_DIR = path.join(ROOT, 'jobs');

function taskFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return taskFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/**
 * What every task gets from the queue. graphile-worker adds `_cron: {ts, backfilled}` to the
 * payload of a job the crontab queued; tasks validate strict payloads, so it is taken off here.
 * graphile-worker stores a failed job's error message in the queue (last_error) and logs it: a
 * secret that slipped into a message (a URL with a key, a payload echoed back) is masked first.
 */
function redactingErrors(task: Task, lease?: (workerId: string) => Promise<void>): Task {
  return async (payload, helpers) => {
    if (payload && typeof payload === 'object' && !Array.isArray(payload) && '_cron' in payload) {
      const { _cron: _ignored, ...rest } = payload as Record<string, unknown>;
      payload = rest;
    }
    if (lease && helpers.job.locked_by) await lease(helpers.job.locked_by);
    try {
      return await task(payload, helpers);
    } catch (err) {
      if (err instanceof Error) {
        const message = redact(err.message);
        if (message !== err.message) {
          err.message = message;
          if (err.stack) err.stack = redact(err.stack);
        }
      }
      throw err;
    }
  };
}

/**
 * One task per file under jobs/; the task name is the path without extension (jobs/a/b.ts -> a/b).
 * With `lease`, every job first records its worker pool as alive (see startWorker).
 */
export async function loadTasks(lease?: (workerId: string) => Promise<void>): Promise<TaskList> {
  const tasks: TaskList = {};
  for (const file of taskFiles(JOBS_DIR)) {
    const name = path.relative(JOBS_DIR, file).replace(/\.ts$/, '').split(path.sep).join('/');
    const mod = (await import(pathToFileURL(file).href)) as { default?: Task };
    if (typeof mod.default === 'function') tasks[name] = redactingErrors(mod.default, lease);
  }
  return tasks;
}

/** The job_key of a worker pool's own lease in ops.job_leases (history jobs add one per job). */
const POOL_LEASE = 'worker-pool';

/** Recurring work; every entry calls into SQL through its task. */
export const CRONTAB = [
  '* * * * * bars_refresh ?max=1&jobKey=bars_refresh&jobKeyMode=replace',
  '* * * * * normalize_pending ?max=1&jobKey=normalize_pending&jobKeyMode=replace',
  '* * * * * clickhouse_sync ?max=1&jobKey=clickhouse_sync&jobKeyMode=replace',
  '17 * * * * maintenance ?max=1&jobKey=maintenance&jobKeyMode=replace',
  '* * * * * detect_gaps ?max=1&jobKey=detect_gaps&jobKeyMode=replace',
  '*/5 * * * * quality_detect ?max=1&jobKey=quality_detect&jobKeyMode=replace',
  '23 3 * * * quality_profile ?max=1&jobKey=quality_profile&jobKeyMode=replace',
].join('\n');

/**
 * The CRONTAB lines this worker runs: those of tasks it has, without the ClickHouse sync when its
 * configuration switches ClickHouse off (the job itself, outside `tickflow start`, can only read
 * the configuration from file and environment, which may say otherwise).
 */
export function scheduledCrontab(taskList: TaskList, config: Config): string {
  const clickhouseOn = clickhouseOptions(config).enabled;
  return CRONTAB.split('\n').filter((line) => {
    const task = line.split(' ')[5] ?? '';
    return taskList[task] !== undefined && (task !== 'clickhouse_sync' || clickhouseOn);
  }).join('\n');
}

/**
 * A process killed mid-job (kill -9, power loss) leaves its jobs locked, and graphile-worker
 * would wait four hours before running them again. Every job's worker pool holds a lease on one
 * session of this process (ops.job_leases, refreshed by every job and every 10 s); at start, and
 * in detect_gaps in any live process, ops.release_orphaned_jobs() frees the locks of pools whose
 * sessions are gone.
 */
export async function startWorker(url: string, config: Config, log: Logger): Promise<Runner> {
  registerHistoryRuntime({ url, config, log: log.child({ component: 'history' }) }); // backfill_chunk, recover_gap
  const leaseSql = connect(url, { max: 1, application: 'tickflow-worker' });
  const pools = new Set<string>();
  const lease = async (workerId: string) => {
    pools.add(workerId);
    await leaseSql`select ops.take_job_lease(${workerId}, ${POOL_LEASE})`;
  };
  const [released] = await leaseSql<{ n: number }[]>`select ops.release_orphaned_jobs() as n`;
  if (released!.n > 0) log.warn({ workers: released!.n }, 'released the jobs of workers that died mid-job');
  const refresh = setInterval(() => {
    for (const id of pools) void lease(id).catch((err: Error) => log.warn({ err: redact(err.message) }, 'could not refresh the worker lease'));
  }, 10_000);
  refresh.unref();
  const taskList = await loadTasks(lease);
  const crontab = scheduledCrontab(taskList, config);
  const events = new EventEmitter() as WorkerEvents; // one emitter for every pool, so listeners stay attached
  const options: RunnerOptions = {
    connectionString: url,
    concurrency: config.worker.concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    taskList,
    crontab,
    events,
    // A job's end that cannot be written (the database is down) ends the pool, which is then
    // replaced below; without batching it would be an unhandled rejection that ends the process.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    logger: new WorkerLogger((scope) => (level, message, meta) => {
      const child = log.child({ job: scope.taskIdentifier, jobId: scope.jobId });
      const fields = meta && typeof meta === 'object' ? { meta } : {};
      if (level === 'error') child.error(fields, message);
      else if (level === 'warning') child.warn(fields, message);
      else child.debug(fields, message);
    }),
  };
  let current = await run(options);
  let stopping = false;
  let stopped: () => void = () => {};
  const done = new Promise<void>((resolve) => { stopped = resolve; });
  // graphile-worker cannot ride out a database restart by itself: a pool that could not record a
  // job's end shuts down. Once the database answers again the jobs the old pool held are freed
  // (they would wait four hours) and a new pool takes over.
  const replace = async (err: unknown) => {
    log.error({ err: redact(String((err as Error | undefined)?.message ?? err)) }, 'worker pool stopped; replacing it once the database answers');
    for (let delay = 250; !stopping; delay = Math.min(delay * 2, 10_000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (stopping) return;
      try {
        // run() against a database that does not answer yet fails, and graphile-worker may leave a
        // rejected promise of its own behind: ask first.
        await leaseSql`select 1`;
        const dead = [...pools];
        if (dead.length > 0) {
          await leaseSql`select graphile_worker.force_unlock_workers(${dead}::text[])`;
          for (const id of dead) { await leaseSql`select ops.end_job_lease(${id}, ${POOL_LEASE})`; pools.delete(id); }
        }
        current = await run(options);
        watch(current);
        log.warn({ released: dead.length }, 'worker pool replaced');
        return;
      } catch (retryErr) {
        log.warn({ err: redact((retryErr as Error).message), retryInMs: delay * 2 }, 'worker pool not replaced yet');
      }
    }
  };
  const watch = (r: Runner) => {
    r.promise.then(() => { if (!stopping) void replace(new Error('the pool ended by itself')); },
      (err: unknown) => { if (!stopping) void replace(err); });
  };
  watch(current);
  const finish = async () => {
    clearInterval(refresh);
    for (const id of pools) await leaseSql`select ops.end_job_lease(${id}, ${POOL_LEASE})`.catch(() => {});
    await leaseSql.end({ timeout: 2 });
    stopped();
  };
  log.info({ tasks: Object.keys(taskList), concurrency: config.worker.concurrency }, 'worker started');
  return {
    events,
    promise: done,
    addJob: (...args) => current.addJob(...args),
    async stop(reason) { stopping = true; try { await current.stop(reason); } finally { await finish(); } },
    async kill(reason) { stopping = true; try { await current.kill(reason); } finally { await finish(); } },
  };
}
