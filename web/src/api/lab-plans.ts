// Lab plans (the portal's "lab accounts"): their gallery, the images they offer
// creators (and why others are hidden), and saving a lab VM to their gallery.
import { get, operationOf, send, start } from './transport.js';
import { API_VERSIONS, type LabPlan, type List, type PlanImage, type SavedImage } from './types.js';

const V = API_VERSIONS.labServices;

export const listLabPlans = async (sub: string) => (await get<List<LabPlan>>(`/subscriptions/${sub}/providers/Microsoft.LabServices/labPlans`, V)).value;

/** The images a lab plan offers; with `includeHidden`, the hidden ones too, each with why. */
export const planImages = async (planId: string, includeHidden = false) =>
  (await get<List<PlanImage>>(`${planId}/images${includeHidden ? '?includeHidden=true' : ''}`, V)).value;

export const setImageEnabled = async (imageId: string, enabled: boolean) =>
  send<PlanImage>('PATCH', imageId, V, { properties: { enabledState: enabled ? 'Enabled' : 'Disabled' } });

/** Attaches a gallery to a lab plan, or detaches it (null). */
export const setPlanGallery = async (planId: string, galleryId: string | null) =>
  send<LabPlan>('PATCH', planId, V, { properties: { sharedGalleryId: galleryId } });

/** Starts an export of a lab VM to the lab plan's gallery; returns the operation URL and what it will make. */
export async function saveImage(labPlanId: string, body: { name?: string; labVirtualMachineId: string; updateExisting?: boolean }) {
  const r = await start<SavedImage>('POST', `${labPlanId}/saveImage`, V, body);
  return { ...r.body, operationUrl: operationOf(r) };
}
