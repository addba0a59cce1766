// npm run bench: every benchmark scenario, several runs each, medians written beside their
// targets to test/bench/results.json and test/bench/results.md.
//   BENCH_ONLY=binance,clickhouse npm run bench   measures only these scenarios (binance, or a
//   script's name) and keeps the other figures of the last report, each with when it was measured.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, connect } from '../../src/db.ts';
import { migrate } from '../../src/migrate.ts';
import { createLogger } from '../../src/log.ts';
import { ingestBench, type IngestFigures } from './binance-ingest.ts';
import { freePort } from '../support/global-setup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const HEAVY_RUNS = Number(process.env.BENCH_HEAVY_RUNS ?? 3);
const HEAVY = new Set(['backfill.ts', 'quality.ts', 'clickhouse.ts', 'dukascopy-backfill.ts']);
const log = createLogger({ level: 'warn' });
// Figures on a shared machine depend on what else runs: the load is reported beside them.
const LOAD_AT_START = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((x) => x.trim().replace(/\.ts$/, ''))) : null;
const wanted = (scenario: string) => ONLY === null || ONLY.has(scenario);
const RESULTS_JSON = path.join(import.meta.dirname, 'results.json');

interface Figure {
  scenario: string; name: string; value: number; unit: string; target: string; met: boolean | null; runs: number[];
  /** When the scenario ran and the machine's 1-minute load average as it started. */
  measured: string;
}
// Figures of scenarios not measured this time are kept from the last report (BENCH_ONLY).
const kept: Figure[] = ONLY === null || !existsSync(RESULTS_JSON) ? []
  : (JSON.parse(readFileSync(RESULTS_JSON, 'utf8')).figures as Figure[]).filter((f) => f.scenario && !ONLY.has(f.scenario));
const figures: Figure[] = [];
let scenario = 'binance';
let scenarioMeasured = '';
const startScenario = (name: string) => {
  scenario = name;
  scenarioMeasured = `${new Date().toISOString().slice(0, 16)}Z, load ${os.loadavg()[0]!.toFixed(1)}`;
};
/** Records a figure's runs; a figure measured again (a scenario script run once more) gains runs. */
function add(name: string, runs: number[], unit: string, target: string, ok: (v: number) => boolean | null) {
  let f = figures.find((x) => x.name === name);
  if (!f) figures.push(f = { scenario, name, value: NaN, unit, target, met: null, runs: [], measured: scenarioMeasured });
  f.runs.push(...runs.filter((r) => Number.isFinite(r)));
  f.value = median(f.runs);
  f.met = ok(f.value);
  console.log(`${name}: ${f.value} ${unit} (target ${target}) runs=${f.runs.join(', ')}`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tickflow-bench-'));
const db = wanted('binance') ? await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: true, log }) : null;
if (db) try {
  startScenario('binance');
  const sql = connect(db.url, { max: 2 });
  await migrate(sql, db.url, log);
  await sql`select ops.ensure_all_partitions(now() - interval '1 day', now() + interval '2 days')`;
  await sql.end();

  const throughput: IngestFigures[] = [];
  const paced: IngestFigures[] = [];
  for (let i = 0; i < RUNS; i++) {
    throughput.push(await ingestBench(db.url, { messages: 200_000, rate: 0, batchFrames: 5000, flushMs: 20 }));
    paced.push(await ingestBench(db.url, { messages: 100_000, rate: 10_000, batchFrames: 5000, flushMs: 5, warmupMs: 2000 }));
  }
  add('binance: sustained messages/s landed and normalized', throughput.map((f) => f.messagesPerSecond), 'msg/s', '>= 25000', (v) => v >= 25_000);
  add('binance: receive to normalized commit p50 at 10k msg/s (after 2 s)', paced.map((f) => f.latencyP50Ms), 'ms', 'report', () => null);
  add('binance: receive to normalized commit p99 at 10k msg/s (after 2 s)', paced.map((f) => f.latencyP99Ms), 'ms', '<= 25', (v) => v <= 25);
  add('binance: slowest receive to commit in the first 2 s at 10k msg/s (writer warm-up, not in p50/p99)', paced.map((f) => f.warmupMaxMs), 'ms', 'report', () => null);
  add('binance: ingester CPU per message (max rate)', throughput.map((f) => f.cpuMicrosPerMessage), 'µs', 'report', () => null);
  add('binance: ingester peak RSS (max rate)', throughput.map((f) => f.peakRssMb), 'MB', 'report', () => null);
} finally {
  await db.stop();
}
rmSync(dir, { recursive: true, force: true });

