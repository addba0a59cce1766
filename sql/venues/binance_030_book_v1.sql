-- The Binance order book, kept in SQL by the documented procedure: a REST snapshot resets the
-- book at lastUpdateId; a diff whose final id u is at or before the book's id is dropped; a diff
-- applies only when it continues the book (spot: U <= last + 1; USD-M: pu = last after the first);
-- anything else is a break: the book is out of sync until the next snapshot.
-- The ingester lands the snapshot before the diffs it buffered while fetching it.

create or replace function market.book_reset(p_instrument integer, p_update_id bigint, p_bids jsonb, p_asks jsonb,
                                             p_at timestamptz)
returns void
language sql
as $$
  delete from market.book_levels where instrument_id = p_instrument;
  insert into market.book_levels (instrument_id, side, price, size, update_id, updated_at)
  select p_instrument, side, (l->>0)::numeric, (l->>1)::numeric, p_update_id, p_at
  from (select 'bid' as side, jsonb_array_elements(p_bids) as l
        union all select 'ask', jsonb_array_elements(p_asks)) x
  where (l->>1)::numeric > 0
  on conflict (instrument_id, side, price) do update set size = excluded.size, update_id = excluded.update_id;
  insert into market.book_state (instrument_id, last_update_id, snapshot_update_id, in_sync, synced_at, updated_at,
                                 last_snapshot_at)
  values (p_instrument, p_update_id, p_update_id, true, p_at, p_at, p_at)
  on conflict (instrument_id) do update
    set last_update_id = excluded.last_update_id, snapshot_update_id = excluded.snapshot_update_id,
        in_sync = true, synced_at = excluded.synced_at,
        updated_at = excluded.updated_at, last_snapshot_at = excluded.last_snapshot_at;
$$;

create or replace function market.book_apply(p_instrument integer, p_update_id bigint, p_bids jsonb, p_asks jsonb,
                                             p_at timestamptz)
returns void
language sql
as $$
  delete from market.book_levels b
  using (select 'bid' as side, jsonb_array_elements(p_bids) as l union all select 'ask', jsonb_array_elements(p_asks)) x
  where b.instrument_id = p_instrument and b.side = x.side and b.price = (x.l->>0)::numeric and (x.l->>1)::numeric = 0;
  insert into market.book_levels (instrument_id, side, price, size, update_id, updated_at)
  select p_instrument, side, (l->>0)::numeric, (l->>1)::numeric, p_update_id, p_at
  from (select 'bid' as side, jsonb_array_elements(p_bids) as l
        union all select 'ask', jsonb_array_elements(p_asks)) x
  where (l->>1)::numeric > 0
  on conflict (instrument_id, side, price) do update set size = excluded.size, update_id = excluded.update_id,
                                                        updated_at = excluded.updated_at;
  update market.book_state set last_update_id = p_update_id, updated_at = p_at, diffs_applied = diffs_applied + 1
  where instrument_id = p_instrument;
$$;

create or replace function staging.levels_valid(p_levels jsonb)
returns boolean
language sql
immutable
as $$
  select jsonb_typeof(p_levels) = 'array'
     and not exists (select 1 from jsonb_array_elements(p_levels) l
                     where jsonb_typeof(l) <> 'array' or not staging.is_decimal(l->>0) or not staging.is_decimal(l->>1)
                        or (l->>0)::numeric = 0)
$$;

create or replace function market.book_snapshot_derived(p_instrument integer, p_update_id bigint, p_at timestamptz,
                                                        p_depth integer default 20)
returns void
language sql
as $$
  insert into market.book_snapshots (instrument_id, taken_at, update_id, origin, bid_prices, bid_sizes, ask_prices,
                                     ask_sizes, received_at)
  select p_instrument, p_at, p_update_id, 'derived',
         coalesce((select array_agg(price order by price desc) from (select price from market.book_levels where instrument_id = p_instrument and side = 'bid' order by price desc limit p_depth) b), '{}'),
         coalesce((select array_agg(size order by price desc) from (select price, size from market.book_levels where instrument_id = p_instrument and side = 'bid' order by price desc limit p_depth) b), '{}'),
         coalesce((select array_agg(price order by price) from (select price from market.book_levels where instrument_id = p_instrument and side = 'ask' order by price limit p_depth) a), '{}'),
         coalesce((select array_agg(size order by price) from (select price, size from market.book_levels where instrument_id = p_instrument and side = 'ask' order by price limit p_depth) a), '{}'),
         p_at
  on conflict do nothing
