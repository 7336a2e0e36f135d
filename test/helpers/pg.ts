// PostgreSQL for tests: the test script starts a throwaway cluster and passes
// its admin URL in LABFORGE_TEST_PG_URL; each test server gets a fresh database.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.LABFORGE_TEST_PG_URL;

if (!PG_URL && process.env.CI) {
  throw new Error('LABFORGE_TEST_PG_URL is not set: run the suite with `bash scripts/test.sh`, which starts PostgreSQL for it.');
}

/** The metadata stores every store test runs against. Without the test script's PostgreSQL, only SQLite. */
export const DIALECTS: Array<'sqlite' | 'postgres'> = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!PG_URL) throw new Error('PostgreSQL is not available to this test run');
  const name = `lf_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
