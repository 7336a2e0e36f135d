// The web portal in a real browser (Debian's Chromium driven by
// playwright-core) against a running server: a student signs in with email
// and password, sees only their own VM, starts it; the language follows the
// browser and can be switched. The compute driver runs nothing here.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli.js';
import { fakeDriver } from '../helpers/fake-compute.js';
import { publishedLab } from '../helpers/labs.js';
import { saveShot } from '../helpers/screenshots.js';
import { COMPUTE, LABFORGE, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
/** Key steps are saved as test artifacts; with LABFORGE_SCREENSHOTS=1 they also refresh the screenshots the README shows. */
const shot = (page: Page, name: string) => saveShot(page, 'portal', name, process.env.LABFORGE_SCREENSHOTS === '1');
const LS = 'api-version=2022-08-01';

describe.skipIf(!existsSync(CHROMIUM))('web portal in Chromium', () => {
  let t: TestServer;
  let profile: string;
  const contexts: BrowserContext[] = [];
  const browser = async (locale: string) => {
    const dir = mkdtempSync(join(profile, 'p-'));
    const ctx = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      locale,
      viewport: { width: 1280, height: 800 },
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
    const errors: string[] = [];
    page.on('console', (m) => {
      // Chromium itself logs every refused request (4xx) as an error; the page's own errors are what counts.
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    return { page, errors };
  };

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    profile = mkdtempSync(join(tmpdir(), 'labforge-portal-'));
    const { rg, gallery, plan } = await publishedLab(t, { plan: 'p', title: 'Physics 101' });
    await t.call('PUT', `${rg}/providers/Microsoft.LabServices/labs/physics/users/kim?${LS}`, { properties: { email: 'kim@school.edu' } });
    const acc = await t.call('PUT', `/providers/Labforge.Core/accounts/kim@school.edu?${LABFORGE}`, {
      properties: { role: 'user', password: 'Student-Pass-42' },
    });
    expect(acc.status).toBe(201);
    // A Generalized image as well, for the lab wizard.
    await t.call('PUT', `${gallery}/images/linux?${COMPUTE}`, {
      location: 'site-a',
      properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 's', offer: 'l', sku: '1' } },
    });
    const lv = await t.call('PUT', `${gallery}/images/linux/versions/1.0.0?${COMPUTE}`, {
      location: 'site-a',
      properties: { storageProfile: { osDiskImage: { source: { uri: 'labforge:empty-disk?sizeGB=2' } } } },
    });
    await waitForOperation(t, lv.headers['azure-asyncoperation'] as string);
    await t.call('PATCH', `${plan}/images/linux?${LS}`, { properties: { enabledState: 'Enabled' } });
    // A creator's own lab with a template VM.
    await t.call('PUT', `/providers/Labforge.Core/accounts/rivera@school.edu?${LABFORGE}`, { properties: { role: 'creator', password: 'Teacher-Pass-42' } });
    const rivera = await t.tokenFor('creator', 'rivera@school.edu');
    const chem = await t.call(
      'PUT',
      `${rg}/providers/Microsoft.LabServices/labs/chem?${LS}`,
      {
        location: 'site-a',
        properties: {
          labPlanId: plan,
          title: 'Chemistry',
          virtualMachineProfile: { createOption: 'TemplateVM', imageReference: { id: `${plan}/images/course` }, sku: { name: 'Standard_B1s', capacity: 1 } },
        },
      },
      { token: rivera },
    );
    expect(chem.status, JSON.stringify(chem.body)).toBe(201);
    await waitForOperation(t, chem.headers['azure-asyncoperation'] as string);
  }, 120_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await t?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('lets a student sign in, see only their VM and start it; keeps the session out of the URL', async () => {
    const { page, errors } = await browser('en-US');
    await page.goto(t.server.url);
    await shot(page, 'sign-in');
    await page.getByLabel('Email').fill('kim@school.edu');
    await page.getByLabel('Password').fill('Wrong-Pass-42');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('The email or the password is wrong.');
    await page.getByLabel('Password').fill('Student-Pass-42');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'My VMs' }).waitFor();
    expect(page.url()).toBe(`${t.server.url}/my-vms`);
    expect(page.url()).not.toContain('lfg_');
    const card = page.getByRole('listitem', { name: 'Physics 101 0' });
    await card.waitFor();
    expect(await page.getByRole('listitem').count()).toBe(1);
    expect(await card.getByTestId('vm-state').textContent()).toBe('Stopped');
    expect(await page.getByRole('link', { name: 'Labs' }).count()).toBe(0);
    await card.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => card.getByTestId('vm-state').textContent(), { timeout: 15_000 }).toBe('Running');
    await expect.poll(() => card.locator('code').textContent()).toMatch(/^ssh -p \d+ user@127\.0\.0\.1$/);
    await page.getByRole('status').getByText('Physics 101: Start finished').waitFor();
    expect(await card.getByTestId('vm-hours').textContent()).toMatch(/^Used 0\.\d of 10 hours$/);
    await card.getByRole('button', { name: 'Console' }).click();
    const consoleDialog = page.getByRole('dialog', { name: 'Console of Physics 101' });
    await consoleDialog.waitFor();
    await expect.poll(() => consoleDialog.getByRole('status').count()).toBe(0);
    await page.keyboard.press('Escape');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await shot(page, 'my-vms');
    // A page reload keeps the session (sessionStorage), a deep link works.
    await page.goto(`${t.server.url}/my-vms`);
    await page.getByRole('heading', { name: 'My VMs' }).waitFor();
    expect(errors).toEqual([]);
  }, 60_000);

  it('follows the browser language and can be switched', async () => {
    const { page, errors } = await browser('ko-KR');
    await page.goto(t.server.url);
    await page.getByRole('heading', { name: '로그인' }).waitFor();
    await page.getByLabel('이메일').fill('kim@school.edu');
    await page.getByLabel('암호').fill('Student-Pass-42');
    await page.getByRole('button', { name: '로그인' }).click();
    await page.getByRole('heading', { name: '내 VM' }).waitFor();
    await shot(page, 'my-vms-korean');
    await page.getByLabel('언어').selectOption('ru');
    await page.getByRole('heading', { name: 'Мои ВМ' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('ru');
    expect(errors).toEqual([]);
  }, 60_000);

  const signInAs = async (locale: string, email: string, password: string) => {
    const b = await browser(locale);
    await b.page.goto(t.server.url);
    await b.page.locator('input[type=email]').fill(email);
    await b.page.locator('input[type=password]').first().fill(password);
    await b.page.locator('form button[type=submit]').first().click();
    return b;
  };

  it('lets a creator export the template from the lab page and shows the progress and the new image', async () => {
    const { page, errors } = await signInAs('en-US', 'rivera@school.edu', 'Teacher-Pass-42');
    await page.getByRole('heading', { name: 'Labs' }).waitFor();
    await page.getByRole('link', { name: 'Chemistry' }).click();
    await page.getByRole('heading', { name: 'Chemistry' }).waitFor();
    await page.getByRole('button', { name: 'Export to gallery' }).click();
    const dialog = page.getByRole('dialog', { name: 'Export the template to the gallery' });
    await dialog.waitFor();
    expect(await dialog.getByLabel('Create a new image').isChecked()).toBe(true);
    // The keyboard stays in the dialog: Tab cycles through its controls.
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => Boolean(document.activeElement?.closest('[role=dialog]')))).toBe(true);
    }
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => Boolean(document.activeElement?.closest('[role=dialog]')))).toBe(true);
    await dialog.getByLabel('Image name').fill('chem-101');
    await dialog.getByRole('button', { name: 'Export' }).click();
    await dialog.getByText('Saved as image chem-101, version 1.0.0.').waitFor({ timeout: 30_000 });
    await shot(page, 'export-to-gallery');
    // The other choice: a new version of the image the lab was exported to.
    await dialog.getByLabel('Update the existing image').check();
    await dialog.getByRole('button', { name: 'Export' }).click();
    await dialog.getByText('Saved as image chem-101, version 1.0.1.').waitFor({ timeout: 30_000 });
    await page.keyboard.press('Escape');
    expect(await page.getByRole('dialog').count()).toBe(0);
    expect(errors).toEqual([]);
  }, 90_000);

  it('renders the export dialog in Korean for a Korean browser', async () => {
    const { page, errors } = await signInAs('ko-KR', 'rivera@school.edu', 'Teacher-Pass-42');
    await page.getByRole('heading', { name: '랩' }).waitFor();
    await page.getByRole('link', { name: 'Chemistry' }).click();
    await page.getByRole('button', { name: '갤러리로 내보내기' }).click();
    const dialog = page.getByRole('dialog', { name: '템플릿을 갤러리로 내보내기' });
    await dialog.waitFor();
    for (const text of ['새 이미지 만들기', '기존 이미지 업데이트', '이미지 이름', '내보내기', '취소'])
      expect(await dialog.getByText(text, { exact: true }).count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  }, 60_000);

  it('creates labs with the wizard: credentials for a Generalized image, none asked for a Specialized one', async () => {
    const { page, errors } = await signInAs('en-US', 'rivera@school.edu', 'Teacher-Pass-42');
    await page.getByRole('heading', { name: 'Labs' }).waitFor();
    await page.getByRole('link', { name: 'Create a lab' }).click();
    await page.getByRole('heading', { name: 'Create a lab' }).waitFor();
    await page.getByLabel(/^course 1\.0\.0/).check();
    await page.getByRole('button', { name: 'Next' }).click();
    expect(await page.getByTestId('credentials-help').textContent()).toMatch(/Specialized: its VMs keep the accounts/);
    expect(await page.getByLabel('Admin password').count()).toBe(0);
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByLabel(/^linux 1\.0\.0/).check();
    await page.getByRole('button', { name: 'Next' }).click();
    expect(await page.getByTestId('credentials-help').textContent()).toMatch(/Generalized/);
    await shot(page, 'create-lab');
    await page.getByLabel('Lab name').fill('bio');
    await page.getByLabel('Title').fill('Biology');
    await page.getByLabel('Admin user name').fill('teacher');
    await page.getByLabel('Admin password').fill('Classroom-2026');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('Student VMs', { exact: true }).fill('2');
    await page.getByLabel(/Class schedule/).check();
    await page.getByLabel('Thursday').uncheck();
    await page.getByLabel('Friday').check();
    await page.getByLabel('From').fill('10:00');
    await page.getByLabel('To', { exact: true }).fill('11:30');
    await page.getByRole('button', { name: 'Create lab' }).click();
    await page.getByRole('heading', { name: 'Biology' }).waitFor({ timeout: 30_000 });
    const schedules = (await t.call('GET', `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labs/bio/schedules?${LS}`)).body
      .value;
    expect(schedules).toHaveLength(1);
    expect(schedules[0].properties.recurrencePattern).toMatchObject({ frequency: 'Weekly', weekDays: ['Tuesday', 'Friday'], interval: 1 });
    expect(Date.parse(schedules[0].properties.stopAt) - Date.parse(schedules[0].properties.startAt)).toBe(90 * 60_000);
    expect(page.url()).toBe(`${t.server.url}/labs/school/bio`);
    await expect.poll(() => page.getByTestId('template-state').textContent()).toBe('Running');
    expect(errors).toEqual([]);
  }, 90_000);

  it('lets an admin sign in with an API token, see why images are offered or not, switch one off, and follow operations', async () => {
    const { page, errors } = await browser('en-US');
    await page.goto(t.server.url);
    await page.getByText('Or sign in with an API token').click();
    await page.getByLabel('API token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'Lab accounts' }).click();
    const card = page.getByRole('article', { name: /^p/ });
    await card.waitFor();
    expect(await card.locator('strong').textContent()).toBe('dept');
    expect(await page.getByTestId('reasons-linux').textContent()).toBe('—');
    const sw = page.getByLabel('Offered to creators: linux');
    expect(await sw.isChecked()).toBe(true);
    // The switch follows the server's answer: click it, then wait for the state to settle.
    await sw.click();
    await expect.poll(() => sw.isChecked()).toBe(false);
    await expect.poll(() => page.getByTestId('reasons-linux').textContent()).toBe('disabled');
    await shot(page, 'lab-accounts');
    await page.getByRole('link', { name: 'Operations' }).click();
    await page.getByRole('heading', { name: 'Operations' }).waitFor();
    await page.getByRole('cell', { name: 'labs.lab.publish' }).first().waitFor();
    expect(errors).toEqual([]);
  }, 60_000);

  it('renders the admin pages in Korean for a Korean browser', async () => {
    const { page, errors } = await browser('ko-KR');
    await page.goto(t.server.url);
    await page.getByText('또는 API 토큰으로 로그인').click();
    await page.getByLabel('API 토큰').fill(t.adminToken);
    await page.getByRole('button', { name: '토큰 사용' }).click();
    await page.getByRole('link', { name: '랩 계정' }).click();
    await page.getByRole('heading', { name: '랩 계정' }).waitFor();
    const card = page.getByRole('article', { name: /^p/ });
    for (const name of ['연결', '분리']) await card.getByRole('button', { name, exact: true }).waitFor();
    for (const name of ['이미지', '랩 작성자에게 제공', '숨겨진 이유']) await card.getByRole('columnheader', { name, exact: true }).waitFor();
    await page.getByRole('link', { name: '갤러리' }).click();
    await page.getByText('디스크 업로드').waitFor();
    await page.getByText('course — Linux, 특수화됨').click();
    const versions = page.locator('details', { hasText: 'course — Linux, 특수화됨' });
    for (const name of ['버전', '지역', '크기', '최신 버전으로 사용']) await versions.getByRole('columnheader', { name, exact: true }).waitFor();
    expect(await versions.getByRole('row', { name: /^1\.0\.0/ }).textContent()).toMatch(/site-a: 완료됨/);
    expect(errors).toEqual([]);
  }, 60_000);

  it("shows a lab's registration code, adds students and changes the number of student VMs", async () => {
    const { page, errors } = await signInAs('en-US', 'rivera@school.edu', 'Teacher-Pass-42');
    await page.getByRole('heading', { name: 'Labs' }).waitFor();
    await page.getByRole('link', { name: 'Chemistry' }).click();
    await page.getByRole('heading', { name: 'Students' }).waitFor();
    expect(await page.getByTestId('registration-code').textContent()).toMatch(/^Registration code: [\w-]{8}$/);
    await page.getByLabel('Student email').fill('ana@school.edu');
    await page.getByRole('button', { name: 'Add student' }).click();
    await page.getByText(/^ana@school\.edu — NotRegistered \/ NotSent/).waitFor();
    await page.getByRole('button', { name: 'Invite' }).click();
    await page.getByText(/^ana@school\.edu — NotRegistered \/ Sent/).waitFor();
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText('Published: 1 student VM', { exact: true }).waitFor({ timeout: 30_000 });
    await page.getByLabel('Student VMs').fill('3');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('Published: 3 student VMs').waitFor({ timeout: 30_000 });
    expect(errors).toEqual([]);
  }, 90_000);

  it('browses the gallery: versions with their regions and storage, the latest switch, and a refused delete that says why', async () => {
    const { page, errors } = await browser('en-US');
    await page.goto(t.server.url);
    await page.getByText('Or sign in with an API token').click();
    await page.getByLabel('API token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'Gallery' }).click();
    await page.getByText('course — Linux, Specialized').click();
    const row = page.locator('details', { hasText: 'course — Linux, Specialized' }).getByRole('row', { name: /^1\.0\.0/ });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/site-a: Completed/);
    expect(await row.textContent()).toMatch(/1 GB/);
    const said = new Promise<string>((res) =>
      page.once('dialog', (d) => {
        res(d.message());
        void d.accept();
      }),
    );
    await row.getByRole('button', { name: 'Delete' }).click();
    expect(await said).toMatch(/^Version 1\.0\.0 cannot be deleted while it is in use: .*lab physics, VM 0/);
    await page.getByText('linux — Linux, Generalized').click();
    const latest = page.locator('details', { hasText: 'linux — Linux, Generalized' }).getByLabel('Use for latest: 1.0.0');
    await latest.waitFor();
    expect(await latest.isChecked()).toBe(true);
    await latest.click();
    await expect.poll(() => latest.isChecked(), { timeout: 15_000 }).toBe(false);
    await page
      .getByRole('status')
      .getByText(/./)
      .first()
      .waitFor({ state: 'detached', timeout: 15_000 })
      .catch(() => undefined);
    await shot(page, 'gallery');
    expect(errors).toEqual([]);
  }, 60_000);

  it('uploads a disk from the browser into a new image definition, and shows the inspector refusing a hostile one', async () => {
    const raw = join(profile, 'disk.raw');
    writeFileSync(raw, randomBytes(3 * 2 ** 20));
    const hostile = join(profile, 'hostile.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/passwd', hostile, '4M']);
    const { page, errors } = await browser('en-US');
    await page.goto(t.server.url);
    await page.getByText('Or sign in with an API token').click();
    await page.getByLabel('API token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'Gallery' }).click();
    await page.getByText('Upload a disk').click();
    await page.getByLabel('Disk file (VHD, VHDX, qcow2, raw, VMDK)').setInputFiles(raw);
    await page.getByLabel('New image name').fill('uploaded');
    await page.getByRole('button', { name: 'Upload and create the version' }).click();
    await page.getByText('Version 1.0.0 of uploaded is ready.', { exact: true }).first().waitFor({ timeout: 60_000 });
    await page.getByLabel('Image definition').selectOption('uploaded');
    await page.getByLabel('Version number').fill('1.0.1');
    await page.getByLabel('Disk file (VHD, VHDX, qcow2, raw, VMDK)').setInputFiles(hostile);
    await page.getByRole('button', { name: 'Upload and create the version' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 60_000 });
    expect(await alert.textContent()).toMatch(/backing file/i);
    expect(errors).toEqual([]);
  }, 120_000);

  it('lets an admin create an account (the invitation is shown once) and revoke an API token', async () => {
    const doomed = await t.tokenFor('creator', 'old-script');
    const { page, errors } = await browser('en-US');
    await page.goto(t.server.url);
    await page.getByText('Or sign in with an API token').click();
    await page.getByLabel('API token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'People and tokens' }).click();
    await page.getByLabel('Email').fill('okafor@school.edu');
    await page.getByRole('button', { name: 'Create account' }).click();
    const inv = page.locator('.invitation');
    await inv.waitFor();
    expect(await inv.textContent()).toMatch(/^Invitation for okafor@school\.edu \(shown once, valid 14 days\): [\w-]{32}$/);
    await page.getByRole('cell', { name: 'okafor@school.edu' }).waitFor();
    const row = page.getByRole('row', { name: /old-script/ });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByRole('cell', { name: 'Revoked' }).waitFor();
    expect((await t.call('GET', '/providers/Labforge.Core/whoami', undefined, { token: doomed })).status).toBe(401);
    expect(errors).toEqual([]);
  }, 60_000);

  it('tells a student, in their language, why their VM failed, the educator on the lab page, and staff how the host runs VMs', async () => {
    const row = await t.server.services.store.db.selectFrom('virtual_machines').select('id').where('owner', '=', 'kim@school.edu').executeTakeFirstOrThrow();
    const vm = fakeDriver.vms.get(row.id);
    if (!vm) throw new Error('kim has no VM on the fake host');
    vm.state = 'Failed';
    vm.error = {
      code: 'GuestCrashed',
      message: 'The guest operating system crashed (a kernel panic or a Windows stop error). Restart the VM; if it crashes again, reimage it.',
    };
    const student = await signInAs('ko-KR', 'kim@school.edu', 'Student-Pass-42');
    const card = student.page.getByRole('listitem', { name: 'Physics 101 0' });
    await expect.poll(() => card.getByTestId('vm-state').textContent(), { timeout: 15_000 }).toBe('실패');
    const reason = card.getByTestId('vm-reason');
    expect(await reason.locator('strong').textContent()).toBe('VM의 운영 체제가 비정상 종료되었습니다');
    expect(await reason.textContent()).toContain('Restart the VM');
    // A failed VM can be started again (or reset) from its card.
    expect(await card.getByRole('button', { name: '시작' }).isEnabled()).toBe(true);
    expect(student.errors).toEqual([]);

    const admin = await browser('en-US');
    await admin.page.goto(t.server.url);
    await admin.page.getByText('Or sign in with an API token').click();
    await admin.page.getByLabel('API token').fill(t.adminToken);
    await admin.page.getByRole('button', { name: 'Use token' }).click();
    await admin.page.getByRole('link', { name: 'Labs' }).click();
    await admin.page.getByRole('link', { name: 'Physics 101' }).click();
    const listed = admin.page.getByRole('listitem').filter({ hasText: /Failed/ });
    await expect.poll(() => listed.getByTestId('vm-reason').locator('strong').textContent()).toBe('The operating system in the VM crashed');
    await admin.page.getByRole('link', { name: 'Hosts' }).click();
    const host = admin.page.getByRole('row', { name: /^local/ });
    await host.waitFor();
    expect(await host.getByTestId('host-accel').textContent()).toBe('Software emulation (slower)');
    expect(await host.textContent()).toMatch(/The fake driver runs nothing\..*1 failed/);
    await host.getByRole('button', { name: 'Check KVM again' }).click();
    expect(admin.errors).toEqual([]);
    vm.state = 'Stopped';
    vm.error = undefined;
  }, 60_000);
});
