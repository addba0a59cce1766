/**
 * Dukascopy .bi5 tick decoding: ours (native LZMA, records straight to the staging payload
 * text) against dukascopy-node 1.46.4 (pure-JS LZMA, arrays of numbers), on every captured
 * tick file, in the same process, alternating rounds so both see the same machine load.
 *
 *   npx tsx test/bench/dukascopy-decode.ts [iterations=20]
 *
 * Prints one JSON line: {"oursTicksPerSec","oracleTicksPerSec","ratio", ...details}.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lzma } from '@napi-rs/lzma';
import { processData, type InstrumentType } from 'dukascopy-node';
import { decodeBi5 } from '../../ingesters/dukascopy/bi5.ts';

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
  for (const f of files) {
    // Reading a character flattens the concatenated text, as sending it to Postgres will.
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

function timed(fn: () => number): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

// Warm-up: JIT, caches, the native module.
for (let i = 0; i < 2; i++) { ours(); oracle(); lzmaOnly(); }

let oursSec = 0;
let oracleSec = 0;
let lzmaSec = 0;
for (let i = 0; i < iterations; i++) {
  oursSec += timed(ours);
  oracleSec += timed(oracle);
  lzmaSec += timed(lzmaOnly);
}

const total = ticksPerPass * iterations;
const oursTicksPerSec = Math.round(total / oursSec);
const oracleTicksPerSec = Math.round(total / oracleSec);
console.log(JSON.stringify({
  oursTicksPerSec,
  oracleTicksPerSec,
  ratio: Math.round((oursTicksPerSec / oracleTicksPerSec) * 100) / 100,
  lzmaOnlyTicksPerSec: Math.round(total / lzmaSec),
  files: files.length,
  ticksPerPass,
  iterations,
  node: process.version,
}));
