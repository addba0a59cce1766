import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseClientConfigOptions, type ClickHouseSettings } from '@clickhouse/client';
import type { Config } from '../config.ts';
import { clickhouseOptions, type ClickHouseOptions } from './options.ts';
import { TickflowError, type ErrorCode } from '../errors.ts';
import { redact, registerSecret } from '../redact.ts';

export { clickhouseConfigSchema, clickhouseOptions, type ClickHouseOptions } from './options.ts';

/**
 * Codes this module raises that src/errors.ts does not list yet; see the ClickHouse issue's
 * report for the lines to add there.
 */
export type ClickHouseErrorCode = ErrorCode | 'CLICKHOUSE_UNAVAILABLE' | 'CLICKHOUSE_SYNC' | 'EXPORT_INVALID';

export function clickhouseError(code: ClickHouseErrorCode, message: string, options?: { cause?: unknown }): TickflowError {
  return new TickflowError(code as ErrorCode, message, options);
}

/**
 * Settings on every query. chdb sends them as SET statements in one long-lived session, so a
 * setting given to one query would otherwise stay for the next: the deduplication token in
 * particular is reset here on every query and set only by the inserts that carry one.
 */
export const BASE_SETTINGS: ClickHouseSettings = Object.freeze({
  async_insert: 0,
  insert_deduplicate: 1,
  insert_deduplication_token: '',
  deduplicate_blocks_in_dependent_materialized_views: 1,
  output_format_json_quote_decimals: 1,
  output_format_json_quote_64bit_integers: 1,
});

export interface ClickHouse {
  readonly client: ClickHouseClient;
  /** server: CLICKHOUSE_URL; embedded: chdb in this process, on `location`. */
  readonly mode: 'server' | 'embedded';
  /** The data folder (embedded) or the server URL without credentials. */
  readonly location: string;
  readonly database: string;
  close(): Promise<void>;
}

interface Embedded {
  dir: string;
  client: ClickHouseClient;
  database: string;
  refs: number;
}

/** chdb runs one engine per process, bound to one folder; every handle in this process shares it. */
let embedded: Embedded | undefined;

export function embeddedDir(config: Config): string {
  return path.join(config.dataDir, 'clickhouse');
}

/**
 * Opens ClickHouse: the server named by CLICKHOUSE_URL, or else the engine in-process (chdb) with
 * its data in <dataDir>/clickhouse. Only one process can own that folder; a second one gets
 * DATA_DIR_LOCKED naming the folder and the owner's pid. The database is created if missing.
 */
export async function openClickHouse(config: Config, options: ClickHouseOptions = clickhouseOptions(config)): Promise<ClickHouse> {
  if (!options.enabled) {
    throw new TickflowError('CONFIG_INVALID', 'clickhouse.enabled: expected true to open ClickHouse, received false');
  }
  if (config.clickhouseUrl) return openServer(config.clickhouseUrl, options);
  return openEmbedded(embeddedDir(config), options.database);
}

async function openServer(url: string, options: ClickHouseOptions): Promise<ClickHouse> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new TickflowError('CONFIG_INVALID', `CLICKHOUSE_URL: expected http(s)://[user:password@]host:port[/database], received ${redact(url)}`, { cause: err });
  }
  registerSecret(decodeURIComponent(parsed.password));
  const database = parsed.pathname.replace(/^\//, '') || options.database;
  parsed.pathname = '/';
  const location = `${parsed.protocol}//${parsed.host}/${database}`;
  // The client's own logger writes to the console, past redaction; failures surface as errors here.
  const log = { level: ClickHouseLogLevel.OFF };
  const bootstrap = createClient({ url: parsed, clickhouse_settings: BASE_SETTINGS, log });
  try {
    await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)}` });
  } catch (err) {
    throw clickhouseError('CLICKHOUSE_UNAVAILABLE', `ClickHouse at ${location}: ${(err as Error).message}`, { cause: err });
  } finally {
    await bootstrap.close();
  }
  const client = createClient({ url: parsed, database, clickhouse_settings: BASE_SETTINGS, request_timeout: 300_000, log });
  return { client, mode: 'server', location, database, close: () => client.close() };
}

async function openEmbedded(dir: string, database: string): Promise<ClickHouse> {
  if (embedded && embedded.dir !== dir) {
    throw new TickflowError('DATA_DIR_LOCKED',
      `ClickHouse data folder ${dir}: this process already runs the in-process ClickHouse on ${embedded.dir} (one folder per process)`);
  }
  if (!embedded) {
    mkdirSync(dir, { recursive: true });
    let client: ClickHouseClient;
    try {
      // Loaded here, not at import: the native engine is large and only embedded mode needs it.
      const { createChdbConnection } = await import('chdb/connection');
      // chdb implements @clickhouse/client-common's Connection; the client re-declares the same
      // interface from its own copy of the settings types, hence the cast.
      const connection = createChdbConnection({ path: dir }) as unknown as ClickHouseClientConfigOptions['connection'];
      client = createClient({ connection, clickhouse_settings: BASE_SETTINGS });
    } catch (err) {
      const owner = lockOwner(dir);
      if (owner !== undefined) {
        throw new TickflowError('DATA_DIR_LOCKED',
          `ClickHouse data folder ${dir} is in use by process ${owner}; in embedded mode only one tickflow process ` +
          '(the one running `tickflow start`, which also runs the ClickHouse sync) can open it. Stop that process, or use CLICKHOUSE_URL',
          { cause: err });
      }
      throw clickhouseError('CLICKHOUSE_UNAVAILABLE', `ClickHouse data folder ${dir}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)}` });
      await client.command({ query: `USE ${quoteIdent(database)}` });
    } catch (err) {
      await client.close();
      throw clickhouseError('CLICKHOUSE_UNAVAILABLE', `ClickHouse data folder ${dir}: ${(err as Error).message}`, { cause: err });
    }
    embedded = { dir, client, database, refs: 0 };
  } else if (embedded.database !== database) {
    throw new TickflowError('CONFIG_INVALID', `clickhouse.database: expected ${embedded.database} (already open in this process), received ${database}`);
  }
  const shared = embedded;
  shared.refs += 1;
  let closed = false;
  return {
    client: shared.client,
    mode: 'embedded',
    location: dir,
    database,
    close: async () => {
      if (closed) return;
      closed = true;
      shared.refs -= 1;
      if (shared.refs === 0) {
        embedded = undefined;
        await shared.client.close();
      }
    },
  };
}

/**
 * The pid written in <dir>/status by the process that holds the folder's lock, if that process
 * is alive and is not this one (chdb reports a held lock only as "failed to create connection").
 */
function lockOwner(dir: string): number | undefined {
  const file = path.join(dir, 'status');
  if (!existsSync(file)) return undefined;
  const m = /^PID:\s*(\d+)/m.exec(readFileSync(file, 'utf8'));
  const pid = m ? Number(m[1]) : NaN;
  if (!Number.isInteger(pid) || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined; // EPERM: alive, another user's
  }
}

export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new TickflowError('CONFIG_INVALID', `ClickHouse identifier: expected letters, digits and underscores, received ${JSON.stringify(name)}`);
  }
  return `\`${name}\``;
}
