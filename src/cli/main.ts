// The labforge command: one program for the server and for its users.
import { Command, CommanderError } from 'commander';
import { registerClientCommands } from './client.js';
import { EXIT, EXIT_CODES_HELP, reportError } from './errors.js';

function rootProgram(): Command {
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
  return program;
}

/**
 * The program for `argv`. The server code takes about a second to load: a client command gets a program
 * of the client commands only, so scripts calling it stay quick. Anything else (serve, doctor, help, no
 * command or an unknown one) gets every command, the server's first.
 */
export async function buildProgram(argv: string[]): Promise<Command> {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const clientOnly = rootProgram();
  const clientNames = registerClientCommands(clientOnly);
  if (first && clientNames.includes(first)) return clientOnly;
  const program = rootProgram();
  const { registerServe } = await import('./serve.js');
  registerServe(program);
  const { registerDoctor } = await import('./doctor.js');
  registerDoctor(program);
  registerClientCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `labforge … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = await buildProgram(argv);
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
