-- The findings model: every detector is a function fn(p_from, p_to, p_instruments) returning
-- setof quality.finding_row, registered in quality.detectors. quality.run_detector() runs one
-- over a window, upserts what it found on the natural key (kind, instrument, source, window
-- start), resolves the findings of that window it did not find again, and raises alerts for
-- findings at or above their kind's threshold: NOTIFY tickflow_alerts with a JSON payload (the
-- job that called it logs a line and counts the metric for each).

create or replace function quality.severity_rank(p_severity text)
returns integer
language sql
immutable parallel safe
as $$
  select case p_severity when 'info' then 0 when 'warning' then 1 when 'error' then 2 when 'critical' then 3 end
$$;
comment on function quality.severity_rank(text) is 'info 0, warning 1, error 2, critical 3 (null for anything else).';

create or replace function quality.setting_numeric(p_key text, p_default numeric)
returns numeric
language sql
stable
as $$
  select coalesce((select value::numeric from ops.settings where key = p_key), p_default)
$$;
comment on function quality.setting_numeric(text, numeric) is
  'A numeric quality setting from ops.settings (set with ops.set_setting), or the default.';

create or replace function quality.alert_threshold(p_kind text)
returns text
language sql
stable
as $$
  select coalesce((select r.min_severity from quality.alert_rules r where r.kind = p_kind),
                  (select r.min_severity from quality.alert_rules r where r.kind = '*'),
                  'error')
$$;
comment on function quality.alert_threshold(text) is 'The lowest severity of a kind that raises an alert (quality.alert_rules, kind ''*'' as default).';

insert into quality.alert_rules (kind, min_severity) values ('*', 'error') on conflict (kind) do nothing;

create or replace function quality.alert_payload(p_finding quality.findings)
returns jsonb
language sql
stable
as $$
  -- NOTIFY payloads are limited to 8000 bytes: detail is dropped from a payload that would not fit.
  select case when length(j::text) < 7900 then j else j - 'detail' || jsonb_build_object('detail_truncated', true) end
  from (
    select jsonb_build_object(
      'finding_id', p_finding.finding_id, 'kind', p_finding.kind, 'label', p_finding.label,
      'severity', p_finding.severity, 'instrument_id', p_finding.instrument_id,
      'venue', i.venue, 'symbol', i.symbol, 'source', p_finding.source,
      'window_from', p_finding.window_from, 'window_to', p_finding.window_to,
      'value', p_finding.value, 'baseline', p_finding.baseline, 'detail', p_finding.detail) as j
    from (select 1) one
    left join market.instruments i on i.instrument_id = p_finding.instrument_id
  ) x
$$;

create or replace function quality.raise_alerts(p_finding_ids bigint[])
returns setof jsonb
language plpgsql
as $$
declare
  v_finding quality.findings;
  v_payload jsonb;
begin
  -- A finding alerts once per severity it reaches: again only if it escalates.
  for v_finding in
    update quality.findings f
       set alerted_at = now(), alerted_severity = f.severity
     where f.finding_id = any (p_finding_ids)
       and f.resolved_at is null
       and quality.severity_rank(f.severity) >= quality.severity_rank(quality.alert_threshold(f.kind))
       and (f.alerted_severity is null or quality.severity_rank(f.severity) > quality.severity_rank(f.alerted_severity))
    returning f.*
  loop
    v_payload := quality.alert_payload(v_finding);
    perform pg_notify('tickflow_alerts', v_payload::text);
    return next v_payload;
  end loop;
end
$$;
comment on function quality.raise_alerts(bigint[]) is
  'Alerts for the given findings that reached their alert threshold (or escalated since their last alert): '
  'NOTIFY tickflow_alerts with the finding as JSON; returns the payloads.';

create or replace function quality.run_detector(p_detector text, p_from timestamptz, p_to timestamptz,
                                                p_instruments integer[] default null)
returns jsonb
language plpgsql
as $$
declare
  v_det quality.detectors;
  v_run timestamptz := clock_timestamp();
  v_ids bigint[];
  v_new bigint;
  v_updated bigint;
  v_resolved bigint;
  v_alerts jsonb;
  v_started timestamptz := clock_timestamp();
begin
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception using errcode = '22023',
      message = format('quality.run_detector: expected p_from < p_to, received [%s, %s)', p_from, p_to);
  end if;
  select * into v_det from quality.detectors d where d.detector = p_detector;
  if not found then
    raise exception using errcode = '22023',
      message = format('quality.run_detector: unknown detector %s', coalesce(quote_literal(p_detector), 'null')),
      hint = 'The detectors are listed in quality.detectors.';
  end if;
  -- One statement: the detector's rows, one per key (the most severe), upserted.
  execute format($q$
    with found as (
      select distinct on (f.kind, f.instrument_id, f.source, f.window_from) f.*
      from %s($1, $2, $3) f
      order by f.kind, f.instrument_id, f.source, f.window_from, quality.severity_rank(f.severity) desc
    ), up as (
      insert into quality.findings as q (kind, label, severity, instrument_id, source, window_from, window_to, value,
                                         baseline, detail, detector, first_seen_at, last_seen_at)
      select f.kind, coalesce(f.label, ''), f.severity, f.instrument_id, f.source, f.window_from, f.window_to, f.value,
             f.baseline, coalesce(f.detail, '{}'), $4, $5, $5
      from found f
      on conflict on constraint findings_key do update
        set label = excluded.label, severity = excluded.severity, window_to = excluded.window_to,
            value = excluded.value, baseline = excluded.baseline, detail = excluded.detail,
            detector = excluded.detector, last_seen_at = excluded.last_seen_at, resolved_at = null
      returning q.finding_id, (q.xmax = 0) as inserted
    )
    select coalesce(array_agg(finding_id), '{}'), count(*) filter (where inserted), count(*) filter (where not inserted)
    from up$q$, v_det.fn::regproc)
  into v_ids, v_new, v_updated
  using p_from, p_to, p_instruments, p_detector, v_run;

  -- What this detector found before in this window and not now is resolved (kept, not deleted).
  update quality.findings f set resolved_at = v_run
  where f.detector = p_detector and f.resolved_at is null and f.last_seen_at < v_run
    and f.window_from >= p_from and f.window_from < p_to
    and (p_instruments is null or f.instrument_id = any (p_instruments));
  get diagnostics v_resolved = row_count;

  select coalesce(jsonb_agg(a), '[]') into v_alerts from quality.raise_alerts(v_ids) a;
  return jsonb_build_object('detector', p_detector, 'found', cardinality(v_ids), 'new', v_new, 'updated', v_updated,
                            'resolved', v_resolved, 'alerts', v_alerts,
                            'ms', round(extract(epoch from clock_timestamp() - v_started) * 1000));
end
$$;
comment on function quality.run_detector(text, timestamptz, timestamptz, integer[]) is
  'Runs one registered detector over [p_from, p_to) (all instruments, or p_instruments): upserts its findings, resolves those '
  'of the window it no longer finds, raises alerts. Returns {detector, found, new, updated, resolved, alerts, ms}.';
