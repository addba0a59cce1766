-- Up Migration
-- REST pages and decoded files land as payloads of a few hundred KB; live frames stay under the
-- size at which Postgres compresses a value at all. pglz compresses such pages at a few tens of
-- MB/s, which made it the largest single cost of landing history (a two-year 1m backfill is
-- 160 MB of kline text). Where the server has lz4 (ten times faster) large payloads are
-- compressed with it; where it does not (the embedded server), they are stored uncompressed
-- (about 3.5 times the space, for the staging retention only: market rows are unaffected).
-- TimescaleDB refuses both changes on a hypertable with its own compression (columnstore)
-- enabled: there staging keeps the default, and chunks are compressed by TimescaleDB's policy.
do $$
begin
  if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
    alter table staging.frames alter column payload set compression lz4;
  else
    alter table staging.frames alter column payload set storage external;
  end if;
exception when feature_not_supported then
  raise notice 'staging.frames keeps its payload storage: %', sqlerrm;
end
$$;

-- Down Migration
do $$
begin
  alter table staging.frames alter column payload set storage extended;
  alter table staging.frames alter column payload set compression default;
exception when feature_not_supported then
  raise notice 'staging.frames keeps its payload storage: %', sqlerrm;
end
$$;
