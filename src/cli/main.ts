// The labforge command: one program for the server and for its users.
import { Command } from 'commander';
import { registerServe } from './serve.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('labforge')
    .description('labforge: classroom labs of virtual machines with a shared image gallery')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  registerServe(program);
  await program.parseAsync(argv);
}
