/**
 * A second process for test/clickhouse.test.ts (chdb allows one process per data folder, and a
 * kill must take the engine down with it). Argument: JSON {dataDir, databaseUrl, action,
 * batchRows?, clickhouseUrl?} (clickhouseUrl: server mode, as CLICKHOUSE_URL). Actions:
 *   open               open the embedded ClickHouse and report, or report the error's code/message;
 *   kill-after-insert  sync, and SIGKILL this process right after the first batch reached
 *                      ClickHouse and before Postgres confirmed it;
 *   kill-after-intent  the same, after the batch was recorded as pending and before the insert;
 *   sync               migrate ClickHouse and sync until caught up (killed from outside by tests).
 * Prints one JSON line on stdout.
 */
import { loadConfig } from '../../src/config.ts';
import { connect } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { clickhouseOptions, openClickHouse } from '../../src/clickhouse/client.ts';
import { syncClickHouse } from '../../src/clickhouse/sync.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrate.ts';

interface Args {
  dataDir: string;
  databaseUrl: string;
  action: 'open' | 'kill-after-insert' | 'kill-after-intent' | 'sync';
  batchRows?: number;
  clickhouseUrl?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const config = loadConfig({ env: args.clickhouseUrl ? { CLICKHOUSE_URL: args.clickhouseUrl } : {}, overrides: { dataDir: args.dataDir } });
const options = clickhouseOptions(config);

if (args.action === 'open') {
  try {
    const ch = await openClickHouse(config, options);
    console.log(JSON.stringify({ opened: true, location: ch.location }));
    await ch.close();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    console.log(JSON.stringify({ opened: false, code: e.code, message: e.message }));
  }
} else {
  const ch = await openClickHouse(config, options);
  const sql = connect(args.databaseUrl, { max: 2 });
  const die = () => { process.kill(process.pid, 'SIGKILL'); };
  const log = createLogger({ level: 'warn' });
  if (args.action === 'sync') await migrateClickHouse(ch, options, log);
  const report = await syncClickHouse({ sql, ch, options, log }, {
    batchRows: args.batchRows,
    hooks: args.action === 'sync' ? {} : args.action === 'kill-after-insert' ? { afterInsert: die } : { afterIntent: die },
  });
  console.log(JSON.stringify({ killed: false, streams: report.streams }));
  await sql.end();
  await ch.close();
}
