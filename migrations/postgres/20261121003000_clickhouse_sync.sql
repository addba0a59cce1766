-- Up Migration
-- What the ClickHouse sync needs in Postgres: a commit-ordered position on every shipped row, and
-- the sync's watermarks.
--
-- Rows reach market.trades long after their event time (backfills, late frames, replayed
-- quarantine), so neither traded_at nor staging frame_id says whether a row was already shipped.
-- Every row records the transaction that wrote it (sync_xid, a 64-bit xid8 that never wraps) and
-- a sequence number (sync_id, unique, the tie-breaker inside one transaction). A row becomes
-- visible when its transaction commits, in any order relative to sequence numbers, so the sync
-- does not keep "the highest id seen": it keeps the pg_snapshot up to which everything is
-- shipped and ships exactly the rows visible in a newer snapshot and not in the old one
-- (pg_visible_in_snapshot). A long transaction therefore delays only its own rows.
--
-- The columns are added nullable and get their defaults afterwards because TimescaleDB refuses a
-- volatile default in ADD COLUMN on a hypertable with compression enabled.
create sequence market.sync_id_seq;
comment on sequence market.sync_id_seq is 'sync_id of market.trades, market.quotes and market.book_snapshots (ClickHouse sync order within a transaction).';

alter table market.trades add column sync_xid xid8;
alter table market.trades add column sync_id bigint;
alter table market.trades alter column sync_xid set default pg_current_xact_id();
alter table market.trades alter column sync_id set default nextval('market.sync_id_seq');
update market.trades set sync_xid = pg_current_xact_id(), sync_id = nextval('market.sync_id_seq') where sync_xid is null;
create index trades_sync_idx on market.trades (sync_xid, sync_id);
comment on column market.trades.sync_xid is 'Transaction that inserted the row (ClickHouse sync position; never set by hand).';
comment on column market.trades.sync_id is 'Insert order within sync_xid (ClickHouse sync position; never set by hand).';

alter table market.quotes add column sync_xid xid8;
alter table market.quotes add column sync_id bigint;
alter table market.quotes alter column sync_xid set default pg_current_xact_id();
alter table market.quotes alter column sync_id set default nextval('market.sync_id_seq');
update market.quotes set sync_xid = pg_current_xact_id(), sync_id = nextval('market.sync_id_seq') where sync_xid is null;
create index quotes_sync_idx on market.quotes (sync_xid, sync_id);
comment on column market.quotes.sync_xid is 'Transaction that inserted the row (ClickHouse sync position; never set by hand).';
comment on column market.quotes.sync_id is 'Insert order within sync_xid (ClickHouse sync position; never set by hand).';

alter table market.book_snapshots add column sync_xid xid8;
alter table market.book_snapshots add column sync_id bigint;
alter table market.book_snapshots alter column sync_xid set default pg_current_xact_id();
alter table market.book_snapshots alter column sync_id set default nextval('market.sync_id_seq');
update market.book_snapshots set sync_xid = pg_current_xact_id(), sync_id = nextval('market.sync_id_seq') where sync_xid is null;
create index book_snapshots_sync_idx on market.book_snapshots (sync_xid, sync_id);
comment on column market.book_snapshots.sync_xid is 'Transaction that inserted the row (ClickHouse sync position; never set by hand).';
comment on column market.book_snapshots.sync_id is 'Insert order within sync_xid (ClickHouse sync position; never set by hand).';

create table ops.clickhouse_watermarks (
  stream text primary key,
  shipped_snapshot pg_snapshot not null default '1:1:',
  shipped_snapshot_at timestamptz,
  target_snapshot pg_snapshot,
  target_snapshot_at timestamptz,
  cursor_xid xid8,
  cursor_id bigint,
  pending_xid xid8,
  pending_id bigint,
  pending_token text,
  rows_shipped bigint not null default 0,
  batches bigint not null default 0,
  replays bigint not null default 0,
  last_batch_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint clickhouse_watermarks_stream_check check (stream in ('trades', 'quotes', 'book_snapshots')),
  constraint clickhouse_watermarks_cursor_check check ((target_snapshot is null) = (cursor_xid is null) and (cursor_xid is null) = (cursor_id is null)
                                                       and (target_snapshot is null) = (target_snapshot_at is null)),
  constraint clickhouse_watermarks_pending_check check ((pending_xid is null) = (pending_id is null) and (pending_xid is null) = (pending_token is null)
                                                        and (pending_xid is null or target_snapshot is not null))
);
comment on table ops.clickhouse_watermarks is
  'ClickHouse sync position per stream: every row visible in shipped_snapshot (taken at shipped_snapshot_at) is in ClickHouse; while a newer target_snapshot is '
  'drained, so are its new rows up to (cursor_xid, cursor_id); a batch up to (pending_xid, pending_id) may be in ClickHouse and is '
  'replayed with pending_token (its insert deduplication token) before anything else. Read ops.clickhouse_lag.';
insert into ops.clickhouse_watermarks (stream) values ('trades'), ('quotes'), ('book_snapshots');

-- Down Migration
drop table ops.clickhouse_watermarks;
drop index market.book_snapshots_sync_idx;
drop index market.quotes_sync_idx;
drop index market.trades_sync_idx;
alter table market.book_snapshots drop column sync_id, drop column sync_xid;
alter table market.quotes drop column sync_id, drop column sync_xid;
alter table market.trades drop column sync_id, drop column sync_xid;
drop sequence market.sync_id_seq;
