// Table types for Kysely. JSON columns hold text (SQLite has no JSON type);
// timestamps are ISO-8601 strings in UTC so both dialects sort them alike.
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
  status_message: string | null;
  host_port: number | null;
  guest_port: number;
  generalized: number;
  owner: string;
  base_file: string | null;
}

export interface MetaTable {
  key: string;
  value: string;
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
}
