import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinance } from './fakes/binance.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/wait.ts';

// Wall-clock steps (what NTP does to a clock that was wrong) under the real `tickflow start`,
// made by libfaketime (Debian package libfaketime, installed by .ci/run) preloaded into the
// tickflow process only. The test moves the faked wall clock through a control file
// (FAKETIME_TIMESTAMP_FILE, re-read on every call with FAKETIME_NO_CACHE=1) by hours forward and
// back while trades flow, and checks the promises of ingesters/runtime/clock.ts: watchdog,
// backoff and batching run on the monotonic clock; receive times follow the wall clock forward
// within a second and never go back.
//
// FAKETIME_DONT_FAKE_MONOTONIC=1 is what models an NTP step: the kernel never steps
// CLOCK_MONOTONIC. Without it libfaketime shifts CLOCK_MONOTONIC by the same offset, and a
// backward step then aborts Node itself (libuv's loop time goes back: "Assertion failed:
// (now) >= (timer_base())" in node::Environment::GetNowUint64), which no real clock does.
//
// Postgres is the suite's embedded server reached through DATABASE_URL, so only tickflow runs
// under the faked clock; ops.batches.landed_at (Postgres now()) and the fake venue's send times
// are the real clock the test judges by.

const ROOT = path.join(import.meta.dirname, '..');
const HOUR_MS = 3_600_000;
const STALE_AFTER_S = 3;
const FLUSH_MS = 300;
/** libfaketime's multithreaded build (Node is multithreaded), where Debian installs it. */
const libfaketime = (): string | undefined =>
  ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/faketime']
    .map((d) => path.join(d, 'libfaketimeMT.so.1')).find((f) => existsSync(f));

const dir = mkdtempSync(path.join(tmpdir(), 'tickflow-clock-'));
const clockFile = path.join(dir, 'faketime.rc');
/** Sets the faked wall clock to real time + offset (libfaketime's "+Nh"/"-Nh" relative form). */
function setOffset(hours: number): void {
  writeFileSync(clockFile, `${hours >= 0 ? '+' : ''}${hours}h\n`);
}

// The captured trade frame, with consecutive ids across every connection and the real send time as T.
const template = loadSpotCapture().frames.map((f) => f.text).find((t) => t.includes('@trade'))!;
let nextId = 1;
const sentAt = new Map<number, number>(); // id -> real epoch ms when the fake sent it
function* trades(): Generator<string> {
  for (;;) {
    const id = nextId++;
    const now = Date.now();
    sentAt.set(id, now);
    yield template.replace(/"t":\d+/, `"t":${id}`).replace(/"T":\d+/, `"T":${now}`).replace(/"E":\d+/, `"E":${now}`);
  }
}

let db: TestDatabase;
let fake: FakeBinance;
let child: ChildProcess | undefined;
let output = '';
/** Real (monotonic) times at which the fake saw a connection open. */
const opened: number[] = [];
/** Real epoch ms of each clock step, with the offset it set. */
const steps: Array<{ at: number; hours: number }> = [];

function step(hours: number): void {
  setOffset(hours);
  steps.push({ at: Date.now(), hours });
}