$$;

create or replace function staging.normalize_binance_book_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_frame record;
  v_state market.book_state;
  v_inst integer;
  v_problem text;
  v_last bigint;
  v_applied integer := 0;
  v_skipped integer := 0;
  v_breaks integer := 0;
  v_snapshots integer := 0;
  v_quarantined integer := 0;
  v_touched integer[] := '{}';
  v_snapshot_every interval := coalesce((select value from ops.settings where key = 'book.snapshot_interval'), '1 second')::interval;
begin
  for v_frame in
    select s.*, coalesce(substring(f.request from '[?&]symbol=([A-Za-z0-9]+)'), s.d->>'s') as symbol
    from (select * from staging.binance_frames(p_batch, p_from, p_to, 'depth')
          union all select * from staging.binance_frames(p_batch, p_from, p_to, 'depth_snapshot')) s
    join staging.frames f on f.frame_id = s.frame_id and f.batch_id = p_batch
    order by s.frame_id
  loop
    select instrument_id into v_inst from market.instruments where venue = 'binance' and venue_symbol = upper(v_frame.symbol);
    if v_inst is null and upper(v_frame.symbol) ~ '^[A-Z0-9]{2,30}$' then
      insert into market.instruments (venue, venue_symbol, symbol, base, quote, asset_class)
      select 'binance', upper(v_frame.symbol), c.symbol, c.base, c.quote, 'crypto'
      from market.binance_symbol(upper(v_frame.symbol)) c
      on conflict (venue, venue_symbol) do nothing
      returning instrument_id into v_inst;
    end if;
    v_problem := case
      when v_frame.d is null then 'payload is not valid JSON'
      when v_inst is null then 'missing or unknown symbol ' || coalesce(v_frame.symbol, '(none)')
      when v_frame.stream = 'depth_snapshot' and not staging.is_int(v_frame.d->'lastUpdateId') then 'snapshot lastUpdateId is not an integer'
      when v_frame.stream = 'depth_snapshot' and not (staging.levels_valid(v_frame.d->'bids') and staging.levels_valid(v_frame.d->'asks'))
        then 'snapshot bids or asks are not [price, size] decimal string pairs'
      when v_frame.stream = 'depth' and v_frame.d->>'e' is distinct from 'depthUpdate' then 'expected e=depthUpdate, received e=' || coalesce(v_frame.d->>'e', '(none)')
      when v_frame.stream = 'depth' and not (staging.is_int(v_frame.d->'U') and staging.is_int(v_frame.d->'u')) then 'update ids U, u are not integers'
      when v_frame.stream = 'depth' and (v_frame.d->>'U')::bigint > (v_frame.d->>'u')::bigint then 'first update id U is after final update id u'
      when v_frame.stream = 'depth' and not (staging.levels_valid(v_frame.d->'b') and staging.levels_valid(v_frame.d->'a'))
        then 'diff b or a is not [price, size] decimal string pairs'
    end;
    if v_problem is not null then
      perform staging.quarantine(v_frame.frame_id, -1, v_problem, 'normalize_binance_book_v1');
      v_quarantined := v_quarantined + 1;
      continue;
    end if;
    select * into v_state from market.book_state where instrument_id = v_inst;
    if v_frame.stream = 'depth_snapshot' then
      v_last := (v_frame.d->>'lastUpdateId')::bigint;
      insert into market.book_snapshots (instrument_id, taken_at, update_id, origin, bid_prices, bid_sizes,
                                         ask_prices, ask_sizes, received_at)
      select v_inst, v_frame.received_at, v_last, 'venue',
             coalesce((select array_agg((l->>0)::numeric order by o) from jsonb_array_elements(v_frame.d->'bids') with ordinality b(l, o)), '{}'),
             coalesce((select array_agg((l->>1)::numeric order by o) from jsonb_array_elements(v_frame.d->'bids') with ordinality b(l, o)), '{}'),
             coalesce((select array_agg((l->>0)::numeric order by o) from jsonb_array_elements(v_frame.d->'asks') with ordinality a(l, o)), '{}'),
             coalesce((select array_agg((l->>1)::numeric order by o) from jsonb_array_elements(v_frame.d->'asks') with ordinality a(l, o)), '{}'),
             v_frame.received_at
      on conflict do nothing;
      if v_state is null or not v_state.in_sync or v_last > v_state.last_update_id then
        perform market.book_reset(v_inst, v_last, v_frame.d->'bids', v_frame.d->'asks', v_frame.received_at);
        v_snapshots := v_snapshots + 1;
        v_touched := v_touched || v_inst;
      end if;
      continue;
    end if;
    if v_state is null or not v_state.in_sync or (v_frame.d->>'u')::bigint <= v_state.last_update_id then
      v_skipped := v_skipped + 1;
      update market.book_state set diffs_skipped = diffs_skipped + 1 where instrument_id = v_inst;
      continue;
    end if;
    if (case when v_frame.d ? 'pu' and v_state.last_update_id <> v_state.snapshot_update_id
             then (v_frame.d->>'pu')::bigint = v_state.last_update_id
             else (v_frame.d->>'U')::bigint <= v_state.last_update_id + 1 end) then
      perform market.book_apply(v_inst, (v_frame.d->>'u')::bigint, v_frame.d->'b', v_frame.d->'a', v_frame.received_at);
      v_applied := v_applied + 1;
      v_touched := v_touched || v_inst;
    else
      update market.book_state set in_sync = false, breaks = breaks + 1, updated_at = v_frame.received_at
      where instrument_id = v_inst;
      insert into quality.gaps (venue, stream, instrument_id, gap_from, gap_to, from_seq, to_seq, detected_by, detail)
      values ('binance', 'depth', v_inst, v_state.updated_at, v_frame.received_at, v_state.last_update_id + 1,
              (v_frame.d->>'U')::bigint - 1, 'book_break',
              jsonb_build_object('frame_id', v_frame.frame_id, 'expected_from', v_state.last_update_id + 1,
                                 'received_U', (v_frame.d->>'U')::bigint));
      v_breaks := v_breaks + 1;
    end if;
  end loop;
  -- Derived top-of-book snapshots, at most one per instrument per snapshot interval.
  perform market.book_snapshot_derived(s.instrument_id, s.last_update_id, s.updated_at)
  from market.book_state s
  where s.instrument_id = any (v_touched) and s.in_sync
    and not exists (select 1 from market.book_snapshots b
                    where b.instrument_id = s.instrument_id and b.origin = 'derived'
                      and b.taken_at > s.updated_at - v_snapshot_every and b.taken_at <= s.updated_at);
  return jsonb_build_object('book_diffs', v_applied, 'book_diffs_skipped', v_skipped, 'book_breaks', v_breaks,
                            'book_snapshots', v_snapshots, 'quarantined', v_quarantined);
