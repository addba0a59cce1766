/**
 * Dukascopy .bi5 tick decoding: ours (native LZMA, records straight to the binary COPY columns
 * that land in staging.tick_columns) against dukascopy-node 1.46.4 (pure-JS LZMA, arrays of
 * numbers), on every captured tick file, in the same process, alternating rounds so both see
 * the same machine load. The records as JSON text (decodeBi5, format v1) are timed beside them.
 *
 *   npx tsx test/bench/dukascopy-decode.ts [iterations=20]
 *
 * Prints one JSON line: {"oursTicksPerSec","oracleTicksPerSec","ratio", ...details}; rates are
 * wall-clock, the *PerCpuSec details divide by this process's CPU time instead (per core, even
 * when other processes share the machine).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lzma } from '@napi-rs/lzma';
import { processData, type InstrumentType } from 'dukascopy-node';
import { decodeBi5, decodeBi5TickColumns } from '../../ingesters/dukascopy/bi5.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dukascopy');
const iterations = Math.max(1, Number.parseInt(process.argv[2] ?? process.env.BENCH_ITERATIONS ?? '20', 10) || 20);

function tickFiles(dir: string, rel = ''): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const full = path.join(dir, name);
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(full).isDirectory()) return tickFiles(full, r);
    return /^\d{2}h_ticks\.bi5$/.test(name) ? [r] : [];
  });
}

const files = tickFiles(FIXTURES).map((rel) => ({ rel, body: readFileSync(path.join(FIXTURES, rel)) }));
const ticksPerPass = files.reduce((n, f) => n + decodeBi5(f.body, 'ticks').count, 0);

function ours(): number {
  let n = 0;
  for (const f of files) n += decodeBi5TickColumns(f.body, f.rel).fields.length;
  return n;
}

function oursJson(): number {
  let n = 0;
  for (const f of files) {
    // Reading a character flattens the concatenated text, as sending it to Postgres would.
    const { json } = decodeBi5(f.body, 'ticks', f.rel);
    n += json.charCodeAt(json.length >> 1);
  }
  return n;
}

function lzmaOnly(): number {
  let n = 0;
  for (const f of files) if (f.body.length > 0) n += lzma.decompressSync(f.body).length;
  return n;
}

function oracle(): number {
  let n = 0;
  for (const f of files) {
    n += processData({
      instrument: f.rel.split('/')[0]!.toLowerCase() as InstrumentType,
      requestedTimeframe: 'tick',
      bufferObjects: [{ url: f.rel, buffer: f.body }],
      priceType: 'bid',
      volumes: true,
      volumeUnits: 'millions',
      ignoreFlats: false,
    }).length;
  }
  return n;
}

/** Wall seconds and CPU seconds of this process (the CPU time is what "per core" means on a busy machine). */
function timed(fn: () => number): [number, number] {
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  fn();
  const used = process.cpuUsage(cpu);
  return [Number(process.hrtime.bigint() - t) / 1e9, (used.user + used.system) / 1e6];
}

// Warm-up: JIT, caches, the native module.
for (let i = 0; i < 2; i++) { ours(); oracle(); lzmaOnly(); oursJson(); }

const sec = { ours: [0, 0], oracle: [0, 0], lzma: [0, 0], json: [0, 0] };
const add = (into: number[], [wall, cpu]: [number, number]): void => { into[0]! += wall; into[1]! += cpu; };
for (let i = 0; i < iterations; i++) {
  add(sec.ours, timed(ours));
  add(sec.oracle, timed(oracle));
  add(sec.lzma, timed(lzmaOnly));
  add(sec.json, timed(oursJson));
}

const total = ticksPerPass * iterations;
const rate = (s: number): number => Math.round(total / s);
const oursTicksPerSec = rate(sec.ours[0]!);
const oracleTicksPerSec = rate(sec.oracle[0]!);
console.log(JSON.stringify({
  oursTicksPerSec,
  oracleTicksPerSec,
  ratio: Math.round((oursTicksPerSec / oracleTicksPerSec) * 100) / 100,
  oursTicksPerCpuSec: rate(sec.ours[1]!),
  oracleTicksPerCpuSec: rate(sec.oracle[1]!),
  lzmaOnlyTicksPerSec: rate(sec.lzma[0]!),
  lzmaOnlyTicksPerCpuSec: rate(sec.lzma[1]!),
  oursJsonTicksPerSec: rate(sec.json[0]!),
  files: files.length,
  ticksPerPass,
  iterations,
  node: process.version,
}));
