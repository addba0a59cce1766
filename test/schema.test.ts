import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/migrate.ts';
import { schemaDump } from '../src/schema-dump.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { quietLog } from './support/feeds.ts';

const DUMP = path.join(import.meta.dirname, 'schema.sql');
let db: TestDatabase;

beforeAll(async () => { db = await createTestDatabase('schema'); });
afterAll(async () => { await db?.drop(); });

describe('schema as code', () => {
  it('matches the committed dump (run with UPDATE_SCHEMA_DUMP=1 to accept a DDL change)', async () => {
    const dump = await schemaDump(db.sql);
    if (process.env.UPDATE_SCHEMA_DUMP === '1' || !existsSync(DUMP)) writeFileSync(DUMP, dump);
    expect(dump).toBe(readFileSync(DUMP, 'utf8'));
  });

  it('applying migrations and sql/ a second time changes nothing', async () => {
    const before = await schemaDump(db.sql);
    const [{ n: migrations }] = await db.sql`select count(*)::int as n from public.pg_migrations` as unknown as [{ n: number }];
    const again = await migrate(db.sql, db.url, quietLog);
    expect(again.applied).toEqual([]);
    expect(await schemaDump(db.sql)).toBe(before);
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.pg_migrations` as unknown as [{ n: number }];
    expect(after).toBe(migrations);
  });
});
