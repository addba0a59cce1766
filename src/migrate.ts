import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Sql } from './db.ts';
import type { Logger } from './log.ts';
import { TickflowError } from './errors.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PG_MIGRATIONS = path.join(ROOT, 'migrations', 'postgres');
export const SQL_DIR = path.join(ROOT, 'sql');

/** Every .sql file below dir, in path order (the order sql/ definitions are applied). */
export function sqlFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sqlFiles(full);
    return name.endsWith('.sql') ? [full] : [];
  });
}

/**
 * A sql/ file may start with "-- requires: timescaledb" or "-- requires: rollup" to be applied
 * only on that bars engine; everything else applies everywhere.
 */
export function fileApplies(text: string, engine: BarsEngine): boolean {
  const m = /^--\s*requires:\s*(\w+)/m.exec(text.slice(0, 400));
  return !m || m[1] === engine;
}

export type BarsEngine = 'timescaledb' | 'rollup';

const MIGRATE_LOCK = 7_346_221;

export async function migrate(sql: Sql, url: string, log: Logger): Promise<{ engine: BarsEngine; applied: string[] }> {
  const applied: string[] = [];
  try {
    const done = await runner({
      databaseUrl: url,
      dir: PG_MIGRATIONS,
      migrationsTable: 'pg_migrations',
      migrationsSchema: 'public',
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      log: (m: string) => log.debug({ migration: m }, 'migrate'),
      logger: { debug: () => {}, info: (m: string) => log.debug(m), warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) },
      advisoryLockMode: 'wait',
    } as Parameters<typeof runner>[0]);
    applied.push(...done.map((m) => m.name));
  } catch (err) {
    throw new TickflowError('MIGRATION_FAILED', `postgres migration failed: ${(err as Error).message}`, { cause: err });
  }
  const engine = await barsEngine(sql);
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATE_LOCK})`;
    for (const file of sqlFiles(SQL_DIR)) {
      const text = readFileSync(file, 'utf8');
      if (!fileApplies(text, engine)) continue;
      try {
        await tx.unsafe(text);
      } catch (err) {
        throw new TickflowError('MIGRATION_FAILED', `sql/${path.relative(SQL_DIR, file)}: ${(err as Error).message}`, { cause: err });
      }
    }
  });
  log.info({ applied: applied.length, engine }, 'schema up to date');
  return { engine, applied };
}

/** The bars engine is chosen by the migrations: TimescaleDB when the extension is installed. */
export async function barsEngine(sql: Sql): Promise<BarsEngine> {
  const [row] = await sql<{ ts: boolean }[]>`select exists (select 1 from pg_extension where extname = 'timescaledb') as ts`;
  return row?.ts ? 'timescaledb' : 'rollup';
}
