// The names each kind of resource may have, written once and checked the
// same way on every route (Azure's rules: lengths, characters, and never a
// leading or trailing period, so "." and ".." are never names).

export type ResourceKind = 'resourceGroup' | 'gallery' | 'image' | 'vm' | 'labPlan' | 'lab' | 'labUser' | 'schedule';

interface NameRule {
  /** What people call it in a message. */
  what: string;
  re: RegExp;
  /** The rule in words, after "use". */
  rule: string;
  /** The error's target. */
  target: string;
}

const LAB_SERVICES = {
  re: /^[A-Za-z0-9](?:[-\w.()]{0,98}[-\w()])?$/,
  rule: "1-100 letters, digits, '-', '_', '.' or parentheses, starting with a letter or digit and not ending with '.'",
};
const LAB_USER = {
  re: /^[-\w()](?:[-\w.()]{0,98}[-\w()])?$/,
  rule: "1-100 letters, digits, '-', '_', '.' or parentheses, not starting or ending with '.'",
};

export const NAME_RULES: Readonly<Record<ResourceKind, NameRule>> = {
  resourceGroup: {
    what: 'resource group',
    re: /^[-\w._()]{0,89}[-\w_()]$/u,
    rule: '1-90 letters, digits, underscores, hyphens, periods or parentheses, not ending in a period',
    target: 'name',
  },
  gallery: {
    what: 'gallery',
    re: /^[A-Za-z0-9][A-Za-z0-9._]{0,78}[A-Za-z0-9]$|^[A-Za-z0-9]$/,
    rule: '1-80 letters, digits, periods or underscores, starting and ending with a letter or digit (no hyphens)',
    target: 'name',
  },
  image: {
    what: 'image',
    re: /^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$|^[A-Za-z0-9]$/,
    rule: '1-80 letters, digits, periods, hyphens or underscores, starting and ending with a letter or digit',
    target: 'name',
  },
  vm: {
    what: 'VM',
    re: /^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$/,
    rule: '1-64 letters, digits or hyphens, starting and ending with a letter or digit',
    target: 'virtualMachineName',
  },
  labPlan: { what: 'lab plan', ...LAB_SERVICES, target: 'labPlanName' },
  lab: { what: 'lab', ...LAB_SERVICES, target: 'labName' },
  labUser: { what: 'user', ...LAB_USER, target: 'userName' },
  schedule: { what: 'schedule', ...LAB_USER, target: 'scheduleName' },
};

/** Why `name` cannot name a resource of `kind` (a sentence that says what to use), or undefined when it can. */
export function nameProblem(kind: ResourceKind, name: string): string | undefined {
  const r = NAME_RULES[kind];
  return r.re.test(name) ? undefined : `The ${r.what} name '${name}' is not valid: use ${r.rule}.`;
}
