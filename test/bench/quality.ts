/**
 * Quality detectors over a year of 1-minute bars for 100 instruments (generated), on the
 * embedded Postgres 18 (rollup bars engine) in a temp folder:
 *
 *   npx tsx test/bench/quality.ts [instruments=100] [days=365]
 *
 * Instruments: 60 % crypto (every minute of the year), 30 % forex (Sunday 17:00 to Friday 17:00
 * New York, rollover included) and 10 % US equities (regular sessions, holidays, early closes),
 * each a random walk with its own volatility, a few planted holes and spikes. Bars are generated
 * inside Postgres (generate_series), so the figure measures the detectors, not a loader.
 *
 * Figures: the activity profiles (last 28 days), then each detector over the whole year, one
 * connection per detector as the worker runs them, wall-clock; and the same detectors split by
 * instrument halves over two connections (the worker's concurrency), wall-clock, QUALITY_BENCH_REPEAT
 * times (default 1) over the same bars: generating them takes far longer than the detectors.
 * With QUALITY_BENCH_DATABASE_URL the data is generated (once) in that database instead, which
 * must already carry the current schema (it is not migrated).
 *
 * Prints one JSON line: {instruments, days, bars, generateMs, profilesMs, detectors: {<name>: {ms, found}},
 * sequentialMs, parallelMs (median of parallelRunsMs), parallelRunsMs, findings: {<kind>: n}, plantedGaps, plantedSpikes, foundPlantedGaps,
 * foundPlantedSpikes}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, startEmbedded, type Database, type Sql } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { migrate } from '../../src/migrate.ts';
import { freePort } from '../support/global-setup.ts';

const INSTRUMENTS = Math.max(3, Number.parseInt(process.argv[2] ?? '100', 10) || 100);
const DAYS = Math.max(7, Number.parseInt(process.argv[3] ?? '365', 10) || 365);
const FROM = '2025-01-01T00:00:00Z';
const BAR_DETECTORS = ['gaps', 'spikes', 'bar_anomalies'] as const;
const REPEAT = Math.max(1, Number.parseInt(process.env.QUALITY_BENCH_REPEAT ?? '1', 10) || 1);
const log = createLogger({ level: 'warn' });

/** Generates the bars in Postgres: one statement per instrument, in bucket order. */
async function generate(sql: Sql): Promise<number> {
  const crypto = Math.round(INSTRUMENTS * 0.6);
  const forex = Math.round(INSTRUMENTS * 0.3);
  const equity = INSTRUMENTS - crypto - forex;
  await sql`select setseed(0.20250101)`;
  await sql`
    insert into market.instruments (venue, venue_symbol, symbol, asset_class, base, quote)
    select 'bench', k || n, k || n || '/USD', cls, k || n, 'USD'
    from (select 'C' as k, 'crypto' as cls, generate_series(1, ${crypto}) as n
          union all select 'F', 'forex', generate_series(1, ${forex})
          union all select 'E', 'equity', generate_series(1, ${equity})) x
    on conflict do nothing`;
  const instruments = await sql<{ instrument_id: number; asset_class: string }[]>`
    select instrument_id, asset_class from market.instruments where venue = 'bench' order by instrument_id`;
  const to = new Date(Date.parse(FROM) + DAYS * 86_400_000).toISOString();
  for (const [n, inst] of instruments.entries()) {
    // Volatility per minute from 1 to 8 basis points; prices with 5 decimals (forex) or 2.
    const vol = 0.0001 * (1 + (n % 8));
    const scale = inst.asset_class === 'forex' ? 5 : 2;
    const p0 = inst.asset_class === 'forex' ? 1.1 + (n % 7) / 10 : 100 * (1 + (n % 50));
    await sql`
      with hours as materialized (
        select quality.expected_hours(quality.instrument_calendar(${inst.instrument_id}), ${FROM}::timestamptz, ${to}::timestamptz) as h
      ), minutes as (
        select t from hours, unnest(hours.h) r, generate_series(lower(r), upper(r) - interval '1 minute', interval '1 minute') t
      ), walk as (
        select t, ${p0}::float8 * exp(sum((random() - 0.5) * 3.4641 * ${vol}) over (order by t)) as c,
               abs(random() - 0.5) * ${vol} as wick_up, abs(random() - 0.5) * ${vol} as wick_down,
               1 + (random() * 40)::integer as trades
        from minutes
      ), bars as (
        select t, coalesce(lag(c) over (order by t), c) as o, c, wick_up, wick_down, trades from walk
      )
      insert into market.bars_1m_data (instrument_id, bucket, open, high, low, close, volume, notional, trades, vwap)
      select ${inst.instrument_id}, t, trim_scale(round(o::numeric, ${scale})),
             trim_scale(round((greatest(o, c) * (1 + wick_up))::numeric, ${scale})),
             trim_scale(round((least(o, c) * (1 - wick_down))::numeric, ${scale})),
             trim_scale(round(c::numeric, ${scale})), trim_scale(trades * 0.5), round((trades * 0.5 * c)::numeric, ${scale}), trades,
             market.vwap(round((trades * 0.5 * c)::numeric, ${scale}), trades * 0.5)
      from bars`;
  }
  // Planted faults: in every tenth instrument a 30-minute hole on the 100th day at 10:00 UTC
  // (a Thursday: open for crypto and forex, before the equity session), and a 2 % spike on the
  // 200th day at 15:00 UTC (a Saturday: crypto only). Only bars that exist can be planted.
  const holes = await sql`
    delete from market.bars_1m_data b using market.instruments i
    where i.instrument_id = b.instrument_id and i.venue = 'bench' and i.instrument_id % 10 = 3
      and b.bucket >= ${FROM}::timestamptz + interval '99 days 10 hours'
      and b.bucket < ${FROM}::timestamptz + interval '99 days 10 hours 30 minutes'`;
  const spikes = await sql`
    update market.bars_1m_data b set high = round(b.high * 1.02, 5), close = round(b.high * 1.02, 5)
    from market.instruments i
    where i.instrument_id = b.instrument_id and i.venue = 'bench' and i.instrument_id % 10 = 7
      and b.bucket = ${FROM}::timestamptz + interval '199 days 15 hours'`;
  // The 1-hour bars, as the rollup builds them (the volume baseline of bar_anomalies reads them).
  await sql`
    insert into market.bars_1h_data (instrument_id, bucket, open, high, low, close, volume, notional, trades, vwap)
    select instrument_id, date_bin('1 hour', bucket, '2000-01-03'), (array_agg(open order by bucket))[1], max(high), min(low),
           (array_agg(close order by bucket desc))[1], trim_scale(sum(volume)), sum(notional), sum(trades),
           market.vwap(sum(notional), sum(volume))
    from market.bars_1m_data group by 1, 2`;
  await sql`vacuum analyze market.bars_1m_data`;
  await sql`select ops.set_setting('bench.planted', ${JSON.stringify({ holeBars: holes.count, spikeBars: spikes.count })})`;
  const [row] = await sql<{ n: number }[]>`select count(*)::float8 as n from market.bars_1m_data`;
  return row!.n;
}

