import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { FakeBinance } from './fakes/binance.ts';
import { freePort } from './support/global-setup.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { waitFor } from './support/wait.ts';
import { runningPostmaster, startEmbedded } from '../src/db.ts';
import { quietLog } from './support/feeds.ts';

// The real command, as a user runs it: embedded Postgres in a data folder, migrations, worker and
// feeds in one process; Ctrl-C (SIGINT) flushes what was accepted and stops the database; a
// second command reuses the data.
const ROOT = path.join(import.meta.dirname, '..');
const dataDir = mkdtempSync(path.join(tmpdir(), 'tickflow-cli-'));
const { frames, snapshot } = loadSpotCapture();

function tickflow(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickflow.js'), ...args], {
    cwd: ROOT, env: { ...process.env, ...env, TICKFLOW_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

afterAll(() => {
  const pid = runningPostmaster(path.join(dataDir, 'pg'));
  if (pid) process.kill(pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('tickflow start / status', () => {
  it('runs the pipeline, flushes on Ctrl-C, stops the database, and a second run reuses the data', async () => {
    const fake = new FakeBinance({ frames: () => frames.map((f) => f.text), intervalMs: 1, snapshots: { BTCUSDT: snapshot } });
    const wsUrl = await fake.start();
    const port = await freePort();
    const configFile = path.join(dataDir, 'tickflow.config.json');
    writeFileSync(configFile, JSON.stringify({
      database: { embeddedPort: port, embeddedFsync: false },
      // A long flush interval keeps frames in flight, so the shutdown flush has work to do.
      landing: { maxBatchFrames: 100000, flushIntervalMs: 10000 },
      feeds: [{ name: 'binance-spot', venue: 'binance', channels: ['trade', 'bookTicker', 'depth'], instruments: ['BTC/USDT'],
                urls: { ws: wsUrl, rest: fake.restUrl } }],
    }));
    const env = { TICKFLOW_CONFIG: configFile, TICKFLOW_DATA_DIR: dataDir };
    const run = tickflow(['start'], env);
    await waitFor(() => run.output().includes('tickflow started'), 'tickflow to start', 60_000, 100);
    await waitFor(() => fake.restRequests.length > 0 && fake.connections === 1, 'the feed to connect and sync the book', 20_000);
    // The fake has sent everything (it sits in the writer: the flush interval is long).
    await waitFor(() => fake.framesSent === frames.length, 'the fake to send every frame', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
    expect(run.output()).toContain('tickflow stopped');
    expect(runningPostmaster(path.join(dataDir, 'pg'))).toBeUndefined();
    await fake.stop();

    const status = tickflow(['status'], env);
    expect(await status.exit).toBe(0);
    expect(status.output()).toMatch(/binance-spot\s+binance\s+disconnected/);
    expect(status.output()).not.toContain('initialising embedded Postgres');

    // Everything the feed received was landed and normalized before the database stopped.
    const db = await startEmbedded({ dir: path.join(dataDir, 'pg'), port, fsync: false, log: quietLog });
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const [landed] = await sql`select count(*)::int as frames, count(*) filter (where source = 'rest')::int as rest from staging.frames`;
    const [trades] = await sql`select count(*)::int as n from market.trades`;
    await sql.end();
    await db.stop();
    expect(landed).toEqual({ frames: frames.length + 1, rest: 1 });
    expect(trades!.n).toBe(frames.filter((f) => f.text.includes('@trade')).length);
  }, 120_000);
});
