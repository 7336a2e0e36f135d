// `labforge version create|update|delete` as a user runs them: the built
// program as a child process against a real TLS server, uploading disks with
// tus (resuming after an interrupted run), importing and replicating them.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt, ROOT } from '../helpers/cli.js';
import { readAllDisk } from '../helpers/images.js';
import { COMPUTE, RESOURCES, startTestServer, type TestServer } from '../helpers/server.js';

const MiB = 1 << 20;

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A TCP relay in front of the server (TLS passes through untouched) that counts
 * the bytes clients send and can slow them down, so a test can interrupt an
 * upload halfway and see how much a rerun sends.
 */
async function startRelay(target: { host: string; port: number }) {
  const state = { bytesUp: 0, bytesPerSecond: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      state.bytesUp += chunk.length;
      upstream.write(chunk);
      if (state.bytesPerSecond > 0) {
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / state.bytesPerSecond) * 1000);
      }
    });
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    state,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('labforge version create, update and delete', () => {
  let t: TestServer;
  let home: string;
  let configDir: string;
  let work: string;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  const raw = Buffer.concat([randomBytes(3 * MiB), Buffer.alloc(4 * MiB), randomBytes(1 * MiB)]);
  const bigRaw = Buffer.concat([randomBytes(6 * MiB), Buffer.alloc(32 * MiB), randomBytes(2 * MiB)]);
  const scope = ['--gallery', 'g', '--image', 'lab', '-g', 'rg'];

  /** Starts the CLI with its own config folder; the in-process server keeps answering meanwhile. */
  function start(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): { child: ChildProcess; done: Promise<CliResult> } {
    const env: Record<string, string | undefined> = { ...process.env, LABFORGE_CONFIG_DIR: configDir, ...opts.env };
    // The user's own settings must not leak into the test.
    for (const k of ['LABFORGE_SERVER', 'LABFORGE_TOKEN', 'LABFORGE_CA_FILE', 'LABFORGE_SUBSCRIPTION', 'NODE_EXTRA_CA_CERTS']) {
      if (!opts.env?.[k]) delete env[k];
    }
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const done = new Promise<CliResult>((resolveResult, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (c) => {
        stdout += c;
      });
      child.stderr?.on('data', (c) => {
        stderr += c;
      });
      const ms = opts.timeoutMs ?? 20_000;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`labforge ${args.join(' ')} did not finish within ${ms / 1000} s\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, ms);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolveResult({ code, signal, stdout, stderr });
      });
    });
    return { child, done };
  }
  const cli = (args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}) => start(args, opts).done;

  const contentIn = async (region: string, versionName: string) => {
    const v = await t.server.services.versions.get(t.sub, 'rg', 'g', 'lab', versionName);
    const store = t.server.services.imageStores.get(region)!;
    const m = await store.getManifest(v.key);
    return readAllDisk(store, m!.disks[0]!);
  };
  const uploadIds = () => readdirSync(t.server.services.uploads.directory).filter((f) => /^[a-f0-9]{32}$/.test(f));
  const storedUploads = (): Record<string, { url: string }> => {
    const file = join(configDir, 'uploads.json');
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  };

  beforeAll(async () => {
    ensureBuilt();
    t = await startTestServer('sqlite', { tls: true });
    home = mkdtempSync(join(tmpdir(), 'labforge-cli-version-'));
    configDir = join(home, 'config');
    work = join(home, 'files');
    execFileSync('mkdir', ['-p', work]);
    const vhd = (name: string, content: Buffer) => {
      writeFileSync(join(work, `${name}.raw`), content);
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size', join(work, `${name}.raw`), join(work, `${name}.vhd`)]);
    };
    vhd('disk', raw);
    vhd('big', bigRaw);
    const server = new URL(t.server.url);
    relay = await startRelay({ host: server.hostname, port: Number(server.port) });

    expect((await t.call('PUT', `/subscriptions/${t.sub}/resourcegroups/rg?${RESOURCES}`, { location: 'site-a' })).status).toBe(201);
    const base = `/subscriptions/${t.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g`;
    expect((await t.call('PUT', `${base}?${COMPUTE}`, { location: 'site-a' })).status).toBe(201);
    const img = { location: 'site-a', properties: { osType: 'Linux', osState: 'Specialized', identifier: { publisher: 'p', offer: 'o', sku: 's' } } };
    expect((await t.call('PUT', `${base}/images/lab?${COMPUTE}`, img)).status).toBe(201);
    const login = await cli(['login', '--server', t.server.url, '--token', t.adminToken, '--ca-file', t.server.caFile as string]);
    expect(login.code, login.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await relay?.close();
    await t?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('uploads a VHD, creates a version replicated to two regions, and both hold the original content', async () => {
    const r = await cli(['version', 'create', ...scope, '--version', '1.0.0', '--file', join(work, 'disk.vhd'), '--target-region', 'site-b=1']);
    expect(r.code, r.stderr).toBe(0);
    // Not a terminal: progress comes as plain lines on stderr, for the upload and then for the operation.
    expect(r.stderr).toMatch(/Uploading disk\.vhd: .* \(100%\)/);
    expect(r.stderr).toMatch(/Operation .*: 100% Succeeded/);
    expect(r.stdout).toMatch(/Created image version 1\.0\.0/);
    expect(r.stdout).toMatch(/site-b\s+Completed\s+100%/);

    const shown = await cli(['version', 'show', '1.0.0', ...scope, '-o', 'json']);
    expect(shown.code, shown.stderr).toBe(0);
    const v = JSON.parse(shown.stdout);
    expect(v.properties.provisioningState).toBe('Succeeded');
    expect(v.properties.publishingProfile.targetRegions).toEqual([
      expect.objectContaining({ name: 'site-a' }),
      expect.objectContaining({ name: 'site-b', regionalReplicaCount: 1 }),
    ]);
    expect(v.properties.replicationStatus.summary).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ region: 'site-a', state: 'Completed' }),
        expect.objectContaining({ region: 'site-b', state: 'Completed' }),
      ]),
    );
    for (const region of ['site-a', 'site-b']) expect(Buffer.compare(await contentIn(region, '1.0.0'), raw)).toBe(0);
    // The server consumed the upload and the CLI forgot it.
    expect(uploadIds()).toEqual([]);
    expect(storedUploads()).toEqual({});

    // Download it back as a fixed VHD (from the second region) and as qcow2: same content as the original.
    const vhdOut = join(work, 'back.vhd');
    const dl = await cli(['version', 'download', '1.0.0', ...scope, '--format', 'vhd', '--region', 'site-b', '--file', vhdOut]);
    expect(dl.code, dl.stderr).toBe(0);
    expect(dl.stdout).toMatch(/Saved os disk/);
    execFileSync('qemu-img', ['compare', '-f', 'vpc', '-F', 'raw', vhdOut, join(work, 'disk.raw')]);
    const qOut = join(work, 'back.qcow2');
    expect((await cli(['version', 'download', 'latest', ...scope, '--format', 'qcow2', '--file', qOut])).code).toBe(0);
    execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qOut, join(work, 'disk.raw')]);
    const missingDisk = await cli(['version', 'download', '1.0.0', ...scope, '--disk', 'data-3', '--file', join(work, 'x.vhd')]);
    expect(missingDisk.code).toBe(5);
    expect(existsSync(join(work, 'x.vhd')) || existsSync(join(work, 'x.vhd.partial'))).toBe(false);

    const again = await cli(['version', 'create', ...scope, '--version', '1.0.0', '--file', join(work, 'disk.vhd')]);
    expect(again.code).toBe(6);
    expect(again.stderr).toMatch(/already exists/);
  }, 30_000);

  it('exits 8 with the inspector’s refusal for a qcow2 with a backing file', async () => {
    const canary = join(work, 'canary.txt');
    writeFileSync(canary, 'CANARY'.repeat(1000));
    execFileSync('qemu-img', ['create', '-f', 'qcow2', '-F', 'raw', '-b', canary, join(work, 'evil.qcow2')]);
    const r = await cli(['version', 'create', ...scope, '--version', '2.0.0', '--file', join(work, 'evil.qcow2')]);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^labforge: Operation .* failed: .*\(DiskHasBackingFile\)/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('resumes an interrupted upload from the offset the server holds', async () => {
    const size = statSync(join(work, 'big.vhd')).size;
    const viaRelay = { LABFORGE_SERVER: `https://${new URL(t.server.url).hostname}:${relay.port}` };
    const args = ['version', 'create', ...scope, '--version', '3.0.0', '--file', join(work, 'big.vhd')];

    // First run, slowed to 8 MiB/s: interrupt it once the server holds part of the file.
    relay.state.bytesPerSecond = 8 * MiB;
    const first = start(args, { env: viaRelay });
    let partial: { id: string; offset: number } | undefined;
    const deadline = Date.now() + 15_000;
    while (!partial && Date.now() < deadline) {
      for (const id of uploadIds()) {
        const u = await t.server.services.uploads.get(id);
        if (u && u.offset >= 3 * MiB) partial = { id, offset: u.offset };
      }
      if (!partial) await new Promise((r) => setTimeout(r, 20));
    }
    expect(partial, 'the upload never got going').toBeDefined();
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted; run the same command again/);
    relay.state.bytesPerSecond = 0;

    // Let the bytes still in flight land, then note where the server stands.
    let offset = -1;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const now = (await t.server.services.uploads.get(partial!.id))!.offset;
      if (now === offset) break;
      offset = now;
    }
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(size);
    expect(uploadIds()).toEqual([partial!.id]);
    const remembered = Object.entries(storedUploads());
    expect(remembered).toHaveLength(1);
    expect(remembered[0]![0]).toContain(resolve(work, 'big.vhd'));
    expect(remembered[0]![1].url).toMatch(new RegExp(`/uploads/${partial!.id}$`));

    // The rerun continues the same upload: it sends only what was missing.
    relay.state.bytesUp = 0;
    const rerun = await cli(args, { env: viaRelay, timeoutMs: 40_000 });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/Resuming the upload of big\.vhd at \d+\.\d of \d+\.\d MiB/);
    expect(relay.state.bytesUp).toBeLessThan(size - offset + 1 * MiB);
    expect(storedUploads()).toEqual({});
    expect(uploadIds()).toEqual([]);
    expect(Buffer.compare(await contentIn('site-a', '3.0.0'), bigRaw)).toBe(0);
  }, 60_000);

  it('updates a version’s publishing profile and deletes it', async () => {
    const upd = await cli(['version', 'update', '1.0.0', ...scope, '--exclude-from-latest', 'true', '-o', 'json']);
    expect(upd.code, upd.stderr).toBe(0);
    expect(JSON.parse(upd.stdout).properties.publishingProfile.excludeFromLatest).toBe(true);
    const nothing = await cli(['version', 'update', '1.0.0', ...scope]);
    expect(nothing.code).toBe(2);

    const del = await cli(['version', 'delete', '1.0.0', ...scope]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/Deleted image version 1\.0\.0/);
    const gone = await cli(['version', 'show', '1.0.0', ...scope]);
    expect(gone.code).toBe(5);
  }, 30_000);
});
