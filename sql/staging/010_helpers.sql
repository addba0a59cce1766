-- Small, exact helpers shared by every normalizer.

create or replace function staging.positive_decimal(p_text text)
returns numeric
language sql
stable parallel safe
as $$
  -- The exact value of a decimal string that is a finite number above zero, else null (NaN,
  -- Infinity, zero, negatives and non-numbers are refused). Inlined; cheaper than a regex.
  select case when pg_input_is_valid(p_text, 'numeric') and p_text::numeric > 0 and p_text::numeric < 'Infinity'
              then p_text::numeric end
$$;

create or replace function staging.nonnegative_decimal(p_text text)
returns numeric
language sql
stable parallel safe
as $$
  -- As positive_decimal, but zero is allowed (an empty side of a book has size 0).
  select case when pg_input_is_valid(p_text, 'numeric') and p_text::numeric >= 0 and p_text::numeric < 'Infinity'
              then p_text::numeric end
$$;

create or replace function staging.is_decimal(p_text text)
returns boolean
language sql
immutable parallel safe
as $$
  -- A plain non-negative decimal string: no sign, exponent, NaN or Infinity.
  select p_text ~ '^[0-9]{1,30}(\.[0-9]{1,30})?$'
$$;
comment on function staging.is_decimal(text) is 'True for a plain non-negative decimal string (the only price or size form a venue sends).';

create or replace function staging.epoch_ms(p_ms bigint)
returns timestamptz
language sql
stable parallel safe
as $$
  -- Integer milliseconds times an exact interval: exact for every date before the year 2255.
  -- Null where timestamptz ends (before 4713 BC, after the year 287,000; the caller quarantines
  -- it), never an overflow error that would fail the whole batch.
  select case when p_ms between -210000000000000 and 9000000000000000
              then timestamptz '1970-01-01 00:00:00+00' + p_ms * interval '1 millisecond' end
$$;

create or replace function staging.epoch_us(p_us bigint)
returns timestamptz
language sql
stable parallel safe
as $$
  select timestamptz '1970-01-01 00:00:00+00' + p_us * interval '1 microsecond'
$$;

create or replace function staging.epoch_us_of(p_at timestamptz)
returns bigint
language sql
stable parallel safe
as $$
  select (extract(epoch from p_at) * 1000000)::bigint
$$;

create or replace function staging.is_int(p_value jsonb)
returns boolean
language sql
stable parallel safe
as $$
  select jsonb_typeof(p_value) = 'number' and pg_input_is_valid(p_value::text, 'bigint')
$$;
-- Declared stable, not immutable: pg_input_is_valid and timestamptz arithmetic are stable, and a
-- function is only inlined into the calling query when its volatility matches its body.
comment on function staging.is_int(jsonb) is 'True for a JSON integer that fits a bigint (ids beyond 2^63 are quarantined, never rounded).';

create or replace function staging.time_problem(p_event timestamptz, p_received timestamptz)
returns text
language sql
stable parallel safe
as $$
  -- Callers pass plain columns, so the planner inlines this into their query.
  select case
    when p_event < timestamptz '2009-01-01 00:00:00+00' then 'event time ' || p_event || ' is before 2009'
    when p_event > greatest(p_received, now()) + interval '1 day'
      then 'event time ' || p_event || ' is more than a day after it was received'
  end
$$;

create or replace function staging.received_quotes_stored(p_instrument integer[], p_seq bigint[], p_at timestamptz[])
returns table (instrument_id integer, seq bigint)
language plpgsql
stable
set enable_seqscan = off
set enable_bitmapscan = off
set enable_hashjoin = off
set enable_mergejoin = off
as $$
begin
  -- Quotes without a venue time are keyed by their receive time, so the same update received on
  -- two overlapping connections differs in quoted_at: it is the same quote when the update id
  -- matches within two minutes. One probe of the key (instrument_id, seq, quoted_at) per quote,
  -- planned afresh on each call from the tables' current sizes: a plan cached while a partition
  -- was new (no statistics) probes the (instrument_id, quoted_at) index instead and reads every
  -- quote of the instrument per probe.
  return query execute
    'select u.i, u.s
     from unnest($1, $2, $3) as u(i, s, t)
     where exists (select 1 from market.quotes q
                   where q.instrument_id = u.i and q.seq = u.s
                     -- "+ interval ''0''": the time is checked on the rows the key finds, never
                     -- used to range-scan the (instrument_id, quoted_at) index instead.
                     and q.quoted_at + interval ''0'' between u.t - interval ''2 minutes'' and u.t + interval ''2 minutes'')'
    using p_instrument, p_seq, p_at;
end
$$;
comment on function staging.received_quotes_stored(integer[], bigint[], timestamptz[]) is
  'Which of these receive-time quotes (instrument, update id, time) are already stored (overlapping connections).';
