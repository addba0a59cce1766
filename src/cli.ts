import { parseArgs } from 'node:util';
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { connect, openDatabase } from './db.ts';
import { migrate } from './migrate.ts';
import { startApp } from './app.ts';
import { feedStatus, formatStatus } from './status.ts';
import { isTickflowError, TickflowError } from './errors.ts';
import { redact } from './redact.ts';
import { clickhouseOptions } from './clickhouse/options.ts';
import { openClickHouse } from './clickhouse/client.ts';
import { migrateClickHouse } from './clickhouse/migrate.ts';
import { exportToFile } from './clickhouse/export.ts';
import { backfillCommand, historyStatus, type BackfillArgs } from './backfill-cli.ts';
import { qualityCommand } from './quality-report.ts';

/** Errors of a database call cut off by a lost connection: postgres.js and socket codes, SQLSTATE class 08 and 57P01-57P03. */
function lostDatabaseConnection(reason: unknown): boolean {
  const code = reason && typeof reason === 'object' ? String((reason as { code?: unknown }).code ?? '') : '';
  return /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT|ECONNREFUSED|ECONNRESET|EPIPE|08[0-9A-Z]{3}|57P0[123])$/.test(code);
}

const USAGE = `usage: tickflow <command> [--config FILE]

commands:
  start     start the database (embedded unless DATABASE_URL), migrate, run the worker and the feeds
            --only ingest | --only worker: one half, no migration (servers, one database role each)
  migrate   apply migrations and sql/ definitions, then exit
  status    per feed: connected, messages/s over the last minute, last message age, open gaps, quarantine
  export    --format Parquet|CSV|CSVWithNames|TSVWithNames|JSONEachRow|Arrow --out FILE
            (--query SQL | --table trades|quotes|bars_1m|... [--venue V] [--symbol S] [--from T] [--to T])
            write a ClickHouse query result or table slice to a file, formatted by ClickHouse
  backfill  --venue binance --instrument BTC/USDT --kind candles|trades [--timeframe 1m] --from 2024-01-01 --to 2025-12-31
            [--concurrency N] [--detach]: plan the range as chunks (jobs), run them with a progress bar;
            a date as --to includes that day; killed and run again, it resumes and fetches only what is missing
  quality   report --instrument EUR/USD --from 2019-02-03 --to 2019-02-09 [--venue V]: completeness per day, gaps by
            label, spikes and anomalies with their trend (the numbers of the quality.daily_* views)
            detect [--from T --to T] [--instrument S]: run the quality detectors now (as the quality_detect job)`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv, allowPositionals: true, strict: false,
    options: {
      config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, only: { type: 'string' },
      format: { type: 'string' }, out: { type: 'string' }, query: { type: 'string' }, table: { type: 'string' },
      venue: { type: 'string' }, symbol: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
      instrument: { type: 'string' }, kind: { type: 'string' }, timeframe: { type: 'string' },
      concurrency: { type: 'string' }, detach: { type: 'boolean' },
    },
  });
  const command = positionals[0];
  if (!command || values.help) { console.log(USAGE); return command ? 0 : 2; }
  const config = loadConfig({ file: values.config as string | undefined });
  const log = createLogger();

  if (command === 'start') {
    const only = values.only as string | undefined;
    if (only !== undefined && only !== 'ingest' && only !== 'worker') {
      throw new TickflowError('CONFIG_INVALID', `--only: expected ingest or worker, received ${only}`);
    }
    // A database call cut off by a lost connection that nothing awaited would end the process
    // (Node's default for an unhandled rejection); the landing writer retries what it accepted
    // and the worker replaces its pool, so such a call is logged and tickflow runs on. Any other
    // unhandled rejection still ends it.
    process.on('unhandledRejection', (reason) => {
      if (!lostDatabaseConnection(reason)) throw reason;
      log.error({ err: redact(String((reason as Error).message)), code: (reason as { code?: unknown }).code },
        'a database call was cut off by a lost connection and not awaited; running on');
    });
    const app = await startApp(config, log, { only });
    await new Promise<void>((resolve) => {
      const onSignal = (sig: string) => { log.info({ signal: sig }, 'shutting down'); resolve(); };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
    await app.stop();
    return 0;
  }
  if (command === 'migrate' || command === 'status') {
    const db = await openDatabase(config, log);
    const sql = connect(db.url, { max: 2 });
    try {
      if (command === 'migrate') {
        await migrate(sql, db.url, log);
        const options = clickhouseOptions(config);
        if (options.enabled) {
          const ch = await openClickHouse(config, options);
          try { await migrateClickHouse(ch, options, log); } finally { await ch.close(); }
        }
      } else console.log(formatStatus(await feedStatus(sql)) + await historyStatus(sql));
    } finally {
      await sql.end({ timeout: 2 });
      await db.stop();
    }
    return 0;
  }
  if (command === 'backfill') return backfillCommand(values as BackfillArgs, config, log);
  if (command === 'quality') return qualityCommand(positionals[1], values, config, log);
  if (command === 'export') {
    const ch = await openClickHouse(config, clickhouseOptions(config));
    try {
      const v = values as Record<string, string | undefined>;
      const request = v.query
        ? { query: v.query, format: v.format, file: v.out }
        : { slice: { table: v.table, venue: v.venue, symbol: v.symbol, from: v.from, to: v.to }, format: v.format, file: v.out };
      const result = await exportToFile(ch, request as Parameters<typeof exportToFile>[1]);
      console.log(`wrote ${result.file} (${result.format}, ${result.bytes} bytes, ${Math.round(result.ms)} ms)`);
    } finally {
      await ch.close();
    }
    return 0;
  }
  console.error(`unknown command: ${command}\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  if (isTickflowError(err)) console.error(`tickflow: ${err.code}: ${redact(err.message)}`);
  else console.error(`tickflow: ${redact(err instanceof Error ? err.stack ?? err.message : String(err))}`);
  process.exitCode = 1;
});
