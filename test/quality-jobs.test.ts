import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger, quickAddJob, runOnce } from 'graphile-worker';
import postgres from 'postgres';
import qualityDetect from '../jobs/quality_detect.ts';
import qualityProfile from '../jobs/quality_profile.ts';
import { CRONTAB, loadTasks, scheduledCrontab } from '../src/worker.ts';
import { loadConfig } from '../src/config.ts';
import { qualityAlerts } from '../src/metrics.ts';
import { ROOT } from '../src/migrate.ts';
import { loadSpotCapture } from './support/binance-capture.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { dukascopyFile, dukascopyRecords, landFrames } from './support/quality-data.ts';

// The findings model end to end: detectors run by the quality_detect job (graphile-worker, on
// demand for a range), deduplicated on rerun, resolved when the data is fixed, alerts as NOTIFY
// on tickflow_alerts + a log line + a metric; quality on every bar; the report command and the
// views it reads; non-finite values refused by the database. Data: the real Dukascopy BTC/USD
// minute candles of Sunday 2023-02-19 and the real Binance capture.

let db: TestDatabase;
const DAY = ['2023-02-19T00:00:00Z', '2023-02-20T00:00:00Z'] as const;
let btc: number;
let plant: { spiked: string; reference: string; high: string; close: string } | undefined;

