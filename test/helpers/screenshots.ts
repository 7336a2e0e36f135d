// Screenshots of the portal tests: always saved as test artifacts under
// test-results/screenshots/<suite>/, and into docs/screenshots/ (shown by the
// README) when asked to refresh those.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

const ROOT = join(import.meta.dirname, '..', '..');

export async function saveShot(page: Page, suite: string, name: string, alsoDocs = false): Promise<void> {
  const dir = join(ROOT, 'test-results', 'screenshots', suite);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
  if (alsoDocs) await page.screenshot({ path: join(ROOT, 'docs', 'screenshots', `${name}.png`) });
}
