-- The stable, public face of market: analysts, Grafana and the ClickHouse sync read these.

create or replace view market.ticks as
select i.venue, i.symbol, t.instrument_id, t.traded_at, t.trade_id, t.seq, t.price, t.size, t.side,
       t.received_at, t.source, t.frame_id
from market.trades t
join market.instruments i using (instrument_id);
comment on view market.ticks is 'Trades with venue and canonical symbol; side is the aggressor.';

create or replace view market.bbo as
select i.venue, i.symbol, q.instrument_id, q.quoted_at, q.seq, q.bid, q.bid_size, q.ask, q.ask_size,
       (q.bid + q.ask) / 2 as mid, q.ask - q.bid as spread, q.tradeable, q.time_source, q.received_at, q.source,
       q.frame_id
from market.all_quotes q
join market.instruments i using (instrument_id);
comment on view market.bbo is 'Best bid and offer with mid and spread (rows and tick blocks: every quote); time_source says '
  'whether quoted_at is the venue''s time. A time range reads fastest through market.quotes_between(from, to).';

create or replace view market.book as
select i.venue, i.symbol, l.instrument_id, l.side,
       row_number() over (partition by l.instrument_id, l.side
                          order by case when l.side = 'bid' then -l.price else l.price end) as level,
       l.price, l.size, l.update_id, l.updated_at, s.in_sync
from market.book_levels l
join market.instruments i using (instrument_id)
join market.book_state s using (instrument_id);
comment on view market.book is 'The current order book, level 1 = best, with whether it is in sync with the venue.';

create or replace view market.book_snapshot_levels as
select i.venue, i.symbol, b.instrument_id, b.taken_at, b.update_id, b.origin, b.bid_prices, b.bid_sizes,
       b.ask_prices, b.ask_sizes, b.received_at
from market.book_snapshots b
join market.instruments i using (instrument_id);
