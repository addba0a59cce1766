import type { Config } from './config.ts';
import { connect, openDatabase, type Sql } from './db.ts';
import { TickflowError } from './errors.ts';
import type { Logger } from './log.ts';
import { alertLine, runQualityDetectors } from '../jobs/quality_detect.ts';

/**
 * `tickflow quality report --instrument EUR/USD --from 2019-02-03 --to 2019-02-09 [--venue V]`:
 * completeness per day, gaps by label, spikes and anomalies with their trend, read from the
 * same views Grafana charts (quality.daily_completeness, quality.daily_findings). The daily
 * coverage of the range is recomputed first, so the numbers are those of the data now.
 * `tickflow quality detect --from .. --to .. [--instrument S]` runs the detectors over a range now.
 */

export interface ReportOptions { symbol: string; from: string; to: string; venue?: string | undefined }

export interface CompletenessRow {
  venue: string; day: string; expected_minutes: number; active_open_minutes: number; lost_minutes: string;
  completeness: string | null; messages: string; expected_messages: string | null; message_coverage: string | null;
}
export interface GapRow { venue: string; label: string; gaps: number; minutes: string }
export interface FindingTrend { venue: string; kind: string; label: string; total: number; per_day: number[]; trend: string }
export interface QualityReport {
  symbol: string; from: string; to: string; days: string[]; venues: string[];
  completeness: CompletenessRow[]; gaps: GapRow[]; findings: FindingTrend[]; venue_findings: FindingTrend[];
}

function parseRange(from: string | undefined, to: string | undefined): { from: string; to: string } {
  const parse = (name: string, v: string | undefined): string => {
    const t = v === undefined ? Number.NaN : Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
    if (Number.isNaN(t)) throw new TickflowError('QUALITY_REPORT_INVALID', `--${name}: expected a date or time (2019-02-04, 2019-02-04T12:00Z), received ${v ?? 'nothing'}`);
    return new Date(t).toISOString();
  };
  const range = { from: parse('from', from), to: parse('to', to) };
  if (range.from >= range.to) throw new TickflowError('QUALITY_REPORT_INVALID', `--from must be before --to, received ${from} .. ${to}`);
  return range;
}

/** Trend of daily counts: the second half of the days against the first. */
function trend(perDay: number[]): string {
  if (perDay.length < 2) return 'flat';
  const half = Math.floor(perDay.length / 2);
  const a = perDay.slice(0, half).reduce((x, y) => x + y, 0) / half;
  const b = perDay.slice(perDay.length - half).reduce((x, y) => x + y, 0) / half;
  return b > a ? 'rising' : b < a ? 'falling' : 'flat';
}