interface Captured { level: string; message: string }
async function runJob(task: 'quality_detect' | 'quality_profile', payload: unknown): Promise<Captured[]> {
  const lines: Captured[] = [];
  await quickAddJob({ connectionString: db.url, logger: new Logger(() => () => {}) }, task, payload);
  await runOnce({
    connectionString: db.url,
    taskList: { quality_detect: qualityDetect, quality_profile: qualityProfile },
    logger: new Logger(() => (level, message) => { lines.push({ level, message }); }),
  });
  const [failed] = await db.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs where last_error is not null`;
  expect(failed!.n, JSON.stringify(lines)).toBe(0);
  return lines;
}

beforeAll(async () => {
  db = await createTestDatabase('qjobs');
  await landFrames(db.sql, [dukascopyFile('BTCUSD/2023/01/19/BID_candles_min_1.bi5')]);
  [{ id: btc }] = await db.sql<{ id: number }[]>`select instrument_id as id from market.instruments where symbol = 'BTC/USD'` as unknown as [{ id: number }];
  await db.sql`select quality.refresh_activity_profiles(${DAY[0]}, ${DAY[1]}, ${[btc]})`;
}, 60_000);
afterAll(async () => { await db?.drop(); });

describe('quality jobs, findings and alerts', () => {
  it('the worker has both quality tasks on a schedule', async () => {
    const tasks = await loadTasks();
    expect(typeof tasks.quality_detect).toBe('function');
    expect(typeof tasks.quality_profile).toBe('function');
    expect(CRONTAB).toContain('*/5 * * * * quality_detect ?max=1&jobKey=quality_detect&jobKeyMode=replace');
    expect(CRONTAB).toContain('23 3 * * * quality_profile ?max=1&jobKey=quality_profile&jobKeyMode=replace');
    // The ClickHouse sync runs only where the worker's configuration has ClickHouse on.
    const sync = (enabled: boolean) => scheduledCrontab(tasks, loadConfig({ env: {}, overrides: { clickhouse: { enabled } } }))
      .split('\n').filter((l) => l.includes(' clickhouse_sync '));
    expect(sync(true)).toEqual(['* * * * * clickhouse_sync ?max=1&jobKey=clickhouse_sync&jobKeyMode=replace']);
    expect(sync(false)).toEqual([]);
    expect(scheduledCrontab(tasks, loadConfig({ env: {}, overrides: { clickhouse: { enabled: false } } }))).toContain('quality_detect');
  });

  it('a spike and a gap raise alerts: NOTIFY tickflow_alerts, a log line and the metric; a rerun duplicates nothing', async () => {
    // The planted price, and the reference it is judged against (the real close of the bar before).
    [plant] = await db.sql<{ spiked: string; reference: string; high: string; close: string }[]>`
      select round(c.close * 1.08, 1)::text as spiked, c.high::text, c.close::text, (select p.close from market.candles p where p.instrument_id = c.instrument_id
               and p.timeframe = '1m' and p.bucket = '2023-02-19T09:29:00Z')::text as reference
      from market.candles c where c.instrument_id = ${btc} and c.timeframe = '1m' and c.bucket = '2023-02-19T09:30:00Z'`;
    await db.sql`update market.candles set high = round(close * 1.08, 1), close = round(close * 1.08, 1)
                 where instrument_id = ${btc} and bucket = '2023-02-19T09:30:00Z'`;
    await db.sql`delete from market.candles where instrument_id = ${btc} and bucket >= '2023-02-19T16:00:00Z' and bucket < '2023-02-19T17:00:00Z'`;
    const listener = postgres(db.url, { max: 1, onnotice: () => {} });
    const notified: Record<string, unknown>[] = [];
    await listener.listen('tickflow_alerts', (payload) => { notified.push(JSON.parse(payload) as Record<string, unknown>); });
    const metricBefore = (await qualityAlerts.get()).values.reduce((n, v) => n + v.value, 0);
    const lines = await runJob('quality_detect', { from: DAY[0], to: DAY[1], symbols: ['BTC/USD'] });
    await new Promise((r) => setTimeout(r, 300));
    await listener.end();

    const open = await db.sql<{ kind: string; label: string; severity: string; window_from: Date; window_to: Date; alerted_at: Date | null }[]>`
      select kind, label, severity, window_from, window_to, alerted_at from quality.findings where resolved_at is null and kind <> 'gap'
      union all
      select kind, label, severity, window_from, window_to, alerted_at from quality.findings where resolved_at is null and label = 'our_loss'
      order by window_from`;
    expect(open.map((f) => [f.kind, f.label, f.severity, f.window_from.toISOString(), f.window_to.toISOString()])).toEqual([
      // One bar: the next candle opens where the venue says, not at the planted close.
      ['spike', 'unconfirmed', 'critical', '2023-02-19T09:30:00.000Z', '2023-02-19T09:31:00.000Z'],
      ['gap', 'our_loss', 'error', '2023-02-19T16:00:00.000Z', '2023-02-19T17:00:00.000Z'],
    ]);
    expect(notified.map((n) => [n.kind, n.label, n.severity, n.symbol, n.venue, n.window_from])).toEqual([
      ['gap', 'our_loss', 'error', 'BTC/USD', 'dukascopy', '2023-02-19T16:00:00+00:00'],
      ['spike', 'unconfirmed', 'critical', 'BTC/USD', 'dukascopy', '2023-02-19T09:30:00+00:00'],
    ]);
    expect(notified[1]).toMatchObject({ value: Number(plant!.spiked), baseline: Number(plant!.reference), source: 'dukascopy:candles:bid' });
    const alertLines = lines.filter((l) => l.level === 'warning' && l.message.startsWith('quality alert:'));
    expect(alertLines.map((l) => l.message)).toEqual([
      expect.stringMatching(/^quality alert: error gap\/our_loss BTC\/USD 2023-02-19T16:00:00\+00:00 \.\. 2023-02-19T17:00:00\+00:00 value 60 baseline 2 \(finding \d+\)$/),
      `quality alert: critical spike/unconfirmed BTC/USD 2023-02-19T09:30:00+00:00 .. 2023-02-19T09:31:00+00:00 value ${Number(plant!.spiked)} baseline ${plant!.reference} (finding ${notified[1]!.finding_id})`,
    ]);
    const metricAfter = (await qualityAlerts.get()).values.reduce((n, v) => n + v.value, 0);
    expect(metricAfter - metricBefore).toBe(2);

    // The same window again: the same findings, updated in place, and no second alert.
    const [{ n: before }] = await db.sql<{ n: number }[]>`select count(*)::int as n from quality.findings` as unknown as [{ n: number }];
    const again = await runJob('quality_detect', { from: DAY[0], to: DAY[1], symbols: ['BTC/USD'] });
    const [{ n: after }] = await db.sql<{ n: number }[]>`select count(*)::int as n from quality.findings` as unknown as [{ n: number }];
    expect(after).toBe(before);
    expect(again.filter((l) => l.message.startsWith('quality alert:'))).toEqual([]);
  });

  it('a finding not found again over its window is resolved, and an escalation alerts again', async () => {
    await db.sql`update market.candles set high = ${plant!.high}, close = ${plant!.close}
                 where instrument_id = ${btc} and bucket = '2023-02-19T09:30:00Z'`;
    await runJob('quality_detect', { from: DAY[0], to: DAY[1], symbols: ['BTC/USD'], detectors: ['spikes'] });
    const [spike] = await db.sql<{ resolved: boolean }[]>`select resolved_at is not null as resolved from quality.findings where kind = 'spike'`;
    expect(spike!.resolved).toBe(true);
    await db.sql`insert into quality.alert_rules (kind, min_severity) values ('gap', 'critical')
                 on conflict (kind) do update set min_severity = excluded.min_severity`;
    await db.sql`delete from market.candles where instrument_id = ${btc} and bucket >= '2023-02-19T17:00:00Z' and bucket < '2023-02-19T19:00:00Z'`;
    const lines = await runJob('quality_detect', { from: DAY[0], to: DAY[1], symbols: ['BTC/USD'], detectors: ['gaps'] });
    expect(lines.filter((l) => l.message.startsWith('quality alert:')).map((l) => l.message)).toEqual([
      expect.stringMatching(/^quality alert: critical gap\/our_loss BTC\/USD 2023-02-19T16:00:00\+00:00 \.\. 2023-02-19T19:00:00\+00:00 value 180 /),
    ]);
  });

  it('the profile job learns the usual activity of the last days', async () => {
    await db.sql`delete from quality.activity_profiles`;
    await db.sql`insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                                             complete, source, received_at)
                 select ${btc}, '1m', date_trunc('hour', now()) - interval '2 hours' + m * interval '1 minute', 'bid', 1, 1, 1, 1, 1,
                        'quoted_size', true, 'file', now()
                 from generate_series(0, 59) m`;
    await runJob('quality_profile', { days: 1 });
    const rows = await db.sql<{ open_minutes: number; active_minutes: number }[]>`
      select open_minutes, active_minutes from quality.activity_profiles where instrument_id = ${btc} and active_minutes > 0`;
    expect(rows).toEqual([{ open_minutes: 60, active_minutes: 60 }]);
  });

  it('refuses payloads it does not understand with JOB_PAYLOAD_INVALID', async () => {
    await expect(qualityDetect({ from: '2023-02-20' } as never, {} as never)).rejects.toMatchObject({ code: 'JOB_PAYLOAD_INVALID' });
    await expect(qualityDetect({ detectors: ['nope'] }, { withPgClient: (f: (c: unknown) => unknown) => f({
      query: async () => ({ rows: [] }) }) } as never)).rejects.toMatchObject({ code: 'JOB_PAYLOAD_INVALID' });
  });
});

describe('quality on every bar', () => {
  it('joins each 1-minute bar to its coverage, sources, gaps, spikes and revisions, filterable in one clause', async () => {
    const { frames } = loadSpotCapture();
    const trades = frames.filter((l) => l.text.includes('@trade'));
    await landFrames(db.sql, trades.map((l) => ({ venue: 'binance', stream: 'trade', sessionId: null, receivedAt: '2024-08-08T23:54:30Z',
      source: 'ws', request: null, payload: l.text })));
    await db.sql`select market.refresh_bars(1000)`;
    const [usdt] = await db.sql<{ id: number }[]>`select instrument_id as id from market.instruments where symbol = 'BTC/USDT'`;
    const q = () => db.sql<{ bucket: Date; observed: number; sources: string[]; gap: boolean; spike: boolean; revised: boolean;
                             flags: string[]; ok: boolean; trades: number }[]>`
      select bucket, observed::int, sources, gap, spike, revised, flags, ok, trades::int from quality.bars_1m where instrument_id = ${usdt!.id}`;
    const [bar] = await q();
    expect(bar).toMatchObject({ observed: trades.length, trades: trades.length, sources: ['ws'], gap: false, spike: false, revised: false, flags: [], ok: true });
    // A backfill page brings one trade of the same minute: the bar is revised, still ok.
    const t = JSON.parse(trades[0]!.text) as { data: Record<string, unknown> };
    await landFrames(db.sql, [{ venue: 'binance', stream: 'trade', sessionId: null, receivedAt: '2024-08-09T01:00:00Z', source: 'rest',
      request: null, payload: JSON.stringify({ stream: 'btcusdt@trade', data: { ...t.data, t: Number(t.data.t) - 1 } }) }]);
    await db.sql`select market.refresh_bars(1000)`;
    expect((await q())[0]).toMatchObject({ sources: ['rest', 'ws'], revised: true, flags: ['revised'], ok: true });
    // A disconnect in the ledger over part of the minute, and a spike finding: flagged, not ok.
    await db.sql`insert into quality.gaps (venue, stream, gap_from, gap_to, detected_by) values
                 ('binance', 'binance-spot', ${bar!.bucket.toISOString()}::timestamptz + interval '20 seconds',
                  ${bar!.bucket.toISOString()}::timestamptz + interval '40 seconds', 'disconnect')`;
    await db.sql`insert into quality.findings (kind, label, severity, instrument_id, source, window_from, window_to, detector)
                 values ('spike', 'unconfirmed', 'error', ${usdt!.id}, 'binance:trades', ${bar!.bucket}, ${bar!.bucket.toISOString()}::timestamptz + interval '1 minute', 'spikes')`;
    expect((await q())[0]).toMatchObject({ gap: true, spike: true, flags: ['gap', 'spike', 'revised'], ok: false });
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from quality.bars_1m where symbol = 'BTC/USDT' and ok` as unknown as [{ n: number }];
    expect(n).toBe(0);
    // Analysts read it (and the report views) without access to the tables behind them.
    const seen = await db.sql.begin(async (tx) => {
      await tx`set local role tickflow_analyst`;
      const bars = await tx`select flags, expected from quality.bars_1m where symbol = 'BTC/USDT'`;
      await tx`select * from quality.daily_completeness`;
      await tx`select * from quality.daily_findings`;
      return bars;
    });
    expect(seen.map((r) => r.flags)).toEqual([['gap', 'spike', 'revised']]);
  });
});

