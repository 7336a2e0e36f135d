// A published lab for tests of what sits on top of Lab Services (sign-in,
// schedules, the portal): resource group `school`, gallery `dept` with a
// Specialized 1 GiB image `course`, a lab plan offering it, and lab `physics`
// made from it (no template) with two student VMs.
import { COMPUTE, LABSERVICES, RESOURCES, type TestServer, waitForOperation } from './server.js';

export const LS = LABSERVICES;

export async function publishedLab(t: TestServer, opts: { plan: string; title?: string }): Promise<{ rg: string; gallery: string; plan: string; lab: string }> {
  const op = async (r: { headers: Record<string, unknown> }) => {
    const done = await waitForOperation(t, r.headers['azure-asyncoperation'] as string);
    if (done.status !== 'Succeeded') throw new Error(`setup operation failed: ${JSON.stringify(done)}`);
  };
  const rg = `/subscriptions/${t.sub}/resourceGroups/school`;
  await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' });
  const gallery = `${rg}/providers/Microsoft.Compute/galleries/dept`;
  await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
  await t.call('PUT', `${gallery}/images/course?${COMPUTE}`, {
    location: 'site-a',
    properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'school', offer: 'course', sku: '1' } },
  });
  await op(
    await t.call('PUT', `${gallery}/images/course/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=1' } } } },
    }),
  );
  const planRes = await t.call('PUT', `${rg}/providers/Microsoft.LabServices/labPlans/${opts.plan}?${LS}`, {
    location: 'site-a',
    properties: { sharedGalleryId: gallery },
  });
  const plan = planRes.body.id as string;
  await t.call('PATCH', `${plan}/images/course?${LS}`, { properties: { enabledState: 'Enabled' } });
  const lab = `${rg}/providers/Microsoft.LabServices/labs/physics`;
  await op(
    await t.call('PUT', `${lab}?${LS}`, {
      location: 'site-a',
      properties: {
        labPlanId: plan,
        ...(opts.title ? { title: opts.title } : {}),
        virtualMachineProfile: { createOption: 'Image', imageReference: { id: `${plan}/images/course` }, sku: { name: 'Standard_B1s', capacity: 2 } },
      },
    }),
  );
  await op(await t.call('POST', `${lab}/publish?${LS}`));
  return { rg, gallery, plan, lab };
}
