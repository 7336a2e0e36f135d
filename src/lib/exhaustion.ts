// Running out of something the host has too little of — disk space, open
// files, memory — is not a bug of the request: every layer names it the same
// way (InsufficientStorage, TooManyOpenFiles, OutOfMemory), says where, and
// says what to do. The API answers 507 for a full disk and 503 for the others.
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

export type ExhaustionCode = 'InsufficientStorage' | 'TooManyOpenFiles' | 'OutOfMemory';

/** Which resource an error from the file system, a child process or a database says ran out, if any. */
export function exhaustionOf(err: unknown): ExhaustionCode | undefined {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = String(e?.code ?? '');
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === '53100') return 'InsufficientStorage';
  if (code === 'EMFILE' || code === 'ENFILE') return 'TooManyOpenFiles';
  if (code === 'ENOMEM' || code === '53200') return 'OutOfMemory';
  const text = String(e?.message ?? '');
  if (/No space left on device|database or disk is full|Disk quota exceeded/i.test(text)) return 'InsufficientStorage';
  if (/Too many open files/i.test(text)) return 'TooManyOpenFiles';
  if (/Cannot allocate memory|out of memory/i.test(text)) return 'OutOfMemory';
  return undefined;
}

const human = (n: number) =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;

/** "12.0 MiB free of 16.0 MiB" for the file system holding `path` (its nearest existing parent), or '' if unknown. */
export async function spaceAt(path: string): Promise<string> {
  for (let p = path, i = 0; i < 64; i++, p = dirname(p)) {
    try {
      const s = await statfs(p);
      return `${human(s.bavail * s.bsize)} free of ${human(s.blocks * s.bsize)}`;
    } catch {
      if (p === dirname(p)) break;
    }
  }
  return '';
}

/**
 * The message for running out of `code` while `doing` something with `path`: what ran out, where, and what to do.
 * `doing` reads like "Region 'site-a' could not store a chunk".
 */
export async function exhaustionMessage(code: ExhaustionCode, doing: string, path: string, needBytes?: number): Promise<string> {
  if (code === 'InsufficientStorage') {
    const space = await spaceAt(path);
    return `${doing}: the disk holding ${path} is full${space ? ` (${space})` : ''}${needBytes ? `; about ${human(needBytes)} more is needed` : ''}. Free space there (for example, labforge store gc removes chunks no version uses) or move it to a larger disk, then retry.`;
  }
  if (code === 'TooManyOpenFiles') {
    return `${doing}: labforge has as many files open as the system allows (${path}). Raise the open-file limit of the labforge service (ulimit -n, or LimitNOFILE=65536 in its systemd unit), then retry.`;
  }
  return `${doing}: the host ran out of memory (${path}). Stop other work on the host or give it more memory, then retry.`;
}
