import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runningPostmaster, startEmbedded, type Database } from '../../../src/db.ts';
import { quietLog } from '../feeds.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');

/** The tickflow CLI (bin/tickflow.js) as a child process, as a user runs it. */
export interface TickflowProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr so far. */
  output(): string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the output matches, or rejects after ms (or when the process exits first). */
  waitForOutput(pattern: RegExp | string, ms?: number): Promise<void>;
  /** kill -9, and wait until the process is gone. */
  kill9(): Promise<void>;
  /** SIGINT (Ctrl-C), then SIGKILL if it has not exited within ms. */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnTickflow(args: string[], env: Record<string, string>): TickflowProcess {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickflow.js'), ...args], {
    cwd: ROOT, env: { ...process.env, TICKFLOW_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => { out += d.toString(); for (const l of listeners) l(); };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => { for (const l of listeners) l(); resolve({ code, signal }); });
  });
  let exited = false;
  void exit.then(() => { exited = true; });
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exit,
    waitForOutput(pattern, ms = 60_000) {
      const matches = () => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out));
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (matches()) { done(); resolve(); return; }
          if (exited || child.exitCode !== null || child.signalCode !== null) {
            done(); reject(new Error(`tickflow exited before printing ${String(pattern)}:\n${out.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`tickflow did not print ${String(pattern)} within ${ms} ms:\n${out.slice(-2000)}`)); }, ms);
        const done = () => { clearTimeout(timer); listeners.delete(check); };
        listeners.add(check);
        check();
      });
    },
    async kill9() {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async stop(ms = 30_000) {
      if (!exited) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try { return await exit; } finally { clearTimeout(timer); }
    },
  };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Processes whose parent is pid (from /proc). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch { /* the process ended while we looked */ }
  }
  return out;
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = performance.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    left = left.filter(alive);
  }
  return left;
}

/**
 * kill -9 of the postmaster of an embedded Postgres data folder, as a crash does. Its backends
 * notice the postmaster's death and exit by themselves; one still running after graceMs is
 * killed too (a new postmaster cannot start while the old shared memory is attached). Returns
 * the postmaster's pid and how many backends needed the second kill.
 */
export async function killPostgres(pgDir: string, graceMs = 3000): Promise<{ pid: number; stragglers: number }> {
  const pid = runningPostmaster(pgDir);
  if (pid === undefined) throw new Error(`no postmaster is running on ${pgDir}`);
  const backends = childrenOf(pid);
  process.kill(pid, 'SIGKILL');
  if ((await waitGone([pid], 5000)).length > 0) throw new Error(`postmaster ${pid} survived SIGKILL`);
  const stragglers = await waitGone(backends, graceMs);
  for (const p of stragglers) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  const left = await waitGone(stragglers, 5000);
  if (left.length > 0) throw new Error(`backends ${left.join(', ')} of the killed postmaster survived SIGKILL`);
  return { pid, stragglers: stragglers.length };
}

/** Starts (after a crash: recovers) the embedded Postgres of a data folder on its port. */
export function restartPostgres(pgDir: string, port: number): Promise<Database> {
  return startEmbedded({ dir: pgDir, port, fsync: false, log: quietLog });
}

/** Rejects when p has not settled within ms: every fault step of a test is bounded in time. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms); });
  try { return await Promise.race([p, timeout]); } finally { clearTimeout(timer); }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
