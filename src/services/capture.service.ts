// Reading a VM's disk into the gallery: which VM a capture may read (the
// caller sees it, it was created successfully), and the capture itself, which
// stores only the blocks the VM's overlay holds. Image versions captured from
// a VM and the snapshots labs publish from their template both come here; it
// depends on the VM records and files, never on the services above them.
import type { CaptureStats } from '../compute/capture.js';
import type { VmDisks } from '../compute/vm-disks.js';
import { conflict, invalidParameter, LabforgeError } from '../errors.js';
import type { ChunkStore, DiskManifest } from '../imagestore/chunk-store.js';
import { parseLabVmId, parseVmId } from '../lib/arm-id.js';
import type { Principal } from '../lib/principal.js';
import type { VmRecord, VmRepository } from '../repositories/vm.repository.js';
import { canSeeVm } from './policy.js';

/** What a capture needs to know about the VM it reads. */
export interface CaptureSource {
  vmKey: string;
  location: string;
  generalized: boolean;
  osType: string;
  hyperVGeneration: string;
}

/** The manifest of a VM's OS disk in the VM's region, and that region's store. */
export async function osDiskOf(stores: Map<string, ChunkStore>, v: VmRecord): Promise<{ store: ChunkStore; disk: DiskManifest }> {
  const store = stores.get(v.location);
  const manifest = await store?.getManifest(v.versionKey);
  const disk = manifest?.disks.find((d) => d.name === 'os');
  if (!store || !disk) {
    throw new LabforgeError(
      409,
      'SourceImageMissing',
      `The image version this VM was made from (${v.exactVersion}) no longer has a replica in region '${v.location}'.`,
    );
  }
  return { store, disk };
}

export class CaptureService {
  constructor(
    private readonly vms: VmRepository,
    private readonly disks: VmDisks,
    private readonly imageStores: Map<string, ChunkStore>,
  ) {}

  /** Checks a VM can be captured and returns what the capture needs. */
  async source(p: Principal, armId: string, field: string): Promise<CaptureSource> {
    const lab = parseLabVmId(armId);
    const compute = lab ? undefined : parseVmId(armId);
    const id = lab ?? compute;
    if (!id) {
      throw invalidParameter(
        `'${armId}' is not a virtual machine id (/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>, or a lab's .../providers/Microsoft.LabServices/labs/<lab>/virtualMachines/<name>).`,
        field,
      );
    }
    const name = lab ? `labs/${lab.labName}/${lab.name}` : (compute?.name as string);
    const v = await this.vms.byName(this.vms.db, id.subscriptionId, id.resourceGroup, name);
    if (!v || !canSeeVm(p, v)) throw invalidParameter(`The virtual machine '${armId}' does not exist.`, field);
    if (v.provisioningState !== 'Succeeded')
      throw conflict(`Virtual machine '${v.name}' is ${v.provisioningState}; only a VM that was created successfully can be captured.`, field);
    return { vmKey: v.key, location: v.location, generalized: v.generalized, osType: v.osType, hyperVGeneration: v.hyperVGeneration };
  }

  /**
   * Captures the VM's OS disk into `store`: only the blocks its overlay holds are read. A running VM is paused
   * (its disks flushed) for the capture and resumed after.
   */
  async disk(vmKey: string, store: ChunkStore, name: string): Promise<{ disk: DiskManifest; stats: CaptureStats }> {
    const v = await this.vms.byKey(vmKey);
    if (!v) throw new LabforgeError(404, 'ResourceNotFound', 'The virtual machine being captured was deleted.');
    const { store: home, disk } = await osDiskOf(this.imageStores, v);
    const path = await this.disks.base(home, disk);
    return this.disks.capture(vmKey, store, { disk, path }, name);
  }
}
