// The labforge command: one program for the server and for its users.
import { Command, CommanderError } from 'commander';
import { CLIENT_COMMANDS, registerClientCommands } from './client.js';
import { EXIT, EXIT_CODES_HELP, reportError } from './errors.js';

export async function main(argv: string[]): Promise<void> {
  // `labforge … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = new Command();
  program
    .name('labforge')
    .description('labforge: classroom labs of virtual machines with a shared image gallery')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    // Throw instead of exiting so usage errors end with exit code 2; subcommands inherit this.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'labforge: ')) })
    .addHelpText('after', `\nStart with: labforge login --server https://HOST:PORT --token-stdin\n${EXIT_CODES_HELP}`);
  // Program options go before the command name (`labforge --version`), so `version create --version 1.0.0` reaches the subcommand.
  program.enablePositionalOptions();
  // The server code takes about a second to load; client commands skip it so scripts calling them stay quick.
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (!first || !CLIENT_COMMANDS.includes(first)) {
    const { registerServe } = await import('./serve.js');
    registerServe(program);
    const { registerDoctor } = await import('./doctor.js');
    registerDoctor(program);
  }
  registerClientCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help or the usage error; only the exit code is left to set.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    process.exitCode = reportError(err);
  }
}