// Scenarios owned by other parts of tickflow print one JSON object each.
for (const [script, map] of [
  // each entry: a script under test/bench printing one JSON object, and how to read it

  ['dukascopy-decode.ts', (j: Record<string, number>) => {
    add('dukascopy: .bi5 ticks decoded per second (ours)', [j.oursTicksPerSec!], 'ticks/s', '>= 1000000 per core', (v) => v >= 1_000_000);
    add('dukascopy: dukascopy-node 1.46.4 on the same files', [j.oracleTicksPerSec!], 'ticks/s', 'report', () => null);
    add('dukascopy: ours / dukascopy-node', [Number(j.ratio!.toFixed(2))], 'x', '>= 2', (v) => v >= 2);
  }],
  ['dukascopy-backfill.ts', (j: Record<string, number>) => {
    add('dukascopy: ticks landed and normalized per second', [j.ticksLandedPerSecond!], 'ticks/s', 'report', () => null);
    add('dukascopy: a year of hour files (8,760) from a local datafeed, end to end', [j.yearSeconds!], 's', '<= 60', (v) => v <= 60);
    add('dukascopy: ticks per second in that year', [j.yearTicksPerSecond!], 'ticks/s', 'report', () => null);
    add('postgres: market.quotes rows stored per second by one INSERT ... SELECT of generated quotes (one core)', [j.quotesInsertPerSecond!], 'rows/s', 'report', () => null);
    add('dukascopy: the year\'s ticks at that insert rate alone', [j.yearAtInsertRateSeconds!], 's', 'report', () => null);
  }],
  ['oanda-polygon.ts', (j: Record<string, number>) => {
    add('oanda: pricing-stream lines/s landed and normalized', [j.oandaLinesPerSec!], 'lines/s', 'report', () => null);
    add('polygon: frames/s landed and normalized', [j.polygonFramesPerSec!], 'frames/s', 'report', () => null);
    add('polygon: events/s landed and normalized', [j.polygonEventsPerSec!], 'events/s', 'report', () => null);
  }],
  ['backfill.ts', (j: Record<string, number>) => {
    add('backfill: two years of 1m candles from the local fake, end to end', [j.candleSeconds!], 's', '<= 15', (v) => v <= 15);
    add('backfill: candles landed and normalized per second', [j.candlesPerSecond!], 'candles/s', '>= 70000', (v) => v >= 70_000);
    add('recovery: end of a 60 s outage to a gap-free trades table', [j.gapFreeAfterOutageSeconds!], 's', '<= 20', (v) => v <= 20);
  }],
  ['quality.ts', (j: Record<string, number>) => {
    add('quality: detectors over a year of 1m bars for 100 instruments', (j.parallelRunsMs as unknown as number[]).map((ms) => Number((ms / 1000).toFixed(1))), 's', '< 60', (v) => v < 60);
  }],
  ['clickhouse.ts', (j: Record<string, any>) => {
    add('clickhouse: rows per second synced', [j.syncRowsPerSec], 'rows/s', 'report', () => null);
    add('clickhouse: trade commit in Postgres to visible in ClickHouse, p95', [j.commitToVisibleMs?.p95], 'ms', '<= 2000', (v) => v <= 2000);
    add('clickhouse: year of 1m OHLCV bars, server-side execution', [j.yearOfBars?.afterMerge?.serverMs], 'ms', '<= 100', (v) => v <= 100);
    add('clickhouse: year of 1m OHLCV bars, every row delivered to Node (best format)', [j.yearOfBars?.afterMerge?.bestWithRows?.ms], 'ms', '<= 400', (v) => v <= 400);
    add('clickhouse: the same bars with vwap and trades, every row to Node (TabSeparated)', [j.yearOfBars?.afterMerge?.deliverMs?.['TabSeparated, with vwap and trades']?.ms], 'ms', 'report', () => null);
    add('postgres: year of 1m OHLCV bars, server-side execution', [j.yearOfBarsPostgres?.serverMs], 'ms', '<= 100', (v) => v <= 100);
    add('postgres: year of 1m OHLCV bars, every row delivered to Node (best format)', [j.yearOfBarsPostgres?.bestWithRows?.ms], 'ms', '<= 400', (v) => v <= 400);
    add('postgres: the same bars with vwap and trades, every row to Node (COPY text)', [j.yearOfBarsPostgres?.deliverMs?.['COPY text, with vwap and trades']?.ms], 'ms', 'report', () => null);
    add('postgres: year of 1m OHLCV bars, every row delivered to Node as two COPY text streams of half a year on two connections', [j.yearOfBarsPostgres?.deliverMs?.['COPY text, two halves on two connections']?.ms], 'ms', 'report', () => null);
    add('clickhouse: trades table compression ratio', [j.compression?.ratio], 'x', '>= 10', (v) => v >= 10);
  }],
] as const) {
  // Scenarios of several minutes each run BENCH_HEAVY_RUNS times (3 by default); the report
  // shows every figure's run count.
  if (!wanted(script.replace(/\.ts$/, ''))) continue;
  startScenario(script.replace(/\.ts$/, ''));
  // The quality scenario repeats its measurement itself over one generated data set.
  const repeatsInside = script === 'quality.ts';
  const times = repeatsInside ? 1 : HEAVY.has(script) ? HEAVY_RUNS : RUNS;
  for (let i = 0; i < times; i++) {
    try {
      const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, script)], { encoding: 'utf8', timeout: HEAVY.has(script) ? 3_600_000 : 900_000, maxBuffer: 64 << 20,
        env: { ...process.env, QUALITY_BENCH_REPEAT: String(RUNS) } });
      const json = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)!);
      map(json);
    } catch (err) {
      console.error(`${script} failed: ${(err as Error).message}`);
    }
  }
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}; load average (1/5/15 min) at the start ${LOAD_AT_START}, at the end ${load}`;
const when = new Date().toISOString();
const all = [...kept, ...figures];
writeFileSync(RESULTS_JSON, `${JSON.stringify({ when, machine, runs: RUNS, figures: all }, null, 2)}\n`);
const md = [
  '# tickflow benchmark results', '', `Run: ${when} — \`npm run bench\` — each figure is the median of its runs (BENCH_RUNS=${RUNS}, `
    + `BENCH_HEAVY_RUNS=${HEAVY_RUNS} for the scenarios of several minutes).`, '',
  `Machine: ${machine}`, '', '| figure | median | target | met | runs | measured (UTC, 1-min load) |', '|---|---|---|---|---|---|',
  ...all.map((f) => `| ${f.name} | ${f.value} ${f.unit} | ${f.target} | ${f.met === null ? '—' : f.met ? 'yes' : '**no**'} | ${f.runs.join(', ')} | ${f.measured} |`), '',
];
writeFileSync(path.join(import.meta.dirname, 'results.md'), md.join('\n'));
console.log(`wrote test/bench/results.md and results.json`);
