import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { dukascopyFile, landFrames } from './support/quality-data.ts';

// Calendars in SQL: the forex week against the venue's own candles (Dukascopy serves closed hours
// as flat candles with volume 0), US equity sessions against NYSE rules computed here
// independently (nth weekdays, Easter, weekend observance), daylight saving in both.

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase('qcal'); });
afterAll(async () => { await db?.drop(); });

const iso = (d: Date) => d.toISOString().slice(0, 10);
const utcDate = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d));
function nthWeekday(y: number, m: number, dow: number, n: number): Date {
  if (n > 0) {
    const first = utcDate(y, m, 1);
    return utcDate(y, m, 1 + ((dow - first.getUTCDay() + 7) % 7) + 7 * (n - 1));
  }
  const last = utcDate(y, m + 1, 0);
  return utcDate(y, m, last.getUTCDate() - ((last.getUTCDay() - dow + 7) % 7));
}
/** Anonymous Gregorian computus. */
function easter(y: number): Date {
  const a = y % 19, b = Math.floor(y / 100), c = y % 100, d = Math.floor(b / 4), e = b % 4;
  const f = Math.floor((b + 8) / 25), g = Math.floor((b - f + 1) / 3), h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4), k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7, m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31), day = ((h + l - 7 * m + 114) % 31) + 1;
  return utcDate(y, month, day);
}
const shift = (d: Date, days: number) => new Date(d.getTime() + days * 86_400_000);
/** NYSE rule 7.2: a Saturday holiday is observed on Friday, a Sunday one on Monday; New Year on a Saturday is not moved. */
function observed(d: Date, newYear = false): Date | null {
  if (d.getUTCDay() === 6) return newYear ? null : shift(d, -1);
  if (d.getUTCDay() === 0) return shift(d, 1);
  return d;
}
function nyseHolidays(y: number): string[] {
  const days = [
    observed(utcDate(y, 1, 1), true), nthWeekday(y, 1, 1, 3), nthWeekday(y, 2, 1, 3), shift(easter(y), -2),
    nthWeekday(y, 5, 1, -1), y >= 2022 ? observed(utcDate(y, 6, 19)) : null, observed(utcDate(y, 7, 4)),
    nthWeekday(y, 9, 1, 1), nthWeekday(y, 11, 4, 4), observed(utcDate(y, 12, 25)),
  ].filter((d): d is Date => d !== null).map(iso);
  if (y === 2025) days.push('2025-01-09'); // national day of mourning (President Carter): a one-off closure
  return days.sort();
}
function nyseEarlyCloses(y: number): string[] {
  const out: string[] = [];
  const jul3 = utcDate(y, 7, 3);
  if (jul3.getUTCDay() >= 1 && jul3.getUTCDay() <= 4) out.push(iso(jul3));
  out.push(iso(shift(nthWeekday(y, 11, 4, 4), 1)));
  const dec24 = utcDate(y, 12, 24);
  if (dec24.getUTCDay() >= 1 && dec24.getUTCDay() <= 4) out.push(iso(dec24));
  return out.sort();
}

interface Period { period_from: Date; period_to: Date; state: string; note: string | null }

