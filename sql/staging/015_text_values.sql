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

-- Readers for the two ways through a normalizer: careful tests the text first (null when it is
-- not a value of the type), fast casts at once (text that is not raises, and the caller does the
-- batch again carefully). Either way the text is parsed once per call.

create or replace function staging.read_numeric(p_text text, p_careful boolean)
returns numeric
language sql
stable parallel safe
as $$
  select case when not p_careful or pg_input_is_valid(p_text, 'numeric') then p_text::numeric end
$$;
comment on function staging.read_numeric(text, boolean) is 'The numeric value of a text (careful: null when it is not one; fast: raises).';

create or replace function staging.read_bigint(p_value jsonb, p_careful boolean)
returns bigint
language sql
stable parallel safe
as $$
  select case when jsonb_typeof(p_value) = 'number' and (not p_careful or pg_input_is_valid(p_value::text, 'bigint'))
              then p_value::text::bigint end
$$;
comment on function staging.read_bigint(jsonb, boolean) is
  'A JSON integer that fits a bigint (careful: null otherwise, ids beyond 2^63 included; fast: a non-integer number raises).';
