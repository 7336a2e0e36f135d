// Opens the metadata store (SQLite file or PostgreSQL) and runs migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, type Migration, type MigrationProvider, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/config.js';
import * as m001 from './migrations/001-initial.js';
import * as m002 from './migrations/002-virtual-machines.js';
import * as m003 from './migrations/003-lab-services.js';
import * as m004 from './migrations/004-accounts.js';
import * as m005 from './migrations/005-lab-schedules.js';
import * as m006 from './migrations/006-sign-ins-and-console-tickets.js';
import * as m007 from './migrations/007-vm-status-code.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /**
   * A mark that changes whenever the database may have changed: a write through this process, or a commit by any
   * other connection (SQLite's data_version). Equal marks mean identical data, so an answer computed from the
   * database can be reused while the mark stays the same. Undefined where no such mark is cheap (PostgreSQL).
   */
  changeMark(): string | undefined;
  close(): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '001-initial': m001,
  '002-virtual-machines': m002,
  '003-lab-services': m003,
  '004-accounts': m004,
  '005-lab-schedules': m005,
  '006-sign-ins-and-console-tickets': m006,
  '007-vm-status-code': m007,
};

class StaticMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

/**
 * Kysely prepares every query anew; preparing costs more than running a
 * small query. Queries are built from a fixed set of shapes, so caching the
 * prepared statements by SQL text is bounded in practice (and capped here).
 * Kysely prepares a statement each time it runs one, so counting the writing
 * statements prepared here (and every exec) counts every write and transaction
 * command of this connection: with SQLite's data_version, which changes on
 * commits of every other connection, that makes the store's change mark.
 */
function withStatementCache(sqlite: SQLite.Database): { database: SQLite.Database; changeMark: () => string } {
  const cache = new Map<string, SQLite.Statement>();
  let writes = 0;
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  const database = new Proxy(sqlite, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (sql: string) => {
          let stmt = cache.get(sql);
          if (!stmt) {
            stmt = target.prepare(sql);
            if (cache.size >= 1000) cache.clear();
            cache.set(sql, stmt);
          }
          if (!stmt.reader) writes++;
          return stmt;
        };
      }
      if (prop === 'exec') {
        return (sql: string) => {
          writes++;
          return target.exec(sql);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { database, changeMark: () => `${dataVersion.get()}.${writes}` };
}

export async function openStore(database: Config['database']): Promise<Store> {
  let db: Kysely<Database>;
  let changeMark: () => string | undefined = () => undefined;
  if (database.kind === 'sqlite') {
    mkdirSync(dirname(database.file), { recursive: true });
    const sqlite = new SQLite(database.file);
    sqlite.pragma('journal_mode = WAL');
    // FULL syncs the WAL on every commit: a committed row survives power loss.
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 10000');
    const cached = withStatementCache(sqlite);
    changeMark = cached.changeMark;
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached.database }) });
  } else {
    const pool = new pg.Pool({ connectionString: database.url, max: 10 });
    // An idle connection can die (server restart, admin kill); without a listener that would crash the process.
    pool.on('error', (err) => console.error(`labforge: a PostgreSQL connection was lost and will be replaced: ${err.message}`));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const store: Store = { db, dialect: database.kind, changeMark, close: () => db.destroy() };
  try {
    await migrate(store);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return store;
}

export async function migrate(store: Store): Promise<void> {
  const migrator = new Migrator({ db: store.db, provider: new StaticMigrations() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}
