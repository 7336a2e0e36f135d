// `labforge account …` and `labforge lab …` as an admin and a creator run
// them: the built program against a TLS server whose compute driver runs
// nothing (disks, captures and snapshots are real).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../helpers/fake-compute.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer, waitForOperation } from '../helpers/server.js';

describe('labforge account and lab', () => {
  let t: TestServer;
  let dir: string;
  let admin: (args: string[]) => ReturnType<typeof runCli>;
  let creator: (args: string[]) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { tls: true, env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
    dir = mkdtempSync(join(tmpdir(), 'labforge-cli-lab-'));
    const as = (token: string) => (args: string[]) =>
      runCli(args, {
        env: { LABFORGE_CONFIG_DIR: dir, LABFORGE_SERVER: t.server.url, LABFORGE_TOKEN: token, LABFORGE_CA_FILE: t.server.caFile as string },
        timeoutMs: 60_000,
      });
    admin = as(t.adminToken);
    creator = as(await t.tokenFor('creator', 'rivera'));
    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/school?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    const gallery = `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.Compute/galleries/dept`;
    await t.call('PUT', `${gallery}?${COMPUTE}`, { location: 'site-a' });
    for (const [name, size] of [
      ['course', 1],
      ['huge', 300],
    ] as const) {
      await t.call('PUT', `${gallery}/images/${name}?${COMPUTE}`, {
        location: 'site-a',
        properties: { osType: 'Linux', osState: 'Generalized', identifier: { publisher: 'school', offer: name, sku: '1' } },
      });
      const v = await t.call('PUT', `${gallery}/images/${name}/versions/1.0.0?${COMPUTE}`, {
        location: 'site-a',
        properties: { storageProfile: { osDiskImage: { source: { uri: `labforge:empty-disk?sizeGB=${size}` } } } },
      });
      expect((await waitForOperation(t, v.headers['azure-asyncoperation'] as string)).status).toBe('Succeeded');
    }
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets up a lab account, then a creator makes, exports, publishes and staffs a lab', async () => {
    const created = await admin(['account', 'create', 'science', '-g', 'school', '--gallery', 'dept']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/Attached gallery: +\/subscriptions\/.*\/galleries\/dept/);
    expect((await creator(['account', 'create', 'mine', '-g', 'school'])).code).toBe(4);
    const all = await admin(['account', 'image', 'list', 'science', '-g', 'school', '--all']);
    expect(all.stdout).toMatch(/course +no +Linux +Generalized +1\.0\.0 +1 +site-a +Disabled/);
    expect(all.stdout).toMatch(/huge +no .*TooLarge, Disabled/);
    expect((await admin(['account', 'image', 'enable', 'science', 'course', '-g', 'school'])).stdout).toMatch(/Image course is enabled/);
    expect((await creator(['account', 'image', 'list', 'science', '-g', 'school'])).stdout).toMatch(/course +yes/);

    const pw = join(dir, 'pw.txt');
    writeFileSync(pw, 'Classroom-2026\n');
    const lab = await creator([
      'lab',
      'create',
      'physics',
      '-g',
      'school',
      '--account',
      'science',
      '--image',
      'course',
      '--admin-user',
      'teacher',
      '--password-file',
      pw,
      '--seats',
      '2',
    ]);
    expect(lab.code, lab.stderr).toBe(0);
    expect(lab.stdout).toMatch(/Lab physics is ready; its template VM is running/);
    expect(lab.stdout).toMatch(/Admin user: +teacher/);
    const huge = await creator([
      'lab',
      'create',
      'big',
      '-g',
      'school',
      '--account',
      'science',
      '--image',
      'huge',
      '--admin-user',
      'teacher',
      '--password-file',
      pw,
    ]);
    expect(huge.code).toBe(7);
    expect(huge.stderr).toMatch(/disabled in lab plan 'science'/);

    const exp = await creator(['lab', 'template', 'export', 'physics', '-g', 'school', '--name', 'physics-101']);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stdout).toMatch(/Saved the template of lab physics as image physics-101, version 1\.0\.0/);
    const pub = await creator(['lab', 'publish', 'physics', '-g', 'school']);
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.stdout).toMatch(/State: +Published/);
    const vms = await creator(['lab', 'vm', 'list', 'physics', '-g', 'school']);
    expect(vms.stdout).toMatch(/template +Template +Running/);
    expect(vms.stdout).toMatch(/1 +User +Stopped/);
    const add = await creator(['lab', 'user', 'add', 'physics', 'kim@school.edu', '-g', 'school', '--invite']);
    expect(add.stdout).toMatch(/Added kim@school\.edu to lab physics as kim\. Registration code to send them: \S+/);
    expect((await creator(['lab', 'vm', 'list', 'physics', '-g', 'school'])).stdout).toMatch(/0 +User +Stopped +kim@school\.edu/);
    const again = await creator(['lab', 'publish', 'physics', '-g', 'school', '--seats', '3']);
    expect(again.stderr).toMatch(/what students changed on them is lost/);
    expect(again.stdout).toMatch(/Seats: +3/);
    const del = await creator(['lab', 'delete', 'physics', '-g', 'school']);
    expect(del.stdout).toMatch(/Deleted lab physics and its VMs/);
  }, 120_000);
});
