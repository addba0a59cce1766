import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { startEmbedded, connect, type Database } from '../../src/db.ts';
import { migrate } from '../../src/migrate.ts';
import { createLogger } from '../../src/log.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

let db: Database | undefined;
let dir: string | undefined;
let stopContainer: (() => Promise<void>) | undefined;

/**
 * One embedded Postgres for the whole run, with a migrated template database that each test
 * file clones (create database ... template), so every file starts from the real schema.
 */
export async function setup(project: TestProject): Promise<void> {
  const log = createLogger({ level: 'warn' });
  if (process.env.TICKFLOW_TESTCONTAINERS === '1') {
    // Where a Docker engine exists: the same suite on a TimescaleDB server image (opt-in).
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(process.env.TICKFLOW_TIMESCALE_IMAGE ?? 'timescale/timescaledb:latest-pg17')
      .withEnvironment({ POSTGRES_USER: 'tickflow', POSTGRES_PASSWORD: 'tickflow', POSTGRES_DB: 'tickflow' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    stopContainer = () => container.stop().then(() => undefined);
    process.env.TICKFLOW_TEST_DATABASE_URL = `postgres://tickflow:tickflow@${container.getHost()}:${container.getMappedPort(5432)}/tickflow`;
  }
  if (process.env.TICKFLOW_TEST_DATABASE_URL) {
    const url = process.env.TICKFLOW_TEST_DATABASE_URL;
    project.provide('adminUrl', url);
  } else {
    dir = mkdtempSync(path.join(tmpdir(), 'tickflow-test-'));
    db = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: false, log });
    project.provide('adminUrl', db.url);
  }
  const adminUrl = db?.url ?? process.env.TICKFLOW_TEST_DATABASE_URL!;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe('drop database if exists tickflow_template');
  await admin.unsafe('create database tickflow_template');
  await admin.end();
  const templateUrl = withDatabase(adminUrl, 'tickflow_template');
  const sql = connect(templateUrl, { max: 2 });
  await migrate(sql, templateUrl, log);
  await sql.end();
}

export async function teardown(): Promise<void> {
  await db?.stop();
  await stopContainer?.();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}
