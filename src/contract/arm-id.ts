// Azure Resource Manager ids of the resources labforge serves: building them
// from names and reading names back. They live in src/lib/arm-id.ts (every
// layer uses them); the contract re-exports them for clients.
export {
  galleryArmId,
  imageArmId,
  labArmId,
  labPlanArmId,
  labVmArmId,
  parseGalleryId,
  parseImageId,
  parseLabPlanId,
  parseLabVmId,
  parseVmId,
  resourceGroupArmId,
  versionArmId,
  vmArmId,
} from '../lib/arm-id.js';
