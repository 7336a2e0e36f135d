// The command list of `labforge`: client commands skip loading the server code,
// and which commands are client commands comes from their registrations, so a
// new command cannot be forgotten (as `register` once was).
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';

const names = (p: { commands: readonly { name(): string; aliases(): string[] }[] }) => p.commands.flatMap((c) => [c.name(), ...c.aliases()]);
const SERVER = ['serve', 'doctor'];

describe('labforge command list', () => {
  it('gives every client command a program without the server commands', async () => {
    const full = names(await buildProgram(['node', 'labforge']));
    // --help lists the server's commands first.
    expect(full.slice(0, 2)).toEqual(SERVER);
    const client = full.filter((n) => !SERVER.includes(n));
    expect(client).toEqual(expect.arrayContaining(['login', 'logout', 'whoami', 'gallery', 'vm', 'lab', 'user', 'register', 'factory', 'host']));
    for (const name of client) {
      const program = await buildProgram(['node', 'labforge', name, '--help']);
      expect(names(program), `labforge ${name}`).toEqual(client);
    }
  });

  it('gives the server commands, help, no command and unknown commands every command', async () => {
    const full = names(await buildProgram(['node', 'labforge']));
    for (const args of [['serve', '--listen', '127.0.0.1:0'], ['doctor'], ['--help'], ['help', 'gallery'], ['frobnicate'], ['-V']]) {
      expect(names(await buildProgram(['node', 'labforge', ...args])), args.join(' ')).toEqual(full);
    }
  });
});
