// VMs outlive the server: `labforge vm` creates one from the built-in test
// guest, the server process is killed with SIGKILL, the VM keeps running,
// and the restarted server finds it and still controls it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/services/token.service.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { type ServerProcess, serveProcess } from '../helpers/serve-process.js';

/** A process that exists and is not a zombie (QEMU daemonizes; nobody may reap it here). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('VMs across a server crash', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'labforge-vmrestart-'));
  const configDir = mkdtempSync(join(tmpdir(), 'labforge-vmrestart-cli-'));
  const token = TokenService.generate().token;
  let server: ServerProcess | undefined;
  const env = {
    LABFORGE_DATA_DIR: dataDir,
    LABFORGE_LISTEN: '127.0.0.1:0',
    LABFORGE_TLS: '0',
    LABFORGE_ADMIN_TOKEN: token,
    LABFORGE_BUILTIN_IMAGES: 'on',
    LABFORGE_ACCEL: 'tcg',
  };

  const cli = (args: string[]) =>
    runCli(args, {
      env: { LABFORGE_CONFIG_DIR: configDir, LABFORGE_SERVER: server?.url, LABFORGE_TOKEN: token, LABFORGE_VM_PASSWORD: 'Classroom-2026' },
      timeoutMs: 150_000,
    });

  beforeAll(async () => {
    ensureBuilt();
    server = await serveProcess(env);
    expect(server.output()).toMatch(/image: +builtin\/labforge-test-guest 1\.0\.0 is being imported/);
  }, 60_000);
  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      await cli(['vm', 'delete', 'survivor', '-g', 'class']).catch(() => undefined);
      server.child.kill('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  it('keeps a VM running through SIGKILL of the server, and the new server still stops it', async () => {
    const rg = await fetch(`${server?.url}/subscriptions/${await firstSub()}/resourcegroups/class?api-version=2021-04-01`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ location: 'site-a' }),
    });
    expect(rg.status).toBe(201);
    // The built-in image is imported in the background at first start.
    for (let i = 0; ; i++) {
      const r = await cli(['version', 'show', '1.0.0', '--gallery', 'builtin', '--image', 'labforge-test-guest', '-g', 'labforge-builtin', '-o', 'json']);
      if (r.code === 0 && JSON.parse(r.stdout).properties.provisioningState === 'Succeeded') break;
      if (i > 120) throw new Error(`built-in image not ready: ${r.stdout}${r.stderr}`);
      await sleep(500);
    }
    const seedConfig = join(configDir, 'probe.yaml');
    writeFileSync(seedConfig, '#cloud-config\nruncmd:\n  - echo "LABFORGE-TEST user=$(grep -c \'^lab:\' /etc/passwd)" > /dev/ttyS0\n');
    const created = await cli([
      'vm',
      'create',
      'survivor',
      '-g',
      'class',
      '--image',
      'builtin/labforge-test-guest',
      '--admin-user',
      'lab',
      '--custom-data',
      seedConfig,
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/VM survivor is running/);
    expect(created.stdout).toMatch(/Connect: +ssh -p \d+ lab@127\.0\.0\.1/);
    const shown = JSON.parse((await cli(['vm', 'show', 'survivor', '-g', 'class', '-o', 'json'])).stdout);
    const vmId = shown.properties.vmId as string;
    const serial = join(dataDir, 'compute', 'vms', vmId, 'serial.log');
    const pid = Number(readFileSync(join(dataDir, 'compute', 'vms', vmId, 'qemu.pid'), 'utf8'));
    // The console follows the serial log; the guest's marker arrives there.
    for (let i = 0; i < 300 && !/LABFORGE-GUEST hostname/.test(readFileSync(serial, 'latin1')); i++) await sleep(250);
    expect(readFileSync(serial, 'latin1')).toMatch(/LABFORGE-TEST user=1/);
    expect(readFileSync(serial, 'latin1')).toMatch(/LABFORGE-GUEST hostname=survivor instance-id=\S+ boot=1/);

    server?.child.kill('SIGKILL');
    await new Promise((r) => server?.child.once('exit', r));
    // The VM's QEMU process did not die with the server.
    expect(alive(pid)).toBe(true);

    server = await serveProcess(env);
    expect(server.output()).toMatch(/VMs: +1 running, 0 stopped/);
    expect(server.output()).toMatch(/builtin\/labforge-test-guest 1\.0\.0 \(up to date\)/);
    const list = await cli(['vm', 'list', '-g', 'class']);
    expect(list.stdout).toMatch(/survivor +class +Running/);
    const stopped = await cli(['vm', 'stop', 'survivor', '-g', 'class']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/VM survivor is stopped/);
    expect(alive(pid)).toBe(false);
    expect(readFileSync(serial, 'latin1')).toContain('LABFORGE-GUEST-POWER mode=acpi-power-button');
  }, 400_000);

  async function firstSub(): Promise<string> {
    const r = await fetch(`${server?.url}/subscriptions?api-version=2022-12-01`, { headers: { authorization: `Bearer ${token}` } });
    return ((await r.json()) as { value: { subscriptionId: string }[] }).value[0]?.subscriptionId as string;
  }
});
