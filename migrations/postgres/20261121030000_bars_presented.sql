-- Up Migration
-- Rollup engine: bars are stored as they are read. open, high, low, close and volume are kept
-- with trailing zeros trimmed and vwap (notional / volume cut to 18 decimals) is a column, both
-- computed when a bar is built instead of on every row of every read (a year of 1-minute bars
-- spent four fifths of its query time there). notional stays untrimmed: higher timeframes sum
-- it. The TimescaleDB continuous aggregates keep their columns; the views compute the same
-- values from them (sql/market/bars_timescaledb.sql).
do $$
declare
  v_table text;
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    return;
  end if;
  foreach v_table in array array['bars_1m_data', 'bars_5m_data', 'bars_15m_data', 'bars_1h_data', 'bars_4h_data', 'bars_1d_data'] loop
    execute format('alter table market.%I add column vwap numeric', v_table);
    execute format('update market.%I set open = trim_scale(open), high = trim_scale(high), low = trim_scale(low), '
                   'close = trim_scale(close), volume = trim_scale(volume), '
                   'vwap = trim_scale(div(notional * 1000000000000000000, nullif(volume, 0)) * 0.000000000000000001)',
                   v_table);
  end loop;
end
$$;

-- Down Migration
do $$
declare
  v_table text;
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    return;
  end if;
  foreach v_table in array array['bars_1m_data', 'bars_5m_data', 'bars_15m_data', 'bars_1h_data', 'bars_4h_data', 'bars_1d_data'] loop
    execute format('alter table market.%I drop column vwap cascade', v_table); -- the views come back with sql/ at the next start
  end loop;
end
$$;
