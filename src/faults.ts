// Fault injection for crash tests (LABFORGE_FAULT_INJECTION): slows the
// server down at chosen points so a test can kill it in the middle of work.
// Format: comma-separated `name=value`, e.g. `step-delay-ms=1500,chunk-delay-ms=20`.
export interface Faults {
  /** Pause after every operation step. */
  stepDelayMs?: number;
  /** Pause after every chunk stored by an import or sent by a replication. */
  chunkDelayMs?: number;
}

export function parseFaults(text: string | undefined): Faults {
  const out: Faults = {};
  for (const part of (text ?? '').split(',')) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if (!Number.isFinite(n)) continue;
    if (k?.trim() === 'step-delay-ms') out.stepDelayMs = n;
    if (k?.trim() === 'chunk-delay-ms') out.chunkDelayMs = n;
  }
  return out;
}

export const faults: Faults = parseFaults(process.env.LABFORGE_FAULT_INJECTION);

export async function chunkFault(): Promise<void> {
  if (faults.chunkDelayMs) await new Promise((r) => setTimeout(r, faults.chunkDelayMs));
}
