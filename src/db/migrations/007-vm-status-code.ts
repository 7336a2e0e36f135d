// A VM's status carries a stable code beside its message: why it failed
// (QemuStartFailed, DiskMissing, GuestCrashed, AcceleratorFailed, ...) or what
// its user should know (SoftwareEmulationFallback).
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await db.schema.alterTable('virtual_machines').addColumn('status_code', 'text').execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.alterTable('virtual_machines').dropColumn('status_code').execute();
}
