-- Up Migration
-- Data quality: when data is expected (calendars, maintenance windows), what the detectors found
-- (one findings table for gaps, spikes and anomalies), what they learn from (activity profiles,
-- payload shapes) and what the quality views keep per day. Functions and views are in
-- sql/quality/. The gap ledger (quality.gaps) stays as it is: feed gaps are read from it.

-- Calendars. Sessions and closures are in the calendar's local wall-clock time (time_zone), so
-- daylight saving moves them in UTC as it moves the market: the forex week opens at 17:00 New
-- York time, which is 22:00 UTC in winter and 21:00 UTC in summer.
create table quality.calendars (
  calendar text primary key,
  time_zone text not null,
  always_open boolean not null default false,
  description text not null
);
comment on table quality.calendars is 'Trading calendars: a local time zone, weekly sessions, thin hours and closures.';

create table quality.calendar_sessions (
  calendar text not null references quality.calendars on delete cascade,
  opens_dow smallint not null,
  opens_at time not null,
  closes_dow smallint not null,
  closes_at time not null,
  constraint calendar_sessions_pkey primary key (calendar, opens_dow, opens_at),
  constraint calendar_sessions_dow_check check (opens_dow between 0 and 6 and closes_dow between 0 and 6)
);
comment on table quality.calendar_sessions is
  'Weekly sessions in local time: open on weekday opens_dow (0 = Sunday) at opens_at, close on closes_dow at closes_at '
  '(a later weekday, or the same one; a session may span days, like the forex week).';

create table quality.calendar_thin_hours (
  calendar text not null references quality.calendars on delete cascade,
  starts_at time not null,
  ends_at time not null,
  note text not null,
  constraint calendar_thin_hours_pkey primary key (calendar, starts_at),
  constraint calendar_thin_hours_check check (ends_at > starts_at)
);
comment on table quality.calendar_thin_hours is
  'Daily local windows of open markets where silence is normal (the forex rollover): no data is expected there.';

create table quality.calendar_closures (
  calendar text not null references quality.calendars on delete cascade,
  closed_from timestamp not null,
  closed_to timestamp not null,
  kind text not null,
  note text not null,
  constraint calendar_closures_pkey primary key (calendar, closed_from),
  constraint calendar_closures_kind_check check (kind in ('holiday', 'early_close', 'late_open', 'other')),
  constraint calendar_closures_check check (closed_to > closed_from)
);
comment on table quality.calendar_closures is
  'Holidays, early closes and other closures, in local wall-clock time: [closed_from, closed_to) is removed from the sessions.';

create table quality.asset_class_calendars (
  asset_class text primary key,
  calendar text not null references quality.calendars
);
comment on table quality.asset_class_calendars is 'The calendar of an instrument by asset class, unless quality.instrument_calendars says otherwise.';

create table quality.instrument_calendars (
  instrument_id integer primary key,
  calendar text not null references quality.calendars
);
comment on table quality.instrument_calendars is 'Per-instrument calendar overrides (a German index, a metal with its own break).';

create table quality.maintenance_windows (
  window_id bigint generated always as identity primary key,
  venue text not null,
  instrument_id integer,
  window_from timestamptz not null,
  window_to timestamptz not null,
  note text not null,
  added_at timestamptz not null default now(),
  constraint maintenance_windows_check check (window_to > window_from)
);
create index maintenance_windows_venue_idx on quality.maintenance_windows (venue, window_from);
comment on table quality.maintenance_windows is
  'Venue maintenance and outages the venue announced, added by operators: a hole inside one is a venue outage, not our loss.';

-- Findings: every detector writes here. The natural key (kind, instrument, source, window start)
-- makes a rerun over the same window update a finding instead of adding a second one.
create table quality.findings (
  finding_id bigint generated always as identity primary key,
  kind text not null,
  label text not null default '',
  severity text not null,
  instrument_id integer,
  source text not null,
  window_from timestamptz not null,
  window_to timestamptz not null,
  value numeric,
  baseline numeric,
  detail jsonb not null default '{}',
  detector text not null,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  resolved_at timestamptz,
  alerted_at timestamptz,
  alerted_severity text,
  constraint findings_key unique nulls not distinct (kind, instrument_id, source, window_from),
  constraint findings_severity_check check (severity in ('info', 'warning', 'error', 'critical')),
  constraint findings_alerted_severity_check check (alerted_severity in ('info', 'warning', 'error', 'critical')),
  constraint findings_window_check check (window_to >= window_from),
  constraint findings_value_check check (value <> 'NaN' and baseline <> 'NaN')
);
create index findings_instrument_window_idx on quality.findings (instrument_id, window_from);
create index findings_kind_window_idx on quality.findings (kind, window_from);
create index findings_unalerted_idx on quality.findings (finding_id) where alerted_at is null and resolved_at is null;
comment on table quality.findings is
  'Quality findings of every detector (gaps, spikes, anomalies): kind, label, severity, instrument, source, window, value, '
  'baseline, detail. A rerun updates; a finding not found again by a rerun over its window is resolved, not deleted.';

