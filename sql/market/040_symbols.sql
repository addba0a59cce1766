-- The instruments a dashboard or an analyst can pick, without the private instruments table.

create or replace view market.symbols as
select distinct i.venue, i.symbol, i.asset_class from market.instruments i;
comment on view market.symbols is 'Venue, canonical symbol and asset class of every instrument (the symbol variable of the market dashboard).';
