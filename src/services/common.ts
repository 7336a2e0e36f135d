// Shared pieces of the service layer: principals, resource metadata,
// optimistic concurrency, names and regions. (Rows, stamps and row locks are
// the repositories' business: src/repositories/common.ts.)
import type { Config, RegionConfig } from '../config/config.js';
import { invalidParameter, preconditionFailed } from '../errors.js';
import { NAME_RULES, nameProblem, type ResourceKind } from '../lib/names.js';

export { type Principal, ROLES, type Role, SYSTEM } from '../lib/principal.js';
export type { ResourceMeta } from '../repositories/common.js';

export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** Checks If-Match / If-None-Match against the current ETag (undefined when the resource does not exist). */
export function checkPreconditions(what: string, current: string | undefined, pre: Preconditions | undefined): void {
  if (!pre) return;
  if (pre.ifMatch !== undefined) {
    const wanted = pre.ifMatch.split(',').map((s) => s.trim());
    if (current === undefined) {
      throw preconditionFailed(`${what} does not exist, but the request's If-Match header requires it to. Create it without If-Match, or check the name.`);
    }
    if (!wanted.includes('*') && !wanted.includes(current)) {
      throw preconditionFailed(
        `${what} was changed by someone else since you read it (its ETag is now ${current}, your If-Match was ${pre.ifMatch}). Read it again, re-apply your change and retry.`,
      );
    }
  }
  if (pre.ifNoneMatch !== undefined && current !== undefined) {
    const wanted = pre.ifNoneMatch.split(',').map((s) => s.trim());
    if (wanted.includes('*') || wanted.includes(current)) {
      throw preconditionFailed(
        `${what} already exists and the request's If-None-Match header forbids replacing it. Choose another name or drop If-None-Match.`,
      );
    }
  }
}

/** Refuses a name that `kind` of resource may not have, with the rule (src/lib/names.ts holds the rules). */
export function checkName(kind: ResourceKind, name: string): void {
  const problem = nameProblem(kind, name);
  if (problem) throw invalidParameter(problem, NAME_RULES[kind].target);
}

export function checkTags(tags: unknown): Record<string, string> {
  if (tags === undefined || tags === null) return {};
  if (typeof tags !== 'object' || Array.isArray(tags)) throw invalidParameter('tags must be an object of name/value strings.', 'tags');
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 50) throw invalidParameter(`A resource can have at most 50 tags; this request has ${entries.length}.`, 'tags');
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 512) throw invalidParameter(`Tag name '${k.slice(0, 40)}' must be 1-512 characters.`, 'tags');
    if (typeof v !== 'string' || v.length > 256) throw invalidParameter(`The value of tag '${k}' must be a string of at most 256 characters.`, `tags.${k}`);
  }
  return tags as Record<string, string>;
}

/** The configured regions and geographies; names match Azure-style (case and spaces ignored). */
export class RegionCatalog {
  constructor(readonly regions: RegionConfig[]) {}

  static fromConfig(config: Config): RegionCatalog {
    return new RegionCatalog(config.regions);
  }

  find(name: string): RegionConfig | undefined {
    const norm = name.toLowerCase().replace(/\s+/g, '');
    return this.regions.find((r) => r.name === norm || r.displayName.toLowerCase().replace(/\s+/g, '') === norm);
  }

  /** Returns the canonical region name or throws a 400 naming the regions that exist. */
  require(name: string | undefined, target = 'location'): RegionConfig {
    if (!name) throw invalidParameter(`The request has no ${target}. Use one of the configured regions: ${this.list()}.`, target);
    const r = this.find(name);
    if (!r) {
      throw invalidParameter(`'${name}' is not a region of this labforge installation. Use one of: ${this.list()}.`, target);
    }
    return r;
  }

  inGeography(geography: string): RegionConfig[] {
    return this.regions.filter((r) => r.geography === geography);
  }

  list(): string {
    return this.regions.map((r) => r.name).join(', ');
  }
}

/** Runs `fn` every `ms` (never two at once) until stopped; the timer does not keep the process alive. */
export class Ticker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly what: string,
    private readonly fn: () => Promise<void>,
  ) {}

  start(ms: number): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.fn()
        .catch((err) => console.error(`labforge: the ${this.what} failed: ${(err as Error).message}`))
        .finally(() => {
          this.running = undefined;
        });
    }, ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
