// `labforge serve`: runs the server in the foreground until SIGINT/SIGTERM.
import type { Command } from 'commander';
import type { Acceleration } from '../compute/compute-driver.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { startServer } from '../server.js';

/** One line for the banner: the accelerator VMs get on this host, and why. */
function accelerationLine(a: Acceleration): string {
  if (a.accelerator === 'kvm') return `with KVM (${a.reason})`;
  return `under software emulation, several times slower. ${a.reason}${a.kvm === 'broken' ? ' After fixing KVM: labforge doctor --recheck.' : ''}`;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Run the labforge server (API and operation workers) in the foreground')
    .option('-c, --config <file>', 'configuration file (YAML or JSON); default: <data dir>/labforge.yaml when present')
    .option('--listen <address:port>', 'address and port to listen on (overrides LABFORGE_LISTEN)')
    .option('--data-dir <dir>', 'where labforge keeps its database, certificates and images (overrides LABFORGE_DATA_DIR)')
    .option('--log', 'log every request to standard output')
    .addHelpText(
      'after',
      '\nEnvironment: LABFORGE_DATA_DIR, LABFORGE_LISTEN, LABFORGE_DATABASE_URL (postgres://… selects PostgreSQL),\nLABFORGE_ADMIN_TOKEN (the first admin token of a new store), LABFORGE_TLS=0 (plain HTTP behind a proxy).',
    )
    .action(async (opts: { config?: string; listen?: string; dataDir?: string; log?: boolean }) => {
      const env = { ...process.env };
      if (opts.listen) env.LABFORGE_LISTEN = opts.listen;
      if (opts.dataDir) env.LABFORGE_DATA_DIR = opts.dataDir;
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig({ file: opts.config, env });
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`labforge: ${err.message}`);
          process.exit(78);
        }
        throw err;
      }
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(config, { logger: opts.log });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (err instanceof ConfigError) {
          console.error(`labforge: ${e.message}`);
          process.exit(78);
        }
        if (e.code === 'EADDRINUSE') {
          console.error(
            `labforge: ${config.listen.host}:${config.listen.port} is already in use. Stop the other program, or choose another port with --listen 127.0.0.1:PORT.`,
          );
          process.exit(69);
        }
        console.error(`labforge: the server could not start: ${e.message}`);
        process.exit(70);
      }
      const db =
        config.database.kind === 'sqlite' ? `SQLite file ${config.database.file}` : `PostgreSQL ${config.database.url.replace(/\/\/[^@]*@/, '//***@')}`;
      const lines = [
        '',
        `labforge is running at ${server.url}`,
        `  portal:     open ${server.url}/ in a browser (sign in with email and password, or with an API token)`,
        `  settings:   ${config.source}`,
        `  data:       ${config.dataDir}`,
        `  metadata:   ${db}`,
        `  regions:    ${config.regions.map((r) => `${r.name} (${r.geography})`).join(', ')}`,
        `  VMs:        ${server.vmsFound.running} running, ${server.vmsFound.stopped} stopped (VMs keep running while the server is stopped)`,
      ];
      for (const c of server.vmsFound.changed) lines.push(`              state corrected: ${c}`);
      lines.push(`  VMs run:    ${accelerationLine(server.acceleration)}`);
      for (const b of server.builtinImages) {
        const where = `builtin/${b.name}`;
        if (b.outcome === 'registered') lines.push(`  image:      ${where} ${b.version} is being imported from ${b.file}`);
        else if (b.outcome === 'current') lines.push(`  image:      ${where} ${b.version} (up to date)`);
        else lines.push(`  image:      ${where} not available: ${b.file} is missing (build it with: bash scripts/build-test-guest.sh)`);
      }
      if (server.caFile) {
        lines.push(
          `  TLS:        certificate signed by labforge's own CA: ${server.caFile}`,
          `              trust it for Node.js tools with: export NODE_EXTRA_CA_CERTS=${server.caFile}`,
          `              or system-wide (Debian): cp ${server.caFile} /usr/local/share/ca-certificates/labforge.crt && update-ca-certificates`,
        );
      }
      if (server.firstAdminToken) {
        lines.push(
          '',
          'This is a new installation. The admin token is shown ONCE; store it somewhere safe:',
          '',
          `  ${server.firstAdminToken}`,
          '',
          'Log the command-line tool in with it:',
          `  labforge login --server ${server.url} --token ${server.firstAdminToken}${server.caFile ? ` --ca-file ${server.caFile}` : ''}`,
        );
      } else {
        lines.push('', 'Use an admin token you created earlier (`labforge token create` makes more).');
      }
      lines.push('', 'Press Ctrl+C to stop.', '');
      console.log(lines.join('\n'));
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        console.log(`\nlabforge: ${signal} received, stopping (running operations are handed back and resume at next start)…`);
        await server.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}
