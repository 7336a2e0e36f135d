// Table types for Kysely. JSON columns hold text (SQLite has no JSON type);
// timestamps are ISO-8601 strings in UTC so both dialects sort them alike.
import type { Kysely, Transaction } from 'kysely';

/** Columns every ARM-shaped resource row carries. */
export interface ResourceColumns {
  id: string;
  subscription_id: string;
  resource_group: string;
  resource_group_key: string;
  name: string;
  name_key: string;
  location: string;
  tags: string;
  etag: string;
  provisioning_state: string;
  created_at: string;
  created_by: string;
  created_by_type: string;
  modified_at: string;
  modified_by: string;
  modified_by_type: string;
}

export interface SubscriptionTable {
  id: string;
  display_name: string;
  state: string;
  created_at: string;
}

export interface ResourceGroupTable {
  subscription_id: string;
  name: string;
  name_key: string;
  location: string;
  tags: string;
  etag: string;
  created_at: string;
  created_by: string;
  created_by_type: string;
  modified_at: string;
  modified_by: string;
  modified_by_type: string;
}

export interface GalleryTable extends ResourceColumns {
  description: string | null;
  unique_name: string;
}

export interface GalleryImageTable extends ResourceColumns {
  gallery_id: string;
  os_type: string;
  os_state: string;
  hyper_v_generation: string;
  architecture: string;
  publisher: string;
  offer: string;
  sku: string;
  identity_key: string;
  description: string | null;
  eula: string | null;
  privacy_statement_uri: string | null;
  release_note_uri: string | null;
  end_of_life_date: string | null;
  recommended: string;
  disallowed: string;
  features: string;
  purchase_plan: string | null;
}

export interface GalleryImageVersionTable extends ResourceColumns {
  image_id: string;
  major: number;
  minor: number;
  patch: number;
  exclude_from_latest: number;
  end_of_life_date: string | null;
  replica_count: number;
  target_regions: string;
  storage_profile: string;
  replication: string;
  published_date: string;
}

export interface OperationTable {
  id: string;
  kind: string;
  subscription_id: string;
  location: string;
  target_id: string;
  state: string;
  percent_complete: number;
  status_message: string | null;
  input: string;
  checkpoint: string;
  error: string | null;
  cancel_requested: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  lease_token: number;
  attempts: number;
  created_by: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface TokenTable {
  id: string;
  name: string;
  subject: string;
  role: string;
  secret_hash: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface VirtualMachineTable extends ResourceColumns {
  /** The image reference as the caller gave it (a version, or an image definition for its latest). */
  image_reference: string;
  version_id: string;
  /** The ARM id of the version the VM was made from. */
  exact_version: string;
  os_type: string;
  os_state: string;
  hyper_v_generation: string;
  size: string;
  vcpus: number;
  memory_mib: number;
  computer_name: string;
  admin_username: string | null;
  admin_password_hash: string | null;
  ssh_public_keys: string;
  custom_data: string | null;
  state: string;
  /** Why the VM failed, or what its user should know while it runs; null when there is nothing to say. */
  status_code: string | null;
  status_message: string | null;
  host_port: number | null;
  guest_port: number;
  generalized: number;
  owner: string;
  base_file: string | null;
  /** Set for the template and student VMs of a lab. */
  lab_id: string | null;
  vm_type: string | null;
  /** Seconds this VM ran, for lab usage quotas (the current run is counted from running_since). */
  usage_seconds: number;
  running_since: string | null;
}

export interface LabPlanTable extends ResourceColumns {
  allowed_regions: string;
  default_connection_profile: string;
  default_auto_shutdown_profile: string;
  shared_gallery_id: string | null;
  support_info: string | null;
  linked_lms_instance: string | null;
}

export interface LabPlanImageTable {
  id: string;
  lab_plan_id: string;
  /** The gallery image definition's row id. */
  image_id: string;
  enabled_state: string;
  modified_at: string;
  modified_by: string;
}

export interface LabTable extends ResourceColumns {
  lab_plan_id: string | null;
  title: string;
  description: string | null;
  state: string;
  vm_profile: string;
  auto_shutdown_profile: string;
  connection_profile: string;
  security_profile: string;
  admin_password_hash: string | null;
  /** The gallery image definition (row id) the lab was made from. */
  source_image_id: string | null;
  /** The version (row id) the lab was made from. */
  version_id: string;
  /** The manifest the student VMs of the last publish are built on. */
  published_image: string | null;
  /** The image definition (row id) the template was last exported to. */
  exported_image_id: string | null;
  export_operation_id: string | null;
}

export interface LabUserTable {
  id: string;
  lab_id: string;
  name: string;
  name_key: string;
  email: string;
  display_name: string | null;
  registration_state: string;
  invitation_state: string;
  invitation_sent: string | null;
  additional_usage_quota_seconds: number;
  created_at: string;
  created_by: string;
}

export interface AccountTable {
  id: string;
  email: string;
  display_name: string | null;
  role: string;
  /** scrypt$N$r$p$salt$hash, or null until the person sets a password. */
  password_hash: string | null;
  /** SHA-256 of a one-time invitation secret. */
  invitation_hash: string | null;
  invitation_expires_at: string | null;
  created_at: string;
  created_by: string;
  last_sign_in_at: string | null;
}

export interface LabScheduleTable {
  id: string;
  lab_id: string;
  name: string;
  name_key: string;
  start_at: string | null;
  stop_at: string;
  /** JSON {frequency, interval, weekDays, expirationDate}, or null for a one-time schedule. */
  recurrence: string | null;
  time_zone: string;
  notes: string | null;
  /** The scheduler has acted on every start and stop up to this time. */
  checked_until: string;
  created_at: string;
  created_by: string;
}

export interface MetaTable {
  key: string;
  value: string;
}

/** One failed sign-in (or registration) attempt, by email (`e:<email>`) or address (`a:<address>`). */
export interface SignInFailureTable {
  id: string;
  key: string;
  at: string;
}

/** A console ticket: its SHA-256, the VM, when it expires, and the channels it may still open (`vnc,serial`). */
export interface ConsoleTicketTable {
  ticket_hash: string;
  vm_key: string;
  expires_at: string;
  kinds: string;
}

export interface Database {
  meta: MetaTable;
  subscriptions: SubscriptionTable;
  resource_groups: ResourceGroupTable;
  galleries: GalleryTable;
  gallery_images: GalleryImageTable;
  gallery_image_versions: GalleryImageVersionTable;
  operations: OperationTable;
  tokens: TokenTable;
  virtual_machines: VirtualMachineTable;
  lab_plans: LabPlanTable;
  lab_plan_images: LabPlanImageTable;
  labs: LabTable;
  lab_users: LabUserTable;
  accounts: AccountTable;
  lab_schedules: LabScheduleTable;
  sign_in_failures: SignInFailureTable;
  console_tickets: ConsoleTicketTable;
}

/** The database or a transaction on it: what queries run against. */
export type Db = Kysely<Database> | Transaction<Database>;
