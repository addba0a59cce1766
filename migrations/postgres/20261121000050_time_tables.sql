-- Up Migration
-- One definition per time-series table, two physical forms: a TimescaleDB hypertable where
-- the extension is installed, a natively range-partitioned table (with a default partition
-- as a safety net) otherwise.
create table ops.time_tables (
  table_name regclass primary key,
  time_column text not null,
  partition_interval interval not null,
  form text not null check (form in ('hypertable', 'partitioned'))
);

create function ops.create_time_table(p_ddl text, p_table text, p_time_column text,
                                      p_partition interval, p_chunk interval)
returns void
language plpgsql
as $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    execute p_ddl;
    execute format('select create_hypertable(%L, by_range(%L, %L::interval))', p_table, p_time_column, p_chunk);
    insert into ops.time_tables values (p_table::regclass, p_time_column, p_chunk, 'hypertable');
  else
    execute p_ddl || format(' partition by range (%I)', p_time_column);
    execute format('create table %s partition of %s default', p_table || '_default', p_table);
    insert into ops.time_tables values (p_table::regclass, p_time_column, p_partition, 'partitioned');
  end if;
end
$$;

-- Down Migration
drop function ops.create_time_table(text, text, text, interval, interval);
drop table ops.time_tables;
