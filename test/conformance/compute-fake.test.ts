// The fake compute driver (what fast tests of the rules run on) keeps the
// driver contract: it passes the same conformance suite as the qemu driver.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FakeComputeDriver } from '../../src/compute/fake/fake.driver.js';
import { runComputeDriverConformance } from './compute.case.js';

const root = mkdtempSync(join(tmpdir(), 'labforge-fake-compute-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// One host's state, shared by every driver made for it (a server restart makes a new driver).
const host = new FakeComputeDriver().vms;
let n = 0;

runComputeDriverConformance('fake', {
  create: () => Object.assign(new FakeComputeDriver(host), { ignorePowerButton: true }),
  disk: async () => {
    const path = join(root, `disk-${n++}.qcow2`);
    writeFileSync(path, '');
    return { path, format: 'qcow2' };
  },
});