describe('calendars', () => {
  it('forex: closed exactly in the hours Dukascopy served as flat candles in February 2019', async () => {
    await landFrames(db.sql, [dukascopyFile('EURUSD/2019/01/BID_candles_hour_1.bi5')]);
    const rows = await db.sql<{ bucket: Date; flat: boolean; open_minutes: string }[]>`
      select c.bucket, c.volume = 0 as flat,
             quality.minutes_of(quality.open_hours('forex', c.bucket, c.bucket + interval '1 hour'))::text as open_minutes
      from market.candles c where c.timeframe = '1h' order by c.bucket`;
    expect(rows).toHaveLength(672);
    expect(rows.filter((r) => r.flat)).toHaveLength(4 * 48);
    for (const r of rows) expect(Number(r.open_minutes), r.bucket.toISOString()).toBe(r.flat ? 0 : 60);
  });

  it('forex: every 2019 day with a flat daily candle has no open minute, every other day has some (DST included)', async () => {
    await landFrames(db.sql, [dukascopyFile('EURUSD/2019/BID_candles_day_1.bi5')]);
    const rows = await db.sql<{ day: Date; flat: boolean; open_minutes: string }[]>`
      select c.bucket as day, c.volume = 0 as flat,
             quality.minutes_of(quality.open_hours('forex', c.bucket, c.bucket + interval '1 day'))::text as open_minutes
      from market.candles c where c.timeframe = '1d' order by c.bucket`;
    expect(rows).toHaveLength(365);
    for (const r of rows) expect(Number(r.open_minutes) === 0, r.day.toISOString()).toBe(r.flat);
    // Sunday opens at 17:00 New York: 22:00 UTC in winter, 21:00 UTC in summer.
    const opens = await db.sql<{ at: Date }[]>`
      select lower(r) as at from unnest(quality.open_hours('forex', '2019-01-01', '2020-01-01')) r order by 1`;
    expect(opens.filter((o) => o.at.getUTCDay() === 0).map((o) => o.at.getUTCHours()))
      .toEqual(opens.filter((o) => o.at.getUTCDay() === 0).map((o) => (o.at >= new Date('2019-03-10') && o.at < new Date('2019-11-03') ? 21 : 22)));
  });

  it('forex: the rollover minutes are thin, not expected; DST moves them', async () => {
    const thin = await db.sql<{ f: Date; t: Date }[]>`
      select lower(r) as f, upper(r) as t from unnest(quality.thin_hours('forex', '2019-02-04', '2019-02-05')) r
      union all
      select lower(r), upper(r) from unnest(quality.thin_hours('forex', '2019-07-08', '2019-07-09')) r order by 1`;
    expect(thin.map((r) => [r.f.toISOString(), r.t.toISOString()])).toEqual([
      ['2019-02-04T21:55:00.000Z', '2019-02-04T22:05:00.000Z'],
      ['2019-07-08T20:55:00.000Z', '2019-07-08T21:05:00.000Z'],
    ]);
    const [e] = await db.sql<{ minutes: string }[]>`
      select quality.minutes_of(quality.expected_hours('forex', '2019-02-04', '2019-02-05'))::text as minutes`;
    expect(Number(e!.minutes)).toBe(1440 - 10);
  });

  it('us_equity: 2019-2027 sessions are 09:30-16:00 New York on NYSE trading days, 13:00 on early closes', async () => {
    for (let y = 2019; y <= 2027; y++) {
      const periods = await db.sql<Period[]>`
        select * from quality.calendar_periods('us_equity', ${`${y}-01-01T05:00:00Z`}, ${`${y + 1}-01-01T05:00:00Z`})
        where state = 'open'`;
      const ny = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit',
        day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }).format(d).replace(', ', ' ');
      const sessions = periods.map((p) => [ny(p.period_from), ny(p.period_to)]);
      const holidays = new Set(nyseHolidays(y));
      const early = new Set(nyseEarlyCloses(y));
      const expected: string[][] = [];
      for (let d = utcDate(y, 1, 1); d.getUTCFullYear() === y; d = shift(d, 1)) {
        if (d.getUTCDay() === 0 || d.getUTCDay() === 6 || holidays.has(iso(d))) continue;
        expected.push([`${iso(d)} 09:30`, `${iso(d)} ${early.has(iso(d)) ? '13:00' : '16:00'}`]);
      }
      expect(sessions, String(y)).toEqual(expected);
    }
  });

  it('us_equity: daylight saving moves the session in UTC, and closed periods name their holiday', async () => {
    const periods = await db.sql<Period[]>`select * from quality.calendar_periods('us_equity', '2024-03-08', '2024-03-12')`;
    expect(periods.filter((p) => p.state === 'open').map((p) => p.period_from.toISOString()))
      .toEqual(['2024-03-08T14:30:00.000Z', '2024-03-11T13:30:00.000Z']);
    const july = await db.sql<Period[]>`select * from quality.calendar_periods('us_equity', '2024-07-03', '2024-07-06')`;
    expect(july.map((p) => [p.period_from.toISOString(), p.state])).toEqual([
      ['2024-07-03T00:00:00.000Z', 'closed'], ['2024-07-03T13:30:00.000Z', 'open'], ['2024-07-03T17:00:00.000Z', 'closed'],
      ['2024-07-05T13:30:00.000Z', 'open'], ['2024-07-05T20:00:00.000Z', 'closed'],
    ]);
    expect(july[2]!.note).toBe('early close 13:00 (before Independence Day); Independence Day');
  });

  it("crypto is always open; instruments take their asset class's calendar unless overridden", async () => {
    const [c] = await db.sql<{ minutes: string }[]>`
      select quality.minutes_of(quality.expected_hours('crypto', '2024-01-01', '2024-01-08'))::text as minutes`;
    expect(Number(c!.minutes)).toBe(7 * 1440);
    const ids = await db.sql<{ id: number; asset_class: string }[]>`
      insert into market.instruments (venue, venue_symbol, symbol, asset_class)
      values ('test', 'BTCX', 'BTC/X', 'crypto'), ('test', 'EURX', 'EUR/X', 'forex'), ('test', 'AAPL', 'AAPL', 'equity'),
             ('test', 'SPX', 'SPX', 'index'), ('test', 'XAU', 'XAU/X', 'cfd'), ('test', 'DE40', 'DE40', 'index')
      returning instrument_id as id, asset_class`;
    await db.sql`insert into quality.calendars (calendar, time_zone, description) values ('xetra', 'Europe/Berlin', 'test')`;
    await db.sql`insert into quality.instrument_calendars values (${ids[5]!.id}, 'xetra')`;
    const cals = await db.sql<{ calendar: string }[]>`
      select quality.instrument_calendar(id) as calendar from unnest(${ids.map((i) => i.id)}::integer[]) with ordinality u(id, n) order by n`;
    expect(cals.map((c) => c.calendar)).toEqual(['crypto', 'forex', 'us_equity', 'us_equity', 'forex', 'xetra']);
    const [unknown] = await db.sql<{ h: string | null }[]>`select quality.open_hours('nope', now(), now() + interval '1 day')::text as h`;
    expect(unknown!.h).toBeNull();
  });
});