create table quality.alert_rules (
  kind text primary key,
  min_severity text not null,
  constraint alert_rules_severity_check check (min_severity in ('info', 'warning', 'error', 'critical'))
);
comment on table quality.alert_rules is
  'A finding at or above min_severity for its kind (kind ''*'' for the rest) raises an alert (NOTIFY tickflow_alerts, log line, metric).';

create table quality.detectors (
  detector text primary key,
  fn regprocedure not null,
  kinds text[] not null,
  lookback interval not null default '2 hours',
  description text not null
);
comment on table quality.detectors is
  'Registered detectors: fn(p_from, p_to, p_instruments) returns setof quality.finding_row; run by quality.run_detector().';

create type quality.finding_row as (
  kind text,
  label text,
  severity text,
  instrument_id integer,
  source text,
  window_from timestamptz,
  window_to timestamptz,
  value numeric,
  baseline numeric,
  detail jsonb
);

-- One offending row (a quote, a trade, a late tick) before consecutive rows become one finding.
create type quality.bad_row as (
  instrument_id integer,
  kind text,
  label text,
  severity text,
  series text,
  at timestamptz,
  value numeric,
  baseline numeric
);

-- What the detectors learn. Activity per instrument and hour of the week (calendar local time):
-- how many open minutes were sampled, how many had data, how many messages.
create table quality.activity_profiles (
  instrument_id integer not null,
  hour_of_week smallint not null,
  open_minutes integer not null,
  active_minutes integer not null,
  messages bigint not null,
  sampled_from timestamptz not null,
  sampled_to timestamptz not null,
  updated_at timestamptz not null default now(),
  constraint activity_profiles_pkey primary key (instrument_id, hour_of_week),
  constraint activity_profiles_hour_check check (hour_of_week between 0 and 167),
  constraint activity_profiles_counts_check check (active_minutes between 0 and open_minutes and messages >= 0)
);
comment on table quality.activity_profiles is
  'Usual activity of an instrument by hour of the week (0 = Sunday 00:00 local): the share of open minutes with data sets the gap threshold.';

create table quality.payload_shapes (
  venue text not null,
  stream text not null,
  shape text not null,
  keys text[] not null,
  time_units jsonb not null,
  first_frame_id bigint,
  first_seen_at timestamptz not null,
  last_seen_at timestamptz not null,
  frames bigint not null default 0,
  constraint payload_shapes_pkey primary key (venue, stream, shape)
);
comment on table quality.payload_shapes is
  'Key sets and timestamp units seen in raw payloads per venue and stream (from samples of staging.frames); a new shape is a finding.';

create table quality.instrument_limits (
  instrument_id integer primary key,
  max_trade_size numeric,
  max_quote_size numeric,
  max_bar_volume numeric,
  constraint instrument_limits_check check (max_trade_size > 0 and max_quote_size > 0 and max_bar_volume > 0)
);
comment on table quality.instrument_limits is
  'Operator limits on sizes and volumes per instrument; where none is set, the detector uses a factor of the instrument''s median.';

create table quality.daily_coverage (
  instrument_id integer not null,
  day date not null,
  expected_minutes integer not null,
  active_minutes integer not null,
  active_open_minutes integer not null,
  messages bigint not null,
  expected_messages numeric,
  computed_at timestamptz not null default now(),
  constraint daily_coverage_pkey primary key (instrument_id, day)
);
comment on table quality.daily_coverage is
  'Per instrument and UTC day: open minutes expected by the calendar, minutes with data, messages and the messages the profile expected.';

-- Non-finite sizes stopped at the database (prices already are; candle prices and volumes too).
alter table market.quotes add constraint quotes_size_check
  check ((bid_size is null or (bid_size >= 0 and bid_size <> 'NaN' and bid_size <> 'Infinity'))
     and (ask_size is null or (ask_size >= 0 and ask_size <> 'NaN' and ask_size <> 'Infinity')));
alter table market.agg_trades add constraint agg_trades_price_check
  check (price > 0 and price <> 'NaN' and price <> 'Infinity');
alter table market.agg_trades add constraint agg_trades_size_check
  check (size > 0 and size <> 'NaN' and size <> 'Infinity');
alter table market.book_levels add constraint book_levels_price_check
  check (price > 0 and price <> 'NaN' and price <> 'Infinity');
alter table market.book_levels add constraint book_levels_size_check
  check (size >= 0 and size <> 'NaN' and size <> 'Infinity');

-- Down Migration
alter table market.book_levels drop constraint book_levels_size_check;
alter table market.book_levels drop constraint book_levels_price_check;
alter table market.agg_trades drop constraint agg_trades_size_check;
alter table market.agg_trades drop constraint agg_trades_price_check;
alter table market.quotes drop constraint quotes_size_check;
drop table quality.daily_coverage;
drop table quality.instrument_limits;
drop table quality.payload_shapes;
drop table quality.activity_profiles;
drop type quality.bad_row;
drop type quality.finding_row;
drop table quality.detectors;
drop table quality.alert_rules;
drop table quality.findings;
drop table quality.maintenance_windows;
drop table quality.instrument_calendars;
drop table quality.asset_class_calendars;
drop table quality.calendar_closures;
drop table quality.calendar_thin_hours;
drop table quality.calendar_sessions;
drop table quality.calendars;
