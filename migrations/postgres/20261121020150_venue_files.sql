-- Up Migration
-- History served as files (Dukascopy: an hour of ticks, a day of minute candles per file).
-- Backfills may ask for ticks; every file a normalizer read whole is recorded, empty ones too,
-- so that a backfill fetches each file once and an empty file is known as "the venue has no
-- data for this period" rather than as a hole.
alter table ops.backfill_plans drop constraint backfill_plans_kind_check;
alter table ops.backfill_plans add constraint backfill_plans_kind_check check (kind in ('candles', 'trades', 'ticks'));

create table market.venue_files (
  venue text not null,
  -- The file's path as the venue names it (Dukascopy: EURUSD/2019/01/04/08h_ticks.bi5, month 0-based).
  path text not null,
  instrument_id integer not null,
  stream text not null,
  period_from timestamptz not null,
  period_to timestamptz not null,
  records integer not null,
  -- Received after its period ended: a later fetch would bring the same file.
  complete boolean not null,
  frame_id bigint not null,
  received_at timestamptz not null,
  constraint venue_files_pkey primary key (venue, path),
  constraint venue_files_period_check check (period_to > period_from),
  constraint venue_files_records_check check (records >= 0)
);
create index venue_files_instrument_period_idx on market.venue_files (instrument_id, stream, period_from);
comment on table market.venue_files is
  'Venue history files read whole by a normalizer (records 0: the venue has no data for the period), with the frame that landed them.';

-- Down Migration
drop table market.venue_files;
alter table ops.backfill_plans drop constraint backfill_plans_kind_check;
alter table ops.backfill_plans add constraint backfill_plans_kind_check check (kind in ('candles', 'trades'));