beforeAll(async () => {
  if (!libfaketime()) {
    // .ci/run installs it; a machine without it gets it the same way (the test never skips).
    spawnSync('apt-get', ['install', '-y', '-q', 'libfaketime'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'ignore' });
  }
  const lib = libfaketime();
  if (!lib) throw new Error('libfaketime: expected /usr/lib/<arch>/faketime/libfaketimeMT.so.1, received nothing (apt-get install -y libfaketime failed)');
  db = await createTestDatabase('clock');
  fake = new FakeBinance({ frames: trades, intervalMs: 10 });
  const wsUrl = await fake.start();
  fake.wss.on('connection', () => { opened.push(performance.now()); });
  setOffset(0);
  const configFile = path.join(dir, 'tickflow.config.json');
  writeFileSync(configFile, JSON.stringify({
    dataDir: dir,
    // Batches flush by time only (100 frames/s never fill one): a flush timer on the wall clock shows.
    landing: { maxBatchFrames: 100000, flushIntervalMs: FLUSH_MS },
    clickhouse: { enabled: false },
    metrics: { enabled: false },
    feeds: [{ name: 'binance-clock', venue: 'binance', channels: ['trade'], instruments: ['BTC/USDT'],
              urls: { ws: wsUrl, rest: fake.restUrl }, staleAfterSeconds: STALE_AFTER_S }],
  }));
  child = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickflow.js'), 'start'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, TICKFLOW_CONFIG: configFile, TICKFLOW_DATA_DIR: dir, DATABASE_URL: db.url, TICKFLOW_LOG_LEVEL: 'info',
      LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  });
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  // Matched by its feeds: the word tickflow is redacted from the log when it is the database password.
  await waitFor(() => output.includes('"feeds":["binance-clock"]'), 'tickflow to start under libfaketime', 90_000, 100)
    .catch((err: Error) => { throw new Error(`${err.message}; its output:\n${output.slice(-3000)}`); });
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await fake?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('wall-clock steps under the real tickflow process (libfaketime)', () => {
  it('keeps watchdog, backoff and batching on the monotonic clock; receive times follow the wall clock forward only', async () => {
    const ready = await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from staging.frames`;
      return r!.n > 100;
    }, 'the first frames to land', 30_000);
    expect(ready).toBe(true);

    // 1. The faked process really sees the steps: the first is visible in its log times (pino, wall clock).
    await sleep(2_000);
    step(6);            // forward by 6 hours
    await sleep(3_000);
    step(-6);           // back by 12 hours
    await sleep(3_000);
    step(0);            // forward by 6 hours
    await sleep(2_000);
    // Three steps of hours while frames flowed: no reconnect, no stale verdict.
    expect(fake.connections).toBe(1);

    // 2. Backoff: the venue drops the connection, and the wall clock steps during the backoff
    // wait. Full-jitter backoff waits 250 ms + up to min(30 s, 500 ms * 2^failures): 250..750 ms
    // after the first connection (over 10 s of good data: failures 0), 250..1250 ms after the
    // next (failures 1). A wait on the wall clock would end at once after a forward step, or
    // hours later after a step back.
    const reconnectDelays: number[] = [];
    for (const hours of [5, -5]) {
      const before = fake.connections;
      const dropAt = performance.now();
      fake.dropAll();
      await sleep(100);
      step(hours);
      await waitFor(() => fake.connections > before, 'the reconnect', 10_000, 10);
      reconnectDelays.push(opened.at(-1)! - dropAt);
      await sleep(2_000);
    }
    expect(reconnectDelays[0]).toBeGreaterThanOrEqual(240);
    expect(reconnectDelays[0]).toBeLessThan(750 + 750); // plus slack for a loaded machine
    expect(reconnectDelays[1]).toBeGreaterThanOrEqual(240);
    expect(reconnectDelays[1]).toBeLessThan(1_250 + 750);

    // 3. A real black hole is still detected: silence (no frames, no pong) past the staleness
    // limit, with the wall clock stepping forward during it (a wall-clock watchdog would fire at
    // once, one on a clock that went back would never fire).
    const before = fake.connections;
    const holeAt = performance.now();
    fake.blackhole(true);
    await sleep(500);
    step(8);
    await waitFor(() => fake.connections > before, 'a replacement for the black-holed connection', 15_000, 10);
    const replacedAfter = opened.at(-1)! - holeAt;
    fake.blackhole(false);
    // staleAfter 3 s, checked every 750 ms, then a backoff of at most 2250 ms (failures 2).
    expect(replacedAfter).toBeGreaterThan(STALE_AFTER_S * 1000);
    expect(replacedAfter).toBeLessThan(STALE_AFTER_S * 1000 + 750 + 2_250 + 1_000);
    await sleep(2_000);
    step(0);
    await sleep(2_000);

    // Shut down: SIGINT flushes every accepted frame.
    child!.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    expect(code, output.slice(-2000)).toBe(0);

    const stale = await db.sql<{ detail: { silentMs: number } }[]>`select detail from ops.session_events where kind = 'stale'`;
    expect(stale).toHaveLength(1); // the black hole, and nothing else
    expect(stale[0]!.detail.silentMs).toBeGreaterThan(STALE_AFTER_S * 1000);
    expect(stale[0]!.detail.silentMs).toBeLessThan(STALE_AFTER_S * 1000 + 1_000);
    const sessions = await db.sql<{ close_reason: string | null }[]>`select close_reason from ops.sessions`;
    expect(sessions).toHaveLength(4); // the first, after each drop, after the black hole
    expect(sessions.filter((s) => s.close_reason?.startsWith('stale'))).toHaveLength(1);

    // 4. Batches flushed on time: every frame committed (Postgres' real clock) within the flush
    // interval of being sent, allowing for load; the batches are time-flushed, not one per frame.
    const frames = await db.sql<{ id: string; session_id: string; seq: number; received_ms: string; landed_ms: string }[]>`
      select (f.payload::jsonb #>> '{data,t}') as id, f.session_id::text, f.seq,
             (extract(epoch from f.received_at) * 1000)::bigint::text as received_ms,
             (extract(epoch from b.landed_at) * 1000)::bigint::text as landed_ms
      from staging.frames f join ops.batches b using (batch_id)
      where f.stream = 'trade' order by f.frame_id`;
    const lateness = frames.map((f) => Number(f.landed_ms) - sentAt.get(Number(f.id))!);
    expect(Math.max(...lateness)).toBeLessThan(FLUSH_MS + 2_000);
    const [b] = await db.sql<{ n: number }[]>`select count(*)::int as n from ops.batches where frames > 0`;
    const spanMs = Number(frames.at(-1)!.landed_ms) - Number(frames[0]!.landed_ms);
    expect(b!.n).toBeLessThan(spanMs / FLUSH_MS * 1.5 + 10);

    // 5. Nothing lost: in each session the trade ids are consecutive (holes only where a
    // connection ended), every landed trade normalized once, nothing quarantined.
    const bySession = new Map<string, number[]>();
    for (const f of frames) bySession.set(f.session_id, [...(bySession.get(f.session_id) ?? []), Number(f.id)]);
    expect(bySession.size).toBe(4);
    for (const ids of bySession.values()) expect(ids).toEqual(ids.map((_, k) => ids[0]! + k));
    const [t] = await db.sql<{ n: number; d: number }[]>`select count(*)::int as n, count(distinct trade_id)::int as d from market.trades`;
    expect(t).toEqual({ n: frames.length, d: frames.length });
    expect(await db.sql`select reason from staging.quarantine`).toEqual([]);

    // 6. Receive times: strictly increasing in receive order, never stepped back, and following
    // the faked wall clock forward: a frame sent more than 1.5 s after a step and before the
    // next carries real time + the largest offset so far (within the landing latency).
    const received = frames.map((f) => Number(f.received_ms));
    for (let k = 1; k < received.length; k++) expect(received[k]!).toBeGreaterThanOrEqual(received[k - 1]!);
    let checked = 0;
    for (const f of frames) {
      const sent = sentAt.get(Number(f.id))!;
      const last = steps.filter((s) => s.at <= sent).at(-1);
      const nextStep = steps.find((s) => s.at > sent);
      if (last && sent - last.at < 1_500) continue;
      if (nextStep && nextStep.at - sent < 200) continue;
      const maxOffset = Math.max(0, ...steps.filter((s) => s.at <= sent).map((s) => s.hours));
      const skew = Number(f.received_ms) - (sent + maxOffset * HOUR_MS);
      expect(skew, `trade ${f.id}`).toBeGreaterThan(-50);
      expect(skew, `trade ${f.id}`).toBeLessThan(1_000);
      checked++;
    }
    expect(checked).toBeGreaterThan(frames.length / 2);
    // The forward steps did show: receive times 8 hours ahead exist (the largest step).
    expect(received.some((r, k) => r - sentAt.get(Number(frames[k]!.id))! > 8 * HOUR_MS - 1_000)).toBe(true);
  }, 120_000);
});
