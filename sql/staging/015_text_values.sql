-- Value tests on text already taken out of a payload (REST pages are read as json, whose ->>
-- yields text): the careful paths of normalizers test first, so bad text is quarantined, never raised.

create or replace function staging.numeric_or_null(p_text text)
returns numeric
language sql
stable parallel safe
as $$
  select case when pg_input_is_valid(p_text, 'numeric') then p_text::numeric end
$$;
comment on function staging.numeric_or_null(text) is 'The numeric value of a text, or null when it is not one (never raises).';

create or replace function staging.is_int_text(p_text text)
returns boolean
language sql
stable parallel safe
as $$
  select pg_input_is_valid(p_text, 'bigint')
$$;
comment on function staging.is_int_text(text) is 'True for the text of an integer that fits a bigint (JSON ids and epoch milliseconds).';
