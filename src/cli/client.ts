// Registers the commands that talk to a labforge server (login, gallery,
// image, version, operation, token) and documents their exit codes.
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

/** Top-level names registered here; main.ts uses them to skip loading the server for client commands. */
export const CLIENT_COMMANDS: readonly string[] = [
  'login',
  'logout',
  'whoami',
  'token',
  'gallery',
  'image',
  'version',
  'operation',
  'store',
  'vm',
  'account',
  'lab',
  'user',
  'factory',
  'host',
];

export function registerClientCommands(program: Command): void {
  const before = new Set(program.commands);
  registerLogin(program);
  registerToken(program);
  registerGallery(program);
  registerImage(program);
  registerVersion(program);
  registerOperation(program);
  registerStore(program);
  registerVm(program);
  registerAccount(program);
  registerLab(program);
  registerUser(program);
  registerFactory(program);
  registerHost(program);
  // Every client command (and its subcommands) lists the exit codes scripts can rely on.
  for (const cmd of program.commands) if (!before.has(cmd)) cmd.addHelpText('afterAll', EXIT_CODES_HELP);
}
