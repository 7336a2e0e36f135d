// Where the command-line tool keeps its login: server URL, token, CA file and
// subscription in <config dir>/config.json, readable by the owner only.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT } from './errors.js';

export interface StoredLogin {
  server: string;
  token: string;
  caFile?: string;
  subscription?: string;
}

/** LABFORGE_CONFIG_DIR, else $XDG_CONFIG_HOME/labforge, else ~/.config/labforge. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LABFORGE_CONFIG_DIR) return env.LABFORGE_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'labforge');
}

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

export function readStoredLogin(env: NodeJS.ProcessEnv = process.env): StoredLogin | undefined {
  const file = configFile(env);
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`The settings file ${file} cannot be read (${(err as Error).message}). Log in again with \`labforge login\`, or delete the file.`);
  }
  const p = parsed as Partial<StoredLogin>;
  if (typeof p.server !== 'string' || typeof p.token !== 'string') {
    throw new CliError(`The settings file ${file} has no server or token. Log in again with \`labforge login\`.`, EXIT.auth);
  }
  return {
    server: p.server,
    token: p.token,
    ...(typeof p.caFile === 'string' ? { caFile: p.caFile } : {}),
    ...(typeof p.subscription === 'string' ? { subscription: p.subscription } : {}),
  };
}

/** Writes the login atomically with mode 0600: it holds a secret. */
export function writeStoredLogin(login: StoredLogin, env: NodeJS.ProcessEnv = process.env): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = configFile(env);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  // The mode given to writeFileSync is masked by the umask; set it explicitly.
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/** Removes the stored login; returns the file name, or undefined when there was none. */
export function removeStoredLogin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = configFile(env);
  if (!existsSync(file)) return undefined;
  rmSync(file, { force: true });
  return file;
}

/** The login to use now: stored values overridden by LABFORGE_SERVER, LABFORGE_TOKEN and LABFORGE_CA_FILE. */
export function effectiveLogin(env: NodeJS.ProcessEnv = process.env): Partial<StoredLogin> & { file: string } {
  const stored = readStoredLogin(env);
  return {
    file: configFile(env),
    server: env.LABFORGE_SERVER || stored?.server,
    token: env.LABFORGE_TOKEN || stored?.token,
    caFile: env.LABFORGE_CA_FILE || stored?.caFile,
    subscription: env.LABFORGE_SUBSCRIPTION || stored?.subscription,
  };
}
