// The one way tests wait: poll a condition until it gives a value, within a
// bound, and fail saying what was awaited (and what was seen last).
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `fn` every `everyMs` until it returns something other than undefined; fails after `ms` naming `what`. */
export async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(everyMs);
  }
}

/** Waits for a line matching `re` in a serial log (a guest's console); fails with the log's end. */
export async function untilSerial(file: string, re: RegExp, ms = 150_000): Promise<RegExpExecArray> {
  try {
    return await until(`${re} on the serial console`, ms, () => (existsSync(file) ? (re.exec(readFileSync(file, 'latin1')) ?? undefined) : undefined));
  } catch (err) {
    throw new Error(`${(err as Error).message}:\n${existsSync(file) ? readFileSync(file, 'latin1').slice(-1500) : '(no log)'}`);
  }
}
