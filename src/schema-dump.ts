import type { Sql } from './db.ts';

const SCHEMAS = ['staging', 'market', 'quality', 'ops'];

/**
 * A deterministic text dump of tickflow's own schemas (tables, columns, constraints, indexes,
 * views, functions, comments), committed under test/ so that every DDL change shows in review.
 */
export async function schemaDump(sql: Sql): Promise<string> {
  const parts: string[] = [];
  const rels = await sql<{ name: string; kind: string; def: string | null }[]>`
    select n.nspname || '.' || c.relname as name, c.relkind::text as kind,
           case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end as def
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(${SCHEMAS}) and c.relkind in ('r', 'p', 'v', 'm', 'S')
    order by 1`;
  for (const r of rels) {
    parts.push(`-- ${r.kind === 'v' ? 'view' : r.kind === 'm' ? 'materialized view' : r.kind === 'S' ? 'sequence' : 'table'} ${r.name}`);
    if (r.def) { parts.push(r.def.trim()); continue; }
    if (r.kind === 'S') continue;
    const cols = await sql<{ line: string }[]>`
      select a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
             || case when a.attnotnull then ' not null' else '' end
             || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
             || case when a.attidentity <> '' then ' identity' else '' end as line
      from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = ${r.name}::regclass and a.attnum > 0 and not a.attisdropped
      order by a.attnum`;
    parts.push(...cols.map((c) => `  ${c.line}`));
    const cons = await sql<{ line: string }[]>`
      select conname || ': ' || pg_get_constraintdef(oid) as line from pg_constraint
      where conrelid = ${r.name}::regclass and contype <> 'n' order by conname`;
    parts.push(...cons.map((c) => `  constraint ${c.line}`));
    const idx = await sql<{ line: string }[]>`
      select pg_get_indexdef(indexrelid) as line from pg_index where indrelid = ${r.name}::regclass order by 1`;
    parts.push(...idx.map((c) => `  ${c.line}`));
    const bound = await sql<{ b: string | null }[]>`select pg_get_expr(relpartbound, oid) as b from pg_class where oid = ${r.name}::regclass`;
    if (bound[0]?.b) parts.push(`  partition ${bound[0].b}`);
  }
  const fns = await sql<{ def: string }[]>`
    select pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = any(${SCHEMAS}) and p.prokind in ('f', 'p')
    order by n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)`;
  parts.push(...fns.map((f) => f.def.trim()));
  const comments = await sql<{ line: string }[]>`
    select c.relnamespace::regnamespace || '.' || c.relname || coalesce('.' || a.attname, '') || ': ' || d.description as line
    from pg_description d join pg_class c on c.oid = d.objoid and d.classoid = 'pg_class'::regclass
    left join pg_attribute a on a.attrelid = c.oid and a.attnum = d.objsubid and d.objsubid > 0
    where c.relnamespace::regnamespace::text = any(${SCHEMAS}) order by 1`;
  parts.push('-- comments', ...comments.map((c) => c.line));
  // Grants to tickflow's roles (migration 20261121018800_roles.sql, sql/zz_privileges.sql), the
  // objects those roles own, and their settings: privileges are DDL too. Other grantees (the
  // owner, whose name depends on the server) are left out.
  const grants = await sql<{ line: string }[]>`
    with acl as (
      select 'schema ' || n.nspname as obj, a.grantee, a.privilege_type
      from pg_namespace n, aclexplode(n.nspacl) a where n.nspname = any(${SCHEMAS})
      union all
      select 'relation ' || c.relnamespace::regnamespace || '.' || c.relname, a.grantee, a.privilege_type
      from pg_class c, aclexplode(c.relacl) a
      where c.relnamespace::regnamespace::text = any(${SCHEMAS}) and not c.relispartition
      union all
      select 'column ' || c.relnamespace::regnamespace || '.' || c.relname || '.' || t.attname, a.grantee, a.privilege_type
      from pg_attribute t join pg_class c on c.oid = t.attrelid, aclexplode(t.attacl) a
      where c.relnamespace::regnamespace::text = any(${SCHEMAS}) and not c.relispartition
      union all
      select 'function ' || p.oid::regprocedure, a.grantee, a.privilege_type
      from pg_proc p, aclexplode(p.proacl) a where p.pronamespace::regnamespace::text = any(${SCHEMAS})
    )
    select obj || ': ' || string_agg(r.rolname || ' ' || privilege_type, ', ' order by r.rolname, privilege_type) as line
    from acl join pg_roles r on r.oid = acl.grantee
    where r.rolname like 'tickflow\_%'
    group by obj order by obj`;
  const owned = await sql<{ line: string }[]>`
    select kind || ' ' || name || ': owner ' || owner as line from (
      select 'relation' as kind, c.relnamespace::regnamespace || '.' || c.relname as name, c.relowner::regrole::text as owner
      from pg_class c where c.relnamespace::regnamespace::text = any(${SCHEMAS}) and not c.relispartition
      union all
      select 'function', p.oid::regprocedure::text, p.proowner::regrole::text
      from pg_proc p where p.pronamespace::regnamespace::text = any(${SCHEMAS})
    ) o where owner like 'tickflow\_%' order by 1`;
  const settings = await sql<{ line: string }[]>`
    select r.rolname || ': ' || array_to_string(s.setconfig, ', ') as line
    from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
    where s.setdatabase = 0 and r.rolname like 'tickflow\_%' order by 1`;
  parts.push('-- privileges', ...grants.map((g) => g.line), ...owned.map((o) => o.line), ...settings.map((r) => r.line));
  return `${parts.join('\n')}\n`;
}
