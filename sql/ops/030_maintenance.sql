-- Partitions ahead of time and retention, driven by tickflow's job queue.

create or replace function ops.setting(p_key text, p_default text)
returns text
language sql
stable
as $$
  select coalesce((select value from ops.settings where key = p_key), p_default)
$$;

create or replace function ops.set_setting(p_key text, p_value text)
returns void
language sql
as $$
  insert into ops.settings (key, value) values (p_key, p_value)
  on conflict (key) do update set value = excluded.value, updated_at = now()
$$;

create or replace function ops.run_maintenance()
returns jsonb
language plpgsql
as $$
declare
  v_created integer;
  v_dropped integer := 0;
  v_staging interval := ops.setting('retention.staging_days', '30')::integer * interval '1 day';
  v_ticks interval := ops.setting('retention.ticks_days', '365')::integer * interval '1 day';
begin
  v_created := ops.ensure_all_partitions(now() - interval '1 day', now() + interval '3 days');
  if exists (select 1 from ops.time_tables where form = 'partitioned') then
    v_dropped := v_dropped + ops.drop_partitions_before('staging.frames', now() - v_staging);
    v_dropped := v_dropped + ops.drop_partitions_before('staging.tick_columns', now() - v_staging);
    v_dropped := v_dropped + ops.drop_partitions_before('market.trades', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.quotes', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.quote_blocks', now() - v_ticks);
    v_dropped := v_dropped + ops.drop_partitions_before('market.book_snapshots', now() - v_ticks);
    delete from staging.frames_default where received_at < now() - v_staging;
    delete from staging.tick_columns_default where landed_at < now() - v_staging;
  end if;
  delete from ops.batches where landed_at < now() - v_staging and normalized_at is not null;
  return jsonb_build_object('partitions_created', v_created, 'partitions_dropped', v_dropped);
end
$$;
comment on function ops.run_maintenance() is
  'Creates the coming days'' partitions and drops those past retention (staging 30 days, ticks 1 year by default).';
