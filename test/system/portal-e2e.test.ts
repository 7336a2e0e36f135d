// The flows of the source documents in a real browser, against a server that
// runs real QEMU VMs of the test guest: the admin attaches a gallery and
// enables an image; a creator makes a lab with the wizard, opens the
// template's console (the guest's marker line shows), exports it as a new
// image and sees the progress and the success message; another creator makes
// a lab from that image without being asked for credentials; the first
// updates the existing image; a student signs in and starts their own VM.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli.js';
import { saveShot } from '../helpers/screenshots.js';
import { COMPUTE, LABFORGE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const LS = 'api-version=2022-08-01';
const shot = (page: Page, name: string) => saveShot(page, 'portal-e2e', name);

describe.skipIf(!existsSync(CHROMIUM))('the portal on real VMs', () => {
  let t: TestServer;
  let profile: string;
  const contexts: BrowserContext[] = [];

  async function signIn(email: string, password: string): Promise<Page> {
    const ctx = await chromium.launchPersistentContext(mkdtempSync(join(profile, 'p-')), {
      executablePath: CHROMIUM,
      headless: true,
      locale: 'en-US',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    contexts.push(ctx);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(t.server.url);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    return page;
  }

  beforeAll(async () => {
    ensureBuilt();
    await run('bash', [join(REPO, 'scripts', 'build-test-guest.sh')], { timeout: 170_000 });
    t = await startTestServer('sqlite', { env: { LABFORGE_BUILTIN_IMAGES: 'on', LABFORGE_ACCEL: 'tcg' } });
    profile = mkdtempSync(join(tmpdir(), 'labforge-portal-e2e-'));
    const builtin = `/subscriptions/${t.sub}/resourceGroups/labforge-builtin/providers/Microsoft.Compute/galleries/builtin/images/labforge-test-guest/versions/1.0.0`;
    for (let i = 0; (await t.call('GET', `${builtin}?${COMPUTE}`)).body?.properties?.provisioningState !== 'Succeeded'; i++) {
      if (i > 600) throw new Error('the built-in image was not imported');
      await sleep(100);
    }
    const rg = `/subscriptions/${t.sub}/resourceGroups/school`;
    await t.call('PUT', `${rg}?${RESOURCES}`, { location: 'site-a' });
    const gallery = `${rg}/providers/Microsoft.Compute/galleries/dept`;
    await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
    await t.call('PUT', `${gallery}/images/linux-course?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: 'linux', sku: 'course' } },
    });
    const v = await t.call('PUT', `${gallery}/images/linux-course/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { source: { id: builtin } } },
    });
    expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string, 60_000)).status).toBe('Succeeded');
    expect((await t.call('PUT', `${rg}/providers/Microsoft.LabServices/labPlans/science?${LS}`, { location: 'site-a' })).status).toBe(201);
    for (const [email, role, password] of [
      ['rivera@school.edu', 'creator', 'Teacher-Pass-42'],
      ['okafor@school.edu', 'creator', 'Teacher-Pass-43'],
      ['kim@school.edu', 'user', 'Student-Pass-42'],
      ['it@school.edu', 'admin', 'Admin-Pass-4242'],
    ]) {
      expect((await t.call('PUT', `/providers/Labforge.Core/accounts/${email}?${LABFORGE}`, { properties: { role, password } })).status).toBe(201);
    }
  }, 240_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    if (t) {
      for (const lab of (await t.call('GET', `/subscriptions/${t.sub}/providers/Microsoft.LabServices/labs?${LS}`)).body?.value ?? [])
        await t.call('DELETE', `${lab.id}?${LS}`);
      await t.close();
    }
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('runs the admin, educator and student flows in the browser', async () => {
    // Admin: attach the gallery and enable the image.
    const admin = await signIn('it@school.edu', 'Admin-Pass-4242');
    await admin.getByRole('link', { name: 'Lab accounts' }).click();
    const card = admin.getByRole('article', { name: /^science/ });
    await card.getByLabel('Attached gallery').selectOption({ label: 'dept' });
    await card.getByRole('button', { name: 'Attach' }).click();
    await expect.poll(() => card.locator('strong').textContent()).toBe('dept');
    // The switch follows the server's answer: click it, then wait for the state to settle.
    const offered = admin.getByLabel('Offered to creators: linux-course');
    await offered.click();
    await expect.poll(() => offered.isChecked()).toBe(true);
    await expect.poll(() => admin.getByTestId('reasons-linux-course').textContent()).toBe('—');
    await shot(admin, '1-admin-image-enabled');

    // Creator: a lab from the wizard, with credentials for the Generalized image.
    const rivera = await signIn('rivera@school.edu', 'Teacher-Pass-42');
    await rivera.getByRole('link', { name: 'Create a lab' }).click();
    await rivera.getByLabel(/^linux-course 1\.0\.0/).check();
    await rivera.getByRole('button', { name: 'Next' }).click();
    await rivera.getByLabel('Lab name').fill('physics');
    await rivera.getByLabel('Title').fill('Physics');
    await rivera.getByLabel('Admin user name').fill('teacher');
    await rivera.getByLabel('Admin password').fill('Classroom-2026');
    await rivera.getByRole('button', { name: 'Next' }).click();
    await rivera.getByLabel('Student VMs', { exact: true }).fill('1');
    await rivera.getByRole('button', { name: 'Create lab' }).click();
    await rivera.getByRole('heading', { name: 'Physics' }).waitFor({ timeout: 120_000 });
    await expect.poll(() => rivera.getByTestId('template-state').textContent(), { timeout: 30_000 }).toBe('Running');
    // The template's serial console shows the guest's marker line.
    await rivera.getByRole('button', { name: 'Console' }).click();
    await rivera
      .getByTestId('serial')
      .getByText(/LABFORGE-GUEST hostname=physics-template/)
      .waitFor({ timeout: 150_000 });
    await shot(rivera, '2-template-console');
    await rivera.getByRole('button', { name: 'Close' }).click();
    // The screen: noVNC connects through the API's VNC WebSocket and draws the VM's display.
    await rivera.getByRole('button', { name: 'Screen' }).click();
    const screen = rivera.getByRole('dialog', { name: 'Screen of Template VM' });
    await screen.getByTestId('screen').locator('canvas').waitFor({ timeout: 30_000 });
    await expect.poll(() => screen.getByRole('status').count(), { timeout: 30_000 }).toBe(0);
    await screen.getByRole('button', { name: 'Close' }).click();

    // Export to the gallery: progress, then the success message.
    await rivera.getByRole('button', { name: 'Export to gallery' }).click();
    const dialog = rivera.getByRole('dialog', { name: 'Export the template to the gallery' });
    await dialog.getByLabel('Image name').fill('physics-101');
    await dialog.getByRole('button', { name: 'Export' }).click();
    await dialog.getByText('Saved as image physics-101, version 1.0.0.').waitFor({ timeout: 120_000 });
    await shot(rivera, '3-exported');
    await rivera.keyboard.press('Escape');

    // Another creator: a lab from the exported (Specialized) image, no credentials asked.
    const okafor = await signIn('okafor@school.edu', 'Teacher-Pass-43');
    await okafor.getByRole('link', { name: 'Create a lab' }).click();
    await okafor.getByLabel(/^physics-101 1\.0\.0/).check();
    await okafor.getByRole('button', { name: 'Next' }).click();
    expect(await okafor.getByTestId('credentials-help').textContent()).toMatch(/Specialized/);
    expect(await okafor.getByLabel('Admin password').count()).toBe(0);
    await shot(okafor, '4-no-credentials-for-specialized');
    await okafor.getByLabel('Lab name').fill('physics-b');
    await okafor.getByRole('button', { name: 'Next' }).click();
    await okafor.getByLabel('Student VMs', { exact: true }).fill('0');
    await okafor.getByRole('button', { name: 'Create lab' }).click();
    await okafor.getByRole('heading', { name: 'physics-b' }).waitFor({ timeout: 120_000 });

    // The first creator updates the existing image: the version number goes up.
    await rivera.getByRole('button', { name: 'Export to gallery' }).click();
    await dialog.getByLabel('Update the existing image').check();
    await dialog.getByRole('button', { name: 'Export' }).click();
    await dialog.getByText('Saved as image physics-101, version 1.0.1.').waitFor({ timeout: 120_000 });
    await shot(rivera, '5-updated-existing');
    await rivera.keyboard.press('Escape');

    // Publish with a student, who signs in and starts their own VM.
    await rivera.getByLabel('Student email').fill('kim@school.edu');
    await rivera.getByRole('button', { name: 'Add student' }).click();
    await rivera.getByText(/^kim@school\.edu — /).waitFor();
    await rivera.getByRole('button', { name: 'Publish' }).click();
    await rivera.getByText('Published: 1 student VM', { exact: true }).waitFor({ timeout: 120_000 });
    const kim = await signIn('kim@school.edu', 'Student-Pass-42');
    const vm = kim.getByRole('listitem', { name: 'Physics 0' });
    await vm.waitFor();
    expect(await kim.getByRole('listitem').count()).toBe(1);
    await vm.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => vm.getByTestId('vm-state').textContent(), { timeout: 60_000 }).toBe('Running');
    await expect.poll(() => vm.locator('code').textContent()).toMatch(/^ssh -p \d+ teacher@127\.0\.0\.1$/);
    // Their console shows their VM's own identity.
    await vm.getByRole('button', { name: 'Console' }).click();
    await kim
      .getByTestId('serial')
      .getByText(/LABFORGE-GUEST hostname=physics-0 /)
      .waitFor({ timeout: 150_000 });
    await shot(kim, '6-student-console');
  }, 600_000);
});