async function main(): Promise<void> {
  let db: Database | undefined;
  let dir: string | undefined;
  let url = process.env.QUALITY_BENCH_DATABASE_URL;
  if (!url) {
    dir = mkdtempSync(path.join(tmpdir(), 'tickflow-quality-bench-'));
    db = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: false, log });
    url = db.url;
  }
  const sql = connect(url, { max: 4 });
  try {
    if (db) await migrate(sql, url, log);
    const t0 = performance.now();
    const [existing] = await sql<{ have: number }[]>`select count(*)::int as have from market.instruments where venue = 'bench'`;
    const bars = existing!.have > 0
      ? (await sql<{ n: number }[]>`select count(*)::float8 as n from market.bars_1m_data`)[0]!.n
      : await generate(sql);
    await sql`vacuum analyze market.bars_1h_data`;
    const generateMs = Math.round(performance.now() - t0);
    const to = new Date(Date.parse(FROM) + DAYS * 86_400_000).toISOString();
    await sql`delete from quality.findings`;

    let t = performance.now();
    await sql`select quality.refresh_activity_profiles(${to}::timestamptz - interval '28 days', ${to}::timestamptz)`;
    const profilesMs = Math.round(performance.now() - t);

    const detectors: Record<string, { ms: number; found: number }> = {};
    t = performance.now();
    for (const name of BAR_DETECTORS) {
      const s = performance.now();
      const [row] = await sql<{ r: { found: number } }[]>`select quality.run_detector(${name}, ${FROM}, ${to}) as r`;
      detectors[name] = { ms: Math.round(performance.now() - s), found: row!.r.found };
    }
    const sequentialMs = Math.round(performance.now() - t);

    // The same work split in two halves of the instruments, on two connections at once, REPEAT
    // times over the same generated bars (each run starts from no findings).
    const ids = (await sql<{ id: number }[]>`select instrument_id as id from market.instruments where venue = 'bench' order by 1`).map((r) => r.id);
    const halves = [ids.filter((_, i) => i % 2 === 0), ids.filter((_, i) => i % 2 === 1)];
    const parallelRunsMs: number[] = [];
    for (let run = 0; run < REPEAT; run++) {
      await sql`delete from quality.findings`;
      t = performance.now();
      await Promise.all(halves.map(async (half) => {
        for (const name of BAR_DETECTORS) await sql`select quality.run_detector(${name}, ${FROM}, ${to}, ${half}::integer[])`;
      }));
      parallelRunsMs.push(Math.round(performance.now() - t));
    }
    const parallelMs = [...parallelRunsMs].sort((a, b) => a - b)[Math.floor(parallelRunsMs.length / 2)]!;

    const kinds = await sql<{ kind: string; label: string; n: number }[]>`
      select kind, label, count(*)::int as n from quality.findings where resolved_at is null group by 1, 2 order by 1, 2`;
    const [planted] = await sql<{ gaps: number; spikes: number; found_gaps: number; found_spikes: number }[]>`
      select (select count(distinct b.instrument_id) from market.instruments i
              join market.bars_1m_data b on b.instrument_id = i.instrument_id and b.bucket = ${FROM}::timestamptz + interval '99 days 9 hours 59 minutes'
              where i.venue = 'bench' and i.instrument_id % 10 = 3)::int as gaps,
             (select count(*) from market.bars_1m_data b join market.instruments i using (instrument_id)
              where i.venue = 'bench' and i.instrument_id % 10 = 7 and b.bucket = ${FROM}::timestamptz + interval '199 days 15 hours')::int as spikes,
             (select count(*) from quality.findings where kind = 'gap' and label = 'our_loss'
                and window_from = ${FROM}::timestamptz + interval '99 days 10 hours'
                and window_to = ${FROM}::timestamptz + interval '99 days 10 hours 30 minutes')::int as found_gaps,
             (select count(*) from quality.findings where kind = 'spike'
                and window_from = ${FROM}::timestamptz + interval '199 days 15 hours')::int as found_spikes`;
    console.log(JSON.stringify({
      instruments: ids.length, days: DAYS, bars, generateMs, profilesMs, detectors, sequentialMs, parallelMs, parallelRunsMs,
      findings: Object.fromEntries(kinds.map((k) => [`${k.kind}:${k.label}`, k.n])),
      plantedGaps: planted!.gaps, plantedSpikes: planted!.spikes,
      foundPlantedGaps: planted!.found_gaps, foundPlantedSpikes: planted!.found_spikes,
    }));
  } finally {
    await sql.end();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