describe('detectors on the TimescaleDB engine (PGlite)', () => {
  it('run over continuous-aggregate bars: a hole in a crypto series is our loss, nothing else is found', async () => {
    const { createTimescalePglite } = await import('./support/pglite.ts');
    const { refreshBars } = await import('../jobs/bars_refresh.ts');
    const pg = await createTimescalePglite();
    try {
      await pg.query(`insert into market.instruments (venue, venue_symbol, symbol) values ('binance', 'BTCUSDT', 'BTC/USDT')`);
      // Three hours of one trade a minute (generated), minutes 60-79 missing.
      await pg.query(`insert into market.trades (instrument_id, traded_at, trade_id, seq, price, size, side, received_at, source)
                      select 1, timestamptz '2030-01-01 00:00:05+00' + m * interval '1 minute', m::text, m, 100 + (m % 7) * 0.01, 1,
                             'buy', timestamptz '2030-01-01 00:00:06+00' + m * interval '1 minute', 'ws'
                      from generate_series(0, 179) m where m not between 60 and 79`);
      // What the normalizer does for landed trades: their minutes are queued for the bars.
      await pg.query(`insert into market.bar_invalidations (instrument_id, bucket)
                      select distinct instrument_id, date_trunc('minute', traded_at) from market.trades`);
      await refreshBars(pg, 100_000);
      const bars = await pg.query<{ n: number }>('select count(*)::int as n from market.bars_1m');
      expect(bars.rows[0]!.n).toBe(160);
      await pg.query(`select quality.refresh_activity_profiles('2030-01-01', '2030-01-01 03:00')`);
      const runs = await pg.query<{ r: { detector: string; found: number } }>(
        `select quality.run_detector(detector, '2030-01-01', '2030-01-01 03:00') as r from quality.detectors order by detector`);
      expect(runs.rows.map((x) => x.r.detector)).toEqual(['bar_anomalies', 'gaps', 'payload_shapes', 'quarantine', 'quote_anomalies',
        'silent_feeds', 'spikes', 'timestamps', 'trade_anomalies']);
      const found = await pg.query<{ kind: string; label: string; window_from: Date; window_to: Date }>(
        `select kind, label, window_from, window_to from quality.findings order by window_from`);
      expect(found.rows.map((f) => [f.kind, f.label, f.window_from.toISOString(), f.window_to.toISOString()])).toEqual([
        ['gap', 'our_loss', '2030-01-01T01:00:00.000Z', '2030-01-01T01:20:00.000Z'],
      ]);
    } finally {
      await pg.close();
    }
  });
});