end
$$;

create or replace function staging.binance_live_streams(p_batch uuid, p_from timestamptz, p_to timestamptz,
                                                        p_streams text[], p_careful boolean)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
begin
  if 'trade' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_trades_v1(p_batch, p_from, p_to, p_careful));
  end if;
  if 'aggTrade' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_agg_trades_v1(p_batch, p_from, p_to, p_careful));
  end if;
  if 'bookTicker' = any (p_streams) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_quotes_v1(p_batch, p_from, p_to, p_careful));
  end if;
  return v_counts;
end
$$;

create or replace function staging.normalize_binance_v1(p_batch uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
as $$
declare
  v_counts jsonb := '{}';
  v_streams text[];
begin
  -- Only the normalizers for streams present in the batch run: small live batches stay cheap.
  select array_agg(distinct f.stream) into v_streams
  from staging.frames f
  where f.batch_id = p_batch and f.venue = 'binance' and f.received_at >= p_from and f.received_at < p_to;
  -- Trades and quotes the fast way; a batch with a payload or value it cannot read is done
  -- again the careful way, which quarantines that frame with its reason (binance_020).
  begin
    v_counts := staging.binance_live_streams(p_batch, p_from, p_to, v_streams, false);
  exception when data_exception then
    v_counts := staging.binance_live_streams(p_batch, p_from, p_to, v_streams, true);
  end;
  if v_streams && array['depth', 'depth_snapshot'] then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_book_v1(p_batch, p_from, p_to));
  end if;
  if not (v_streams <@ array['trade', 'aggTrade', 'bookTicker', 'depth', 'depth_snapshot']) then
    v_counts := staging.merge_counts(v_counts, staging.normalize_binance_other_v1(p_batch, p_from, p_to));
  end if;
  return v_counts;
end
$$;

insert into staging.normalizers (venue, version, valid_from, fn)
values ('binance', 'v1', '-infinity', 'staging.normalize_binance_v1(uuid, timestamptz, timestamptz)')
on conflict (venue, version) do update set valid_from = excluded.valid_from, fn = excluded.fn;
