// The wire shapes and api-versions the portal speaks: the only file of the
// portal that reaches into the server's code, so moving to the shared contract
// is a change of this one file.
//
// TO BE REPLACED BY src/contract TYPES: once src/contract/ declares the wire
// shapes, import them from there (and its api-version constants) and drop the
// portal's own declarations below.
import type {
  API_VERSION,
  ConsoleUrls,
  Gallery,
  GalleryImage,
  Host,
  Lab,
  LabPlan,
  LabPlanImage,
  LabUser,
  LabVm,
  Operation,
  PersonAccount,
  ResourceGroup,
  Role,
  SessionInfo,
  Subscription,
  Token,
  VmPowerState,
  WhoAmI,
} from '../../../src/client/api-client.js';

/**
 * The api-version each API family is called with. The command-line client's constant cannot be
 * imported here (its module needs Node), so the values are written once for the portal and checked
 * against the client's at compile time.
 */
export const API_VERSIONS = {
  labforge: '2026-11-01',
  labServices: '2022-08-01',
  compute: '2025-03-03',
  subscriptions: '2022-12-01',
  resources: '2021-04-01',
} as const satisfies Pick<typeof API_VERSION, 'labforge' | 'labServices' | 'compute' | 'subscriptions' | 'resources'>;

// ---- shapes the command-line client declares (src/client/api-client.ts) ----

export type { ConsoleUrls, Gallery, Host, Lab, LabPlan, LabVm, Operation, ResourceGroup, Role, SessionInfo, Subscription, VmPowerState };
/** The signed-in person. */
export type Me = WhoAmI;
/** An image a lab plan (lab account) offers or hides, and why. */
export type PlanImage = LabPlanImage;
/** An image definition in a gallery. */
export type ImageDef = GalleryImage;
/** A student of a lab. */
export type LabUserRow = LabUser;
/** A person's account. */
export type PersonRow = PersonAccount;
/** An API token (never its secret). */
export type TokenRow = Token;

// ---- shapes only the portal declares so far ----

/** An image version as the gallery page reads it, with the labs and VMs still using it (the client's ImageVersion lacks usedBy). */
export interface Version {
  id: string;
  name: string;
  properties: {
    provisioningState: string;
    publishingProfile: { excludeFromLatest?: boolean; targetRegions?: { name: string }[] };
    storageProfile: { osDiskImage?: { sizeInGB?: number }; dataDiskImages?: unknown[] };
    replicationStatus?: { aggregatedState: string; summary: { region: string; state: string; progress: number; details?: string }[] };
    usedBy?: string[];
  };
}

/** One row of the image stores' usage report (admins): stored and unique bytes of a version in a region, and its cost. */
export interface UsageRow {
  region: string;
  gallery: string | null;
  image: string | null;
  version: string | null;
  storedBytes: number;
  uniqueBytes: number;
  monthlyCost: number;
}

export interface Usage {
  versions: UsageRow[];
  pricePerGiBMonth: number;
}

/** A new account with its one-time invitation (shown once). */
export type CreatedPerson = PersonRow & { invitation?: { token: string; expiresAt: string } };

/** What saving a lab VM to the gallery will make. */
export interface SavedImage {
  imageId: string;
  version: string;
}

/** An ARM list. */
export interface List<T> {
  value: T[];
}