describe('non-finite values are stopped at the database', () => {
  it.each([
    ['quote size NaN', `insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, received_at, source)
                        values (1, now(), 1, 1, 'NaN', 2, 1, now(), 'ws')`],
    ['quote size Infinity', `insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, received_at, source)
                             values (1, now(), 2, 1, 1, 2, 'Infinity', now(), 'ws')`],
    ['quote price NaN', `insert into market.quotes (instrument_id, quoted_at, seq, bid, bid_size, ask, ask_size, received_at, source)
                         values (1, now(), 3, 'NaN', 1, 2, 1, now(), 'ws')`],
    ['trade size Infinity', `insert into market.trades (instrument_id, traded_at, trade_id, price, size, received_at, source)
                             values (1, now(), 'x', 1, 'Infinity', now(), 'ws')`],
    ['aggregate trade price NaN', `insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size, side,
                                   received_at, source) values (1, now(), 1, 1, 1, 'NaN', 1, 'buy', now(), 'ws')`],
    ['aggregate trade size -Infinity', `insert into market.agg_trades (instrument_id, traded_at, agg_id, first_trade_seq, last_trade_seq, price, size,
                                        side, received_at, source) values (1, now(), 2, 1, 1, 1, '-Infinity', 'buy', now(), 'ws')`],
    ['book level size NaN', `insert into market.book_levels (instrument_id, side, price, size, update_id, updated_at)
                             values (1, 'bid', 1, 'NaN', 1, now())`],
    ['candle volume NaN', `insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, volume, volume_kind,
                           complete, source, received_at) values (1, '1m', now(), 'bid', 1, 1, 1, 1, 'NaN', 'base', true, 'rest', now())`],
    ['candle close Infinity', `insert into market.candles (instrument_id, timeframe, bucket, price_side, open, high, low, close, complete, source,
                               received_at) values (1, '1m', now(), 'bid', 1, 'Infinity', 1, 'Infinity', true, 'rest', now())`],
  ])('%s: SQLSTATE 23514', async (_name, statement) => {
    await expect(db.sql.unsafe(statement)).rejects.toMatchObject({ code: '23514' });
  });
});

