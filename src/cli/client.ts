// Registers the commands that talk to a labforge server (login, gallery,
// image, version, operation, token, …) and documents their exit codes.
import type { Command } from 'commander';
import { registerAccount } from './commands/account.js';
import { registerFactory } from './commands/factory.js';
import { registerGallery } from './commands/gallery.js';
import { registerHost } from './commands/host.js';
import { registerImage } from './commands/image.js';
import { registerLab } from './commands/lab.js';
import { registerLogin } from './commands/login.js';
import { registerOperation } from './commands/operation.js';
import { registerStore } from './commands/store.js';
import { registerToken } from './commands/token.js';
import { registerUser } from './commands/user.js';
import { registerVersion } from './commands/version.js';
import { registerVm } from './commands/vm.js';
import { EXIT_CODES_HELP } from './errors.js';

/** One entry per command file, in the order `labforge --help` lists them. */
const CLIENT_COMMAND_GROUPS: readonly ((program: Command) => void)[] = [
  registerLogin,
  registerToken,
  registerGallery,
  registerImage,
  registerVersion,
  registerOperation,
  registerStore,
  registerVm,
  registerAccount,
  registerLab,
  registerUser,
  registerFactory,
  registerHost,
];

/**
 * Registers every client command and returns the top-level names (and aliases) it added: main.ts
 * skips loading the server code for these, so the list is what was registered, never kept by hand.
 */
export function registerClientCommands(program: Command): string[] {
  const before = new Set(program.commands);
  for (const register of CLIENT_COMMAND_GROUPS) register(program);
  const added = program.commands.filter((cmd) => !before.has(cmd));
  // Every client command (and its subcommands) lists the exit codes scripts can rely on.
  for (const cmd of added) cmd.addHelpText('afterAll', EXIT_CODES_HELP);
  return added.flatMap((cmd) => [cmd.name(), ...cmd.aliases()]);
}
