-- requires: timescaledb
-- Retention with TimescaleDB is a policy per hypertable (registered by migration
-- 20261121001000_bars.sql with the settings of that moment). This brings the policies in line
-- with the current settings, as ops.run_maintenance() reads them on the portable path.

create or replace function ops.apply_timescale_retention()
returns integer
language plpgsql
as $$
declare
  v_staging interval := ops.setting('retention.staging_days', '30')::integer * interval '1 day';
  v_ticks interval := ops.setting('retention.ticks_days', '365')::integer * interval '1 day';
  v_rule record;
  v_changed integer := 0;
begin
  for v_rule in
    select r.tbl, r.keep
    from (values ('staging.frames'::regclass, v_staging), ('market.trades'::regclass, v_ticks),
                 ('market.quotes'::regclass, v_ticks), ('market.book_snapshots'::regclass, v_ticks),
                 ('staging.tick_columns'::regclass, v_staging), ('market.quote_blocks'::regclass, v_ticks)) as r(tbl, keep)
  loop
    if not exists (select 1 from timescaledb_information.jobs j
                   where j.proc_name = 'policy_retention'
                     and format('%I.%I', j.hypertable_schema, j.hypertable_name)::regclass = v_rule.tbl
                     and (j.config->>'drop_after')::interval = v_rule.keep) then
      perform remove_retention_policy(v_rule.tbl, if_exists => true);
      perform add_retention_policy(v_rule.tbl, v_rule.keep);
      v_changed := v_changed + 1;
    end if;
  end loop;
  return v_changed;
end
$$;
comment on function ops.apply_timescale_retention() is
  'TimescaleDB: sets the retention policies to retention.staging_days (staging) and retention.ticks_days (trades, '
  'quotes, book snapshots); returns how many it changed.';