describe('tickflow quality report', () => {
  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [path.join(ROOT, 'bin', 'tickflow.js'), ...args],
        { env: { ...process.env, DATABASE_URL: db.url, TICKFLOW_LOG_LEVEL: 'warn' }, cwd: ROOT },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  }

  it('prints completeness per day, gaps by label and findings with their trend: the numbers of the views', async () => {
    await db.sql`select quality.refresh_activity_profiles(${DAY[0]}, ${DAY[1]}, ${[btc]})`;
    await db.sql`update market.candles set low = round(low * 0.9, 1), close = round(low * 0.9, 1)
                 where instrument_id = ${btc} and bucket = '2023-02-19T12:00:00Z'`;
    await runJob('quality_detect', { from: DAY[0], to: DAY[1], symbols: ['BTC/USD'], detectors: ['spikes'] });
    const r = await cli(['quality', 'report', '--instrument', 'BTC/USD', '--from', '2023-02-18', '--to', '2023-02-20']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [row] = await db.sql<{ expected_minutes: number; active_open_minutes: number; lost_minutes: string; completeness: string }[]>`
      select expected_minutes, active_open_minutes, lost_minutes::text, completeness::text from quality.daily_completeness
      where instrument_id = ${btc} and day = '2023-02-19'`;
    // 1440 minutes expected (crypto), 180 lost in the gap (16:00-19:00), and the file's flat
    // fillers (volume 0: no ticks in that minute) outside the gap have no data either.
    const { start, candles } = dukascopyRecords('BTCUSD/2023/01/19/BID_candles_min_1.bi5');
    const fillers = candles.filter(([s, , , , , v]) => v === '0' && (start + s * 1000 < Date.parse('2023-02-19T16:00:00Z')
      || start + s * 1000 >= Date.parse('2023-02-19T19:00:00Z'))).length;
    expect(fillers).toBeGreaterThan(0);
    const active = 1440 - 180 - fillers;
    expect(row).toEqual({ expected_minutes: 1440, active_open_minutes: active, lost_minutes: '180', completeness: '0.8750' });
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('quality report BTC/USD (dukascopy) 2023-02-18T00:00:00.000Z .. 2023-02-20T00:00:00.000Z');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^dukascopy\\s+2023-02-19\\s+1440\\s+${active}\\s+180\\s+87\\.5 %\\s+${active}\\s+`)));
    expect(r.stdout).toMatch(/gaps by label\nvenue\s+label\s+gaps\s+minutes\ndukascopy\s+our_loss\s+1\s+180\n/);
    // No data at all on the 18th: nothing observed, so no completeness to claim.
    expect(lines).toContainEqual(expect.stringMatching(/^dukascopy\s+2023-02-18\s+1440\s+0\s+0\s+-\s+0\s+/));
    expect(r.stdout).toMatch(/spikes and anomalies \(per day 2023-02-18 \.\. 2023-02-19\)\nvenue\s+kind\s+label\s+total\s+per day\s+trend\ndukascopy\s+spike\s+unconfirmed\s+1\s+0 1\s+rising\n/);
  });

  it('refuses an unknown instrument and a backward range with QUALITY_REPORT_INVALID', async () => {
    const a = await cli(['quality', 'report', '--instrument', 'NOPE/X', '--from', '2023-02-18', '--to', '2023-02-20']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/^tickflow: QUALITY_REPORT_INVALID: --instrument: expected a symbol .* received NOPE\/X/);
    const b = await cli(['quality', 'report', '--instrument', 'BTC/USD', '--from', '2023-02-20', '--to', '2023-02-18']);
    expect(b.stderr).toMatch(/QUALITY_REPORT_INVALID: --from must be before --to/);
  });
});
