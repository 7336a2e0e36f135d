// Saving a lab's template to the gallery (Lab Services' saveImage): into the
// plan's attached gallery, as a new Specialized image definition or a new
// version of the image the lab came from or was last exported to. The plan
// then offers the image to creators at once.
import { conflict, forbidden, invalidParameter } from '../errors.js';
import { galleryArmId, labVmArmId, parseGalleryId, parseLabVmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import type { Operation } from '../operations/operation.store.js';
import type { GalleryService } from './gallery.service.js';
import { type ImageVersionService, parseVersionName } from './image-version.service.js';
import type { LabService } from './lab.service.js';
import type { LabPlanService } from './lab-plan.service.js';
import type { LabVmService } from './lab-vm.service.js';
import { isStaff } from './policy.js';

export class LabExportService {
  constructor(
    private readonly labs: LabService,
    private readonly labVms: LabVmService,
    private readonly plans: LabPlanService,
    private readonly galleries: GalleryService,
    private readonly versions: ImageVersionService,
  ) {}

  /** Saves a lab VM (the template) into the plan's attached gallery; returns the version operation. */
  async saveImage(
    p: Principal,
    sub: string,
    rg: string,
    planName: string,
    body: { name?: string; labVirtualMachineId?: string; updateExisting?: boolean },
  ): Promise<{ operation: Operation; imageId: string; version: string }> {
    const plan = await this.plans.get(sub, rg, planName);
    const id = parseLabVmId(body.labVirtualMachineId ?? '');
    if (!id)
      throw invalidParameter(
        'labVirtualMachineId must be the id of a lab VM (…/providers/Microsoft.LabServices/labs/<lab>/virtualMachines/template).',
        'labVirtualMachineId',
      );
    const lab = await this.labs.requireLab(p, id.subscriptionId, id.resourceGroup, id.labName);
    if (lab.labPlanKey !== plan.key) throw invalidParameter(`Lab '${lab.name}' belongs to another lab plan than '${plan.name}'.`, 'labVirtualMachineId');
    if (!isStaff(p)) throw forbidden('Only lab staff can export a lab VM to the gallery.');
    this.labs.checkOwner(p, lab);
    const vm = await this.labVms.get(p, id.subscriptionId, id.resourceGroup, id.labName, id.name);
    if (!plan.sharedGalleryId) {
      throw conflict(
        `Lab plan '${plan.name}' has no attached gallery to save images into. An admin attaches one (sharedGalleryId).`,
        undefined,
        'NoAttachedGallery',
      );
    }
    const g = parseGalleryId(plan.sharedGalleryId) as NonNullable<ReturnType<typeof parseGalleryId>>;
    let imageName: string;
    if (body.updateExisting) {
      const targetKey = lab.exportedImageKey ?? lab.sourceImageKey;
      const target = targetKey ? await this.galleries.imageByKey(targetKey) : undefined;
      const gallery = target ? await this.galleries.galleryByKey(target.galleryKey) : undefined;
      if (!target || !gallery || galleryArmId(gallery).toLowerCase() !== plan.sharedGalleryId.toLowerCase()) {
        throw conflict(
          `Lab '${lab.name}' has no image in the attached gallery to update (it was made from ${target ? `'${target.name}', outside that gallery` : 'an image that no longer exists'}). Save it as a new image instead.`,
          'updateExisting',
          'OperationNotAllowed',
        );
      }
      if (target.osState !== 'Specialized') {
        throw conflict(
          `Image '${target.name}' is Generalized; a lab template is saved as a Specialized image. Save it as a new image instead.`,
          'updateExisting',
          'OperationNotAllowed',
        );
      }
      imageName = target.name;
    } else {
      if (!body.name) throw invalidParameter('name is required: the name of the new image definition.', 'name');
      imageName = body.name;
      const exists = await this.galleries.getImage(g.subscriptionId, g.resourceGroup, g.name, imageName).catch(() => undefined);
      if (exists) {
        throw conflict(
          `The gallery already has an image named '${imageName}'. Choose another name, or update the existing image (updateExisting).`,
          'name',
          'Conflict',
        );
      }
      await this.galleries.createOrUpdateImage(
        p,
        g.subscriptionId,
        g.resourceGroup,
        g.name,
        imageName,
        {
          osType: vm.osType,
          osState: 'Specialized',
          hyperVGeneration: vm.hyperVGeneration,
          identifier: { publisher: 'labforge-lab', offer: lab.name, sku: imageName },
          description: `Saved from the template of lab '${lab.title}'.`,
        },
        'put',
      );
    }
    const existingVersions = await this.versions.list(g.subscriptionId, g.resourceGroup, g.name, imageName, undefined, 10_000);
    const next = existingVersions.map((v) => parseVersionName(v.name)).sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2])[0];
    const versionName = next ? `${next[0]}.${next[1]}.${next[2] + 1}` : '1.0.0';
    const { operation } = await this.versions.createOrUpdate(
      p,
      g.subscriptionId,
      g.resourceGroup,
      g.name,
      imageName,
      versionName,
      {
        storageProfile: {
          source: {
            virtualMachineId: labVmArmId({ subscriptionId: lab.subscriptionId, resourceGroup: lab.resourceGroup, labName: lab.name, name: vm.vmName }),
          },
        },
      },
      'put',
    );
    const image = await this.galleries.getImage(g.subscriptionId, g.resourceGroup, g.name, imageName);
    // The educator saved it to reuse it: the plan offers it to creators at once.
    await this.plans.enable(this.plans.db, plan.key, image.key, 'Enabled', p);
    await this.labs.recordExport(lab.key, image.key, operation?.id ?? null);
    return {
      operation: operation as Operation,
      imageId: `${galleryArmId(g)}/images/${imageName}`,
      version: versionName,
    };
  }
}
