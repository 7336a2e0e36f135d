// Fault injection for crash tests: slows the server down at chosen points so a
// test can kill it in the middle of work. The delays come from the
// configuration (LABFORGE_FAULT_INJECTION, parsed and checked in config/); the
// server sets them for its process when it starts, and there are none otherwise.
import type { FaultInjection } from './config/config.js';

let active: FaultInjection = {};

/** Sets the delays of this process (the server does, from its configuration, when it starts). */
export function setFaults(faults: FaultInjection): void {
  active = { ...faults };
}

/** The pause after every chunk stored by an import or sent by a replication (none unless configured). */
export async function chunkFault(): Promise<void> {
  if (active.chunkDelayMs) await new Promise((r) => setTimeout(r, active.chunkDelayMs));
}
