-- Up Migration
-- Backfill chunks are clipped to the requested range (a one-day request fetches one day, not the
-- whole grid cell), so a chunk is identified by its start and its end; a later plan reuses any
-- finished chunk that covers the part of a cell it wants (ops.plan_backfill).
alter table ops.backfill_chunks drop constraint backfill_chunks_key;
alter table ops.backfill_chunks add constraint backfill_chunks_key
  unique nulls not distinct (venue, symbol, kind, timeframe, chunk_from, chunk_to);

-- Down Migration
alter table ops.backfill_chunks drop constraint backfill_chunks_key;
alter table ops.backfill_chunks add constraint backfill_chunks_key
  unique nulls not distinct (venue, symbol, kind, timeframe, chunk_from);
