// Azure Resource Manager ids: building them from names and reading names back
// out of them, for every resource type labforge serves. Names keep the case
// they were created with; matching is case-insensitive, as in Azure.

interface Scoped {
  subscriptionId: string;
  resourceGroup: string;
}

const SUB = '/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers';
const pattern = (rest: string) => new RegExp(`^${SUB}/${rest}$`, 'i');

export const resourceGroupArmId = (g: { subscriptionId: string; name: string }) => `/subscriptions/${g.subscriptionId}/resourceGroups/${g.name}`;
export const galleryArmId = (g: Scoped & { name: string }) =>
  `${resourceGroupArmId({ subscriptionId: g.subscriptionId, name: g.resourceGroup })}/providers/Microsoft.Compute/galleries/${g.name}`;
export const imageArmId = (i: Scoped & { galleryName: string; name: string }) =>
  `${galleryArmId({ subscriptionId: i.subscriptionId, resourceGroup: i.resourceGroup, name: i.galleryName })}/images/${i.name}`;
export const versionArmId = (v: Scoped & { galleryName: string; imageName: string; name: string }) =>
  `${imageArmId({ subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, galleryName: v.galleryName, name: v.imageName })}/versions/${v.name}`;
export const vmArmId = (v: Scoped & { name: string }) =>
  `${resourceGroupArmId({ subscriptionId: v.subscriptionId, name: v.resourceGroup })}/providers/Microsoft.Compute/virtualMachines/${v.name}`;
export const labPlanArmId = (p: Scoped & { name: string }) =>
  `${resourceGroupArmId({ subscriptionId: p.subscriptionId, name: p.resourceGroup })}/providers/Microsoft.LabServices/labPlans/${p.name}`;
export const labArmId = (l: Scoped & { name: string }) =>
  `${resourceGroupArmId({ subscriptionId: l.subscriptionId, name: l.resourceGroup })}/providers/Microsoft.LabServices/labs/${l.name}`;
export const labVmArmId = (v: Scoped & { labName: string; name: string }) =>
  `${labArmId({ subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, name: v.labName })}/virtualMachines/${v.name}`;

const GALLERY = pattern('Microsoft\\.Compute/galleries/([^/]+)');
const IMAGE_OR_VERSION = pattern('Microsoft\\.Compute/galleries/([^/]+)/images/([^/]+)(?:/versions/([^/]+))?');
const VM = pattern('Microsoft\\.Compute/virtualMachines/([^/]+)');
const LAB_PLAN = pattern('Microsoft\\.LabServices/labPlans/([^/]+)');
const LAB_VM = pattern('Microsoft\\.LabServices/labs/([^/]+)/virtualMachines/([^/]+)');

export function parseGalleryId(id: string): (Scoped & { name: string }) | undefined {
  const m = GALLERY.exec(id);
  return m ? { subscriptionId: m[1] as string, resourceGroup: m[2] as string, name: m[3] as string } : undefined;
}

/** A gallery image definition id, or a version id (then `version` is set). */
export function parseImageId(id: string): (Scoped & { galleryName: string; imageName: string; version?: string }) | undefined {
  const m = IMAGE_OR_VERSION.exec(id);
  if (!m) return undefined;
  return {
    subscriptionId: m[1] as string,
    resourceGroup: m[2] as string,
    galleryName: m[3] as string,
    imageName: m[4] as string,
    ...(m[5] ? { version: m[5] } : {}),
  };
}

export function parseVmId(id: string): (Scoped & { name: string }) | undefined {
  const m = VM.exec(id);
  return m ? { subscriptionId: m[1] as string, resourceGroup: m[2] as string, name: m[3] as string } : undefined;
}

export function parseLabPlanId(id: string): (Scoped & { name: string }) | undefined {
  const m = LAB_PLAN.exec(id);
  return m ? { subscriptionId: m[1] as string, resourceGroup: m[2] as string, name: m[3] as string } : undefined;
}

export function parseLabVmId(id: string): (Scoped & { labName: string; name: string }) | undefined {
  const m = LAB_VM.exec(id);
  return m ? { subscriptionId: m[1] as string, resourceGroup: m[2] as string, labName: m[3] as string, name: m[4] as string } : undefined;
}
