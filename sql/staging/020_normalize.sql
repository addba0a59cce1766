-- The one normalization path: every landed batch (live frames, REST pages, decoded files)
-- goes through staging.normalize_batch(), which calls each venue's normalizer version for
-- the frames it covers. Normalizers never raise on bad data: they quarantine it.

create or replace function staging.quarantine(p_frame_id bigint, p_item integer, p_reason text, p_normalizer text)
returns void
language sql
as $$
  insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
  select f.frame_id, p_item, f.batch_id, f.venue, f.stream, f.received_at, f.payload, p_reason, p_normalizer
  from staging.frames f where f.frame_id = p_frame_id
  on conflict (frame_id, item) do nothing
$$;

create or replace function staging.merge_counts(p_a jsonb, p_b jsonb)
returns jsonb
language sql
immutable
as $$
  select coalesce(jsonb_object_agg(k, coalesce((p_a->>k)::bigint, 0) + coalesce((p_b->>k)::bigint, 0)), '{}')
  from (select jsonb_object_keys(coalesce(p_a, '{}') || coalesce(p_b, '{}')) as k) keys
$$;

create or replace function staging.normalize_batch(p_batch uuid)
returns jsonb
language plpgsql
as $$
declare
  v_norm record;
  v_counts jsonb := '{}';
  v_part jsonb;
  v_oversize integer;
  v_lo timestamptz;
  v_hi timestamptz;
  v_frames integer;
begin
  -- The batch's receive times bound every read of staging.frames, so only the partitions that
  -- hold it are read, not each of a month of daily partitions probed by batch id. A batch whose
  -- bounds do not hold all of its frames (one written by hand, say) is read whole.
  select b.first_received_at, b.last_received_at + interval '1 microsecond', b.frames into v_lo, v_hi, v_frames
  from ops.batches b where b.batch_id = p_batch;
  if v_lo is null or v_hi is null or v_frames is distinct from
     (select count(*) from staging.frames f where f.batch_id = p_batch and f.received_at >= v_lo and f.received_at < v_hi) then
    v_lo := '-infinity';
    v_hi := 'infinity';
  end if;
  -- A frame over the runtime's payload limit lands as a stand-in written by tickflow
  -- ({"bytes":N,"limit":M,"head":"..."}): quarantined first, so no venue normalizer reads it.
  with q as (
    insert into staging.quarantine (frame_id, item, batch_id, venue, stream, received_at, payload, reason, normalizer)
    select f.frame_id, -1, f.batch_id, f.venue, f.stream, f.received_at, f.payload,
           'frame of ' || coalesce(substring(f.payload from '^\{"bytes":([0-9]+)'), '?') || ' bytes is over the payload limit of '
             || coalesce(substring(f.payload from '^\{"bytes":[0-9]+,"limit":([0-9]+)'), '?') || ' bytes (its first bytes are kept)',
           'normalize_batch'
    from staging.frames f
    where f.batch_id = p_batch and f.stream = 'oversize' and f.received_at >= v_lo and f.received_at < v_hi
    on conflict (frame_id, item) do nothing
    returning 1
  )
  select count(*) into v_oversize from q;
  if v_oversize > 0 then v_counts := jsonb_build_object('quarantined', v_oversize); end if;
  for v_norm in
    select n.fn, n.valid_from, n.valid_to
    from staging.normalizers n
    where exists (select 1 from staging.frames f
                  where f.batch_id = p_batch and f.venue = n.venue
                    and f.received_at >= greatest(n.valid_from, v_lo) and f.received_at < least(n.valid_to, v_hi))
    order by n.venue, n.valid_from
  loop
    execute format('select %s($1, $2, $3)', v_norm.fn::regproc) into v_part
      using p_batch, greatest(v_norm.valid_from, v_lo), least(v_norm.valid_to, v_hi);
    v_counts := staging.merge_counts(v_counts, v_part);
  end loop;
  -- Frames of a venue that no normalizer covers are kept and quarantined, never dropped.
  perform staging.quarantine(f.frame_id, -1, 'no normalizer for venue ' || f.venue || ' at ' || f.received_at, 'normalize_batch')
  from staging.frames f
  where f.batch_id = p_batch and f.received_at >= v_lo and f.received_at < v_hi
    and not exists (select 1 from staging.normalizers n where n.venue = f.venue
                    and f.received_at >= n.valid_from and f.received_at < n.valid_to);
  update ops.batches set normalized_at = now(), normalize_error = null, counts = v_counts where batch_id = p_batch;
  return v_counts;
end
$$;
comment on function staging.normalize_batch(uuid) is 'Normalizes one landed batch into market; idempotent, so a batch may be normalized again.';

create or replace function staging.normalize_pending(p_limit integer default 100)
returns integer
language plpgsql
as $$
declare
  v_batch uuid;
  v_done integer := 0;
begin
  for v_batch in
    select batch_id from ops.batches where normalized_at is null order by landed_at limit p_limit
    for update skip locked
  loop
    begin
      perform staging.normalize_batch(v_batch);
    exception when others then
      update ops.batches set normalize_error = sqlerrm where batch_id = v_batch;
      continue;
    end;
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$$;
comment on function staging.normalize_pending(integer) is
  'Catch-up: normalizes batches whose normalization failed or was deferred (a bug fix, then this, re-derives them).';
