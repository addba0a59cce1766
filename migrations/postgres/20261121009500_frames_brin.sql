-- Up Migration
-- staging.frames is append-only in receive order: a BRIN index serves time-range reads (status,
-- retention) at a fraction of a btree's write cost, and the planner no longer combines a
-- whole-range btree scan with the batch_id lookup that normalization does for every batch.
drop index staging.frames_received_idx;
create index frames_received_brin on staging.frames using brin (received_at);

-- Down Migration
drop index staging.frames_received_brin;
create index frames_received_idx on staging.frames (received_at);