export async function qualityReport(sql: Sql, opts: ReportOptions): Promise<QualityReport> {
  const { from, to } = parseRange(opts.from, opts.to);
  const instruments = await sql<{ id: number; venue: string }[]>`
    select instrument_id as id, venue from market.instruments
    where symbol = ${opts.symbol} and (${opts.venue ?? null}::text is null or venue = ${opts.venue ?? null})
    order by venue`;
  if (instruments.length === 0) {
    throw new TickflowError('QUALITY_REPORT_INVALID', `--instrument: expected a symbol tickflow has data for (EUR/USD, BTC/USDT), received ${opts.symbol}${opts.venue ? ` on ${opts.venue}` : ''}`);
  }
  const ids = instruments.map((i) => i.id);
  const venues = [...new Set(instruments.map((i) => i.venue))];
  await sql`select quality.refresh_daily_coverage(${from}, ${to}, ${ids})`;
  const days = (await sql<{ day: string }[]>`
    select to_char(d, 'YYYY-MM-DD') as day
    from generate_series(date_trunc('day', ${from}::timestamptz, 'UTC'), ${to}::timestamptz - interval '1 microsecond', interval '1 day') d
  `).map((r) => r.day);
  const completeness = await sql<CompletenessRow[]>`
    select venue, to_char(day, 'YYYY-MM-DD') as day, expected_minutes, active_open_minutes, lost_minutes::text,
           completeness::text, messages::text, expected_messages::text, message_coverage::text
    from quality.daily_completeness
    where instrument_id = any (${ids}) and day >= ${days[0]!}::date and day <= ${days.at(-1)!}::date
    order by venue, day`;
  const gaps = await sql<GapRow[]>`
    select venue, label, sum(findings)::int as gaps, sum(minutes)::text as minutes
    from quality.daily_findings
    where instrument_id = any (${ids}) and kind = 'gap' and day >= ${days[0]!}::date and day <= ${days.at(-1)!}::date
    group by venue, label order by venue, label`;
  const byDay = async (where: 'instrument' | 'venue') => {
    const rows = await sql<{ venue: string; kind: string; label: string; day: string; n: number }[]>`
      select coalesce(venue, split_part(source, ':', 1)) as venue, kind, label, to_char(day, 'YYYY-MM-DD') as day, sum(findings)::int as n
      from quality.daily_findings
      where day >= ${days[0]!}::date and day <= ${days.at(-1)!}::date and kind <> 'gap'
        and (case when ${where} = 'instrument' then instrument_id = any (${ids})
                  else instrument_id is null and split_part(source, ':', 1) = any (${venues}) end)
      group by 1, 2, 3, 4 order by 1, 2, 3, 4`;
    const out = new Map<string, FindingTrend>();
    for (const r of rows) {
      const key = `${r.venue}|${r.kind}|${r.label}`;
      const t = out.get(key) ?? { venue: r.venue, kind: r.kind, label: r.label, total: 0, per_day: days.map(() => 0), trend: 'flat' };
      t.per_day[days.indexOf(r.day)] = r.n;
      t.total += r.n;
      out.set(key, t);
    }
    return [...out.values()].map((t) => ({ ...t, trend: trend(t.per_day) }));
  };
  return { symbol: opts.symbol, from, to, days, venues, completeness, gaps, findings: await byDay('instrument'), venue_findings: await byDay('venue') };
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
const pct = (v: string | null) => (v === null ? '-' : `${(Number(v) * 100).toFixed(1)} %`); // formatting a ratio SQL computed

export function formatQualityReport(r: QualityReport): string {
  const out = [`quality report ${r.symbol} (${r.venues.join(', ')}) ${r.from} .. ${r.to}`, ''];
  out.push('completeness per day (UTC)');
  out.push(r.completeness.length === 0 ? '  no data in the range' : table(
    ['venue', 'day', 'expected min', 'with data', 'lost min', 'completeness', 'messages', 'expected', 'coverage'],
    r.completeness.map((c) => [c.venue, c.day, String(c.expected_minutes), String(c.active_open_minutes), String(Number(c.lost_minutes)),
      pct(c.completeness), c.messages, c.expected_messages ?? '-', pct(c.message_coverage)])));
  out.push('', 'gaps by label');
  out.push(r.gaps.length === 0 ? '  none' : table(['venue', 'label', 'gaps', 'minutes'],
    r.gaps.map((g) => [g.venue, g.label, String(g.gaps), String(Number(g.minutes))])));
  const trends = (rows: FindingTrend[]) => (rows.length === 0 ? '  none' : table(['venue', 'kind', 'label', 'total', 'per day', 'trend'],
    rows.map((t) => [t.venue, t.kind, t.label, String(t.total), t.per_day.join(' '), t.trend])));
  out.push('', `spikes and anomalies (per day ${r.days[0]} .. ${r.days.at(-1)})`, trends(r.findings));
  out.push('', 'venue-wide findings (feeds, payloads, quarantine)', trends(r.venue_findings));
  return out.join('\n');
}

/** The `tickflow quality <report|detect>` command. */
export async function qualityCommand(sub: string | undefined, values: Record<string, unknown>, config: Config, log: Logger): Promise<number> {
  const v = values as Record<string, string | undefined>;
  if (sub !== 'report' && sub !== 'detect') {
    throw new TickflowError('QUALITY_REPORT_INVALID', `quality: expected report or detect, received ${sub ?? 'nothing'}`);
  }
  if (sub === 'report' && !v.instrument) {
    throw new TickflowError('QUALITY_REPORT_INVALID', '--instrument: expected a symbol such as EUR/USD, received nothing');
  }
  const range = sub === 'report' || v.from !== undefined || v.to !== undefined ? parseRange(v.from, v.to) : undefined;
  const db = await openDatabase(config, log);
  const sql = connect(db.url, { max: 2 });
  try {
    if (sub === 'report') {
      console.log(formatQualityReport(await qualityReport(sql, { symbol: v.instrument!, from: range!.from, to: range!.to, venue: v.venue })));
    } else {
      const runs = await runQualityDetectors({ query: async (text, params) => ({ rows: await sql.unsafe(text, params as never[]) as never[] }) },
        { ...range, ...(v.instrument ? { symbols: [v.instrument] } : {}) });
      for (const run of runs) {
        console.log(`${run.detector}: ${run.found} found (${run.new} new, ${run.resolved} resolved) in ${run.ms} ms`);
        for (const a of run.alerts) console.log(`  ${alertLine(a)}`);
      }
    }
  } finally {
    await sql.end({ timeout: 2 });
    await db.stop();
  }
  return 0;
}
