import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TickflowError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { ROOT } from '../migrate.ts';
import type { ClickHouse, ClickHouseOptions } from './client.ts';

export const CLICKHOUSE_MIGRATIONS = path.join(ROOT, 'migrations', 'clickhouse');

const FILE_NAME = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export interface ClickHouseMigration {
  version: number;
  name: string;
  checksum: string;
  statements: string[];
}

/** migrations/clickhouse/NNN_name.sql in version order. */
export function clickhouseMigrations(dir = CLICKHOUSE_MIGRATIONS): ClickHouseMigration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = FILE_NAME.exec(file);
    if (!m) throw new TickflowError('MIGRATION_FAILED', `migrations/clickhouse/${file}: expected a name like 001_trades.sql`);
    const version = Number(m[1]);
    if (seen.has(version)) throw new TickflowError('MIGRATION_FAILED', `migrations/clickhouse/${file}: version ${m[1]} is used twice`);
    seen.add(version);
    const text = readFileSync(path.join(dir, file), 'utf8');
    return { version, name: file, checksum: createHash('sha256').update(text).digest('hex'), statements: splitStatements(text) };
  });
}

/**
 * Splits a SQL file into statements at semicolons outside strings, quoted identifiers and
 * comments (the HTTP interface takes one statement per request). Comment-only pieces are dropped.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let meaningful = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      current += text.slice(i, stop);
      i = stop - 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      current += text.slice(i, stop);
      i = stop - 1;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length) {
        if (text[j] === '\\') { j += 2; continue; }
        if (text[j] === c) {
          if (text[j + 1] === c) { j += 2; continue; }
          break;
        }
        j++;
      }
      current += text.slice(i, j + 1);
      meaningful = true;
      i = j;
      continue;
    }
    if (c === ';') {
      if (meaningful) out.push(current.trim());
      current = '';
      meaningful = false;
      continue;
    }
    current += c;
    if (!/\s/.test(c)) meaningful = true;
  }
  if (meaningful) out.push(current.trim());
  return out;
}

const LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`;

/** Tables whose TTL follows clickhouse.ticksTtlDays, with their time column. */
const TICK_TABLES = [['trades', 'traded_at'], ['quotes', 'quoted_at']] as const;

/**
 * Applies the migrations not yet recorded in schema_migrations, in order, then makes the ticks
 * TTL match the configuration. ClickHouse DDL is not transactional, so every statement is written
 * to be repeatable (IF NOT EXISTS) and a file is recorded only after all its statements ran: a
 * crash halfway is repaired by running it again. An applied file that changed is an error.
 */
export async function migrateClickHouse(ch: ClickHouse, options: ClickHouseOptions, log: Logger,
                                        dir = CLICKHOUSE_MIGRATIONS): Promise<{ applied: string[]; ttlChanged: string[] }> {
  const migrations = clickhouseMigrations(dir);
  const applied: string[] = [];
  try {
    await ch.client.command({ query: LEDGER });
  } catch (err) {
    throw new TickflowError('MIGRATION_FAILED', `ClickHouse (${ch.location}): cannot create schema_migrations: ${(err as Error).message}`, { cause: err });
  }
  const done = new Map((await ch.client.query({
    query: 'SELECT version, name, checksum FROM schema_migrations FINAL',
    format: 'JSONEachRow',
  }).then((r) => r.json<{ version: number; name: string; checksum: string }>())).map((r) => [r.version, r]));

  for (const m of migrations) {
    const prior = done.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new TickflowError('MIGRATION_FAILED',
          `migrations/clickhouse/${m.name}: expected the content applied as ${prior.name} (sha256 ${prior.checksum.slice(0, 12)}), ` +
          `received a changed file (sha256 ${m.checksum.slice(0, 12)}); applied migrations are append-only, add a new file`);
      }
      continue;
    }
    for (const [n, statement] of m.statements.entries()) {
      try {
        await ch.client.command({ query: statement });
      } catch (err) {
        throw new TickflowError('MIGRATION_FAILED',
          `migrations/clickhouse/${m.name}, statement ${n + 1}: ${(err as Error).message}`, { cause: err });
      }
    }
    await ch.client.insert({
      table: 'schema_migrations',
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    });
    applied.push(m.name);
    log.debug({ migration: m.name }, 'clickhouse migration applied');
  }

  const ttlChanged: string[] = [];
  for (const [table, column] of TICK_TABLES) {
    const [row] = await ch.client.query({
      query: 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
      query_params: { table },
      format: 'JSONEachRow',
    }).then((r) => r.json<{ engine_full: string }>());
    const current = row ? /\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(row.engine_full)?.[1] : undefined;
    if (!row || current === String(options.ticksTtlDays)) continue;
    try {
      await ch.client.command({ query: `ALTER TABLE ${table} MODIFY TTL toDateTime(${column}) + toIntervalDay(${options.ticksTtlDays})` });
    } catch (err) {
      throw new TickflowError('MIGRATION_FAILED', `ClickHouse ${table}: cannot set TTL to ${options.ticksTtlDays} days: ${(err as Error).message}`, { cause: err });
    }
    ttlChanged.push(table);
  }
  log.info({ applied: applied.length, ttlDays: options.ticksTtlDays, ttlChanged, location: ch.location }, 'clickhouse schema up to date');
  return { applied, ttlChanged };
}
