import path from 'node:path';
import { run, Logger as WorkerLogger, type Runner, type TaskList } from 'graphile-worker';
import type { Config } from './config.ts';
import { connect, openDatabase, runningPostmaster, type Sql } from './db.ts';
import type { Logger } from './log.ts';
import { migrate } from './migrate.ts';
import { loadTasks } from './worker.ts';
import { TickflowError } from './errors.ts';
import { historyVenue, registerHistoryRuntime } from './history.ts';

/** The tasks a `tickflow backfill` process runs: history only (tickflow start runs everything). */
const HISTORY_TASKS = ['backfill_chunk', 'recover_gap', 'backfill'];

export interface BackfillArgs {
  venue?: string;
  instrument?: string;
  kind?: string;
  timeframe?: string;
  from?: string;
  to?: string;
  detach?: boolean;
  concurrency?: string;
}

/** A date (2025-12-31) means the whole day: --to 2025-12-31 ends at 2026-01-01T00:00:00Z. */
export function parseInstant(text: string, end: boolean): string {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (day) {
    const ms = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]) + (end ? 1 : 0));
    return new Date(ms).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$/.test(text)) return text;
  throw new TickflowError('BACKFILL_INVALID', `expected a date (2024-01-01) or an ISO-8601 time with offset, received ${text}`);
}

export interface PlanRequest { venue: string; symbol: string; kind: 'candles' | 'trades' | 'ticks'; timeframe: string | null; from: string; to: string }

export function backfillRequest(a: BackfillArgs): PlanRequest {
  const missing = (['venue', 'instrument', 'kind', 'from', 'to'] as const).filter((k) => !a[k]);
  if (missing.length > 0) {
    throw new TickflowError('BACKFILL_INVALID', `backfill: expected --venue --instrument --kind --from --to, missing ${missing.map((m) => `--${m}`).join(' ')}`);
  }
  const venue = historyVenue(a.venue!);
  if (!venue) throw new TickflowError('BACKFILL_INVALID', `backfill: --venue: expected a venue with REST history, received ${a.venue}`);
  if (!/^[A-Z0-9.]+(\/[A-Z0-9.]+)?$/.test(a.instrument!)) {
    throw new TickflowError('BACKFILL_INVALID', `backfill: --instrument: expected a canonical instrument such as BTC/USDT or AAPL, received ${a.instrument}`);
  }
  if (a.kind !== 'candles' && a.kind !== 'trades' && a.kind !== 'ticks') {
    throw new TickflowError('BACKFILL_INVALID', `backfill: --kind: expected candles, trades or ticks, received ${a.kind}`);
  }
  if (a.kind === 'ticks' && !venue.filePages) {
    throw new TickflowError('BACKFILL_INVALID', `backfill: --kind ticks: expected a venue that serves tick files, received ${venue.venue}`);
  }
  if (a.kind === 'candles' && (!a.timeframe || !venue.timeframes.includes(a.timeframe))) {
    throw new TickflowError('BACKFILL_INVALID', `backfill: --timeframe: expected one of ${venue.timeframes.join(', ')}, received ${a.timeframe ?? 'nothing'}`);
  }
  const from = parseInstant(a.from!, false);
  const to = parseInstant(a.to!, true);
  if (Date.parse(to) <= Date.parse(from)) throw new TickflowError('BACKFILL_INVALID', `backfill: expected --from before --to, received ${from} .. ${to}`);
  return { venue: venue.venue, symbol: a.instrument!, kind: a.kind, timeframe: a.kind === 'candles' ? a.timeframe! : null, from, to };
}

export interface Progress {
  plan_id: string;
  state: string;
  chunks: number;
  chunks_done: number;
  chunks_running: number;
  chunks_failed: number;
  rows_new: string;
  rows_received: string;
  rows_per_second: string | null;
  eta_seconds: string | null;
  errors: string[] | null;
}

export async function planProgress(sql: Sql, planId: string): Promise<Progress | undefined> {
  const [p] = await sql<Progress[]>`
    select plan_id::text, state, chunks, chunks_done, chunks_running, chunks_failed, rows_new::text, rows_received::text,
           rows_per_second::text, eta_seconds::text, errors
    from ops.backfill_progress where plan_id = ${planId}`;
  return p;
}

const num = (v: string | number | null) => (v === null ? '-' : Math.round(Number(v)).toLocaleString('en-US'));

