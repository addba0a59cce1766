-- Interactive Brokers connectivity as gaps. TWS keeps our socket open when its own link to IBKR
-- drops, so no disconnect event opens a gap; the notices say it instead (recorded as session
-- events by ingesters/ibkr.ts, detail.code):
--   1100  connectivity between TWS and IBKR lost: a gap opens for every instrument and channel
--         of the feed, from the last data before it (detail.lastDataAt) or the notice itself;
--   1101  restored, data lost (the ingester has requested everything again) and
--   1102  restored, data kept: the open 1100 gaps of the feed end at the notice.
-- Data-farm notices (2103-2106, 2157, 2158) open nothing: the farm reconnects by itself and
-- TWS keeps streaming what other farms serve; they stay in ops.session_events.

create or replace function ops.ib_connectivity_gaps()
returns trigger
language plpgsql
as $$
begin
  -- Runs inside the landing transaction (ops.record_events): it must never fail it.
  begin
    insert into quality.gaps (venue, feed, stream, instrument_id, gap_from, detected_by, session_id, detail)
    select n.venue, n.feed, ch.channel,
           (select i.instrument_id from market.instruments i where i.venue = n.venue and i.symbol = ins.symbol
            order by i.instrument_id limit 1),
           least(n.at, coalesce((n.detail->>'lastDataAt')::timestamptz, n.at)), 'disconnect', n.session_id,
           jsonb_build_object('code', 1100, 'reason', 'TWS lost its connection to IBKR (1100)', 'symbol', ins.symbol)
    from new_events n
    cross join lateral jsonb_array_elements_text(n.detail->'channels') ch(channel)
    cross join lateral jsonb_array_elements_text(n.detail->'instruments') ins(symbol)
    where n.venue = 'ib' and n.kind = 'error_frame' and n.detail->>'code' = '1100'
      and jsonb_typeof(n.detail->'channels') = 'array' and jsonb_typeof(n.detail->'instruments') = 'array'
      and not exists (select 1 from quality.gaps g
                      where g.venue = n.venue and g.feed = n.feed and g.stream = ch.channel and g.detail->>'symbol' = ins.symbol
                        and g.detail->>'code' = '1100' and g.gap_to is null);

    update quality.gaps g
       set gap_to = greatest(g.gap_from, n.at), updated_at = now(),
           detail = g.detail || jsonb_build_object('restored_by', (n.detail->>'code')::integer)
      from (select distinct on (feed) feed, venue, at, detail from new_events
            where venue = 'ib' and detail->>'code' in ('1101', '1102') order by feed, at) n
     where g.venue = n.venue and g.feed = n.feed and g.detected_by = 'disconnect' and g.gap_to is null
       and g.detail->>'code' = '1100' and g.gap_from <= n.at;
  exception when others then
    raise warning 'ops.ib_connectivity_gaps: % (the events are kept; no gap recorded)', sqlerrm;
  end;
  return null;
end
$$;
comment on function ops.ib_connectivity_gaps() is
  'IBKR notices to gaps: 1100 opens one per instrument and channel of the feed, 1101/1102 end them.';

create or replace trigger session_events_ib_connectivity
after insert on ops.session_events
referencing new table as new_events
for each statement execute function ops.ib_connectivity_gaps();
