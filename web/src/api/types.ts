// The wire shapes and api-versions the portal speaks, all from the wire
// contract (src/contract), the only part of the server's code the portal
// uses. Type-only imports, and the api-versions from their own module, so
// the bundle takes no schema code. The portal's own names for some shapes are
// aliases of the contract's.
import type {
  Account,
  AccountWithInvitation,
  ConsoleUrls,
  Gallery,
  GalleryImage,
  Host,
  ImageVersion,
  Lab,
  LabPlan,
  LabPlanImage,
  LabUser,
  LabVm,
  Operation,
  Page,
  ResourceGroup,
  Role,
  SavedImage,
  Session,
  Subscription,
  Token,
  Usage,
  UsageRow,
  VmPowerState,
  WhoAmI,
} from '../../../src/contract/index.js';

/** The api-version the portal calls each API family with. */
export { API_VERSION as API_VERSIONS } from '../../../src/contract/api-versions.js';
/** The roles of the wire, in order from the most powerful. */
export { ROLES } from '../../../src/contract/roles.js';

export type { ConsoleUrls, Gallery, Host, Lab, LabPlan, LabVm, Operation, ResourceGroup, Role, SavedImage, Subscription, Usage, UsageRow, VmPowerState };
/** A session: its token, the person and their role. */
export type SessionInfo = Session;
/** The signed-in person. */
export type Me = WhoAmI;
/** An image a lab plan (lab account) offers or hides, and why. */
export type PlanImage = LabPlanImage;
/** An image definition in a gallery. */
export type ImageDef = GalleryImage;
/** An image version, with the labs and VMs still using it. */
export type Version = ImageVersion;
/** A student of a lab. */
export type LabUserRow = LabUser;
/** A person's account. */
export type PersonRow = Account;
/** A new account with its one-time invitation (shown once). */
export type CreatedPerson = AccountWithInvitation;
/** An API token (never its secret). */
export type TokenRow = Token;
/** An ARM list. */
export type List<T> = Page<T>;