/** [#########-----------]  52/105 chunks  545,000 rows (540,100 new)  71,234 rows/s  ETA 7 s */
export function progressLine(p: Progress, width = 24): string {
  const filled = p.chunks === 0 ? width : Math.round((p.chunks_done / p.chunks) * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const eta = p.eta_seconds === null ? 'ETA -' : `ETA ${num(p.eta_seconds)} s`;
  const failed = p.chunks_failed > 0 ? `  ${p.chunks_failed} failed` : '';
  return `${bar} ${String(p.chunks_done).padStart(String(p.chunks).length)}/${p.chunks} chunks  ${num(p.rows_received)} rows (${num(p.rows_new)} new)  ` +
    `${num(p.rows_per_second)} rows/s  ${eta}${failed}`;
}

export async function startHistoryWorker(url: string, config: Config, log: Logger, concurrency: number): Promise<Runner> {
  registerHistoryRuntime({ url, config, log: log.child({ component: 'history' }) });
  const all = await loadTasks();
  const taskList: TaskList = Object.fromEntries(HISTORY_TASKS.filter((t) => all[t]).map((t) => [t, all[t]!]));
  return run({
    connectionString: url, concurrency, noHandleSignals: true, pollInterval: 500, taskList,
    logger: new WorkerLogger((scope) => (level, message, meta) => {
      const child = log.child({ job: scope.taskIdentifier, jobId: scope.jobId });
      if (level === 'error') child.error(meta && typeof meta === 'object' ? { meta } : {}, message);
      else if (level === 'warning') child.warn(message);
      else child.debug(message);
    }),
  });
}

/**
 * `tickflow backfill`: plans the request (ops.plan_backfill), runs a history worker in this
 * process and shows the plan's progress until it ends. Killing it at any moment is safe: the
 * next run (or any worker) resumes the unfinished chunks, and finished chunks are never fetched
 * again. With --detach it only plans (a running tickflow start does the work).
 */
export async function backfillCommand(args: BackfillArgs, config: Config, log: Logger): Promise<number> {
  const request = backfillRequest(args);
  // A database another tickflow process started is used, never stopped, by this one.
  const adopted = !config.databaseUrl && runningPostmaster(path.join(config.dataDir, 'pg')) !== undefined;
  const db = await openDatabase(config, log);
  const sql = connect(db.url, { max: 2, application: 'tickflow-backfill' });
  let worker: Runner | undefined;
  let interrupted = false;
  const onSignal = () => { interrupted = true; };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await migrate(sql, db.url, log);
    const concurrency = args.concurrency ? Number(args.concurrency) : config.worker.concurrency;
    if (!args.detach) worker = await startHistoryWorker(db.url, config, log, concurrency);
    await sql`select ops.release_orphaned_jobs()`;
    const [plan] = await sql<{ plan_id: string }[]>`
      select ops.plan_backfill(${request.venue}, ${request.symbol}, ${request.kind}, ${request.timeframe},
                               ${request.from}::timestamptz, ${request.to}::timestamptz, 'cli')::text as plan_id`;
    const planId = plan!.plan_id;
    console.log(`backfill plan ${planId}: ${request.venue} ${request.symbol} ${request.kind}${request.timeframe ? ` ${request.timeframe}` : ''} ` +
      `${request.from} .. ${request.to}`);
    if (args.detach) return 0;
    const tty = process.stderr.isTTY;
    let lastPrint = 0;
    let p = await planProgress(sql, planId);
    while (p && (p.state === 'queued' || p.state === 'running') && !interrupted) {
      if (tty) process.stderr.write(`\r${progressLine(p)}\x1b[K`);
      else if (performance.now() - lastPrint > 2000) { console.log(progressLine(p)); lastPrint = performance.now(); }
      await new Promise((r) => setTimeout(r, 250));
      p = await planProgress(sql, planId);
    }
    if (tty) process.stderr.write('\n');
    if (!p) return 1;
    console.log(progressLine(p));
    if (interrupted) { console.log(`interrupted: plan ${planId} resumes with the next tickflow backfill or tickflow start`); return 130; }
    for (const e of p.errors ?? []) console.log(`failed chunk ${e}`);
    console.log(`plan ${planId} ${p.state}`);
    return p.state === 'done' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await worker?.stop();
    await sql.end({ timeout: 2 });
    if (!adopted) await db.stop();
  }
}

/** Lines for `tickflow status`: unfinished or failed backfills, failed chunks, the gap ledger, venue budgets. */
export async function historyStatus(sql: Sql): Promise<string> {
  const plans = await sql<Progress[]>`
    select plan_id::text, state, chunks, chunks_done, chunks_running, chunks_failed, rows_new::text, rows_received::text,
           rows_per_second::text, eta_seconds::text, errors
    from ops.backfill_progress
    where state <> 'done' or requested_at > now() - interval '1 day'
    order by plan_id desc limit 10`;
  const gaps = await sql<{ state: string; n: number; rows: string }[]>`
    select state, count(*)::int as n, sum(rows_recovered)::text as rows from quality.gaps group by state order by state`;
  const budgets = await sql<{ venue: string; state: string; used: number; effective_max: number }[]>`
    select venue, state, used, effective_max from ops.rate_status where state <> 'ok' order by venue`;
  const lines: string[] = [];
  if (plans.length > 0) {
    lines.push('', 'backfills');
    for (const p of plans) {
      lines.push(`  plan ${p.plan_id} ${p.state.padEnd(7)} ${progressLine(p, 16)}`);
      for (const e of p.errors ?? []) lines.push(`    failed chunk ${e}`);
    }
  }
  if (gaps.length > 0) {
    lines.push('', `gap ledger: ${gaps.map((g) => `${g.n} ${g.state}`).join(', ')}; ${num(gaps.reduce((s, g) => s + Number(g.rows ?? 0), 0))} rows recovered`);
  }
  for (const b of budgets) lines.push(`venue ${b.venue}: ${b.state} (weight ${b.used}/${b.effective_max} this window)`);
  return lines.join('\n');
}
