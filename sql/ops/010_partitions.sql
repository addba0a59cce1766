-- Partition maintenance for the portable (non-TimescaleDB) path.

create or replace function ops.partition_name(p_table regclass, p_start timestamptz, p_interval interval)
returns text
language sql
immutable
as $$
  select p_table::text || '_p' || case when p_interval >= interval '28 days'
                                    then to_char(p_start at time zone 'UTC', 'YYYYMM')
                                    else to_char(p_start at time zone 'UTC', 'YYYYMMDD') end
$$;

create or replace function ops.partition_start(p_at timestamptz, p_interval interval)
returns timestamptz
language sql
immutable
as $$
  select case when p_interval >= interval '28 days'
              then date_trunc('month', p_at at time zone 'UTC') at time zone 'UTC'
              else date_bin(p_interval, p_at, timestamptz '2000-01-01 00:00:00+00') end
$$;

create or replace function ops.ensure_partitions(p_table regclass, p_from timestamptz, p_to timestamptz)
returns integer
language plpgsql
as $$
declare
  v_interval interval;
  v_form text;
  v_start timestamptz;
  v_end timestamptz;
  v_name text;
  v_created integer := 0;
begin
  select partition_interval, form into v_interval, v_form from ops.time_tables where table_name = p_table;
  if v_form is distinct from 'partitioned' then
    return 0;
  end if;
  v_start := ops.partition_start(p_from, v_interval);
  while v_start <= p_to loop
    v_end := case when v_interval >= interval '28 days' then v_start + interval '1 month' else v_start + v_interval end;
    v_name := ops.partition_name(p_table, v_start, v_interval);
    if to_regclass(v_name) is null then
      perform pg_advisory_xact_lock(hashtext(v_name));
      if to_regclass(v_name) is null then
        -- Rows that fell into the default partition for this range move into the new one.
        drop table if exists pg_temp._moved;
        execute format('create temp table _moved (like %s) on commit drop', p_table);
        execute format('with d as (delete from %s_default where %I >= %L and %I < %L returning *) insert into _moved select * from d',
                       p_table, (select time_column from ops.time_tables where table_name = p_table), v_start,
                       (select time_column from ops.time_tables where table_name = p_table), v_end);
        execute format('create table %s partition of %s for values from (%L) to (%L)', v_name, p_table, v_start, v_end);
        execute format('insert into %s select * from _moved', p_table);
        drop table pg_temp._moved;
        v_created := v_created + 1;
      end if;
    end if;
    v_start := v_end;
  end loop;
  return v_created;
end
$$;
comment on function ops.ensure_partitions(regclass, timestamptz, timestamptz) is
  'Creates the partitions of a time table covering [p_from, p_to]; a no-op for hypertables.';

create or replace function ops.ensure_all_partitions(p_from timestamptz, p_to timestamptz)
returns integer
language sql
as $$
  select coalesce(sum(ops.ensure_partitions(table_name, p_from, p_to)), 0)::integer from ops.time_tables
$$;

create or replace function ops.drop_partitions_before(p_table regclass, p_before timestamptz)
returns integer
language plpgsql
as $$
declare
  v_part record;
  v_dropped integer := 0;
begin
  for v_part in
    select c.oid::regclass as part, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = p_table and pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  loop
    if (regexp_match(v_part.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz <= p_before then
      execute format('drop table %s', v_part.part);
      v_dropped := v_dropped + 1;
    end if;
  end loop;
  return v_dropped;
end
$$;
comment on function ops.drop_partitions_before(regclass, timestamptz) is
  'Retention on the portable path: drops whole partitions that end before p_before.';
