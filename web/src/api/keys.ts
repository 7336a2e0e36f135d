// Every TanStack Query key of the portal, in one place: a page reads with one of
// these and a change invalidates with one of these, so the two cannot drift apart.
// Keys are hierarchical: `all` (or a shorter key) is the prefix of every longer
// key of its kind, so invalidating it reaches all of them.
type Id = string | undefined;

export const queryKeys = {
  whoami: ['whoami'],
  subscription: ['subscription'],
  labs: { all: ['labs'], list: (sub: Id) => ['labs', sub] },
  lab: (labId: Id) => ['lab', labId],
  /** A lab's template and student VMs. */
  labVms: { all: ['lab-vms'], of: (labId: Id) => ['lab-vms', labId] },
  /** A lab's students. */
  labUsers: (labId: Id) => ['lab-users', labId],
  /** A student's own VMs across labs. */
  myVms: { all: ['my-vms'], list: (sub: Id) => ['my-vms', sub] },
  resourceGroups: (sub: Id) => ['resource-groups', sub],
  labPlans: { all: ['lab-plans'], list: (sub: Id) => ['lab-plans', sub] },
  /** A lab plan's images: `of` covers both lists, `offered` is what creators may choose, `withHidden` adds the hidden ones and why. */
  planImages: {
    of: (planId: Id) => ['plan-images', planId],
    offered: (planId: Id) => ['plan-images', planId, 'offered'],
    withHidden: (planId: Id) => ['plan-images', planId, 'with-hidden'],
  },
  galleries: (sub: Id) => ['galleries', sub],
  imageDefs: (galleryId: Id) => ['image-defs', galleryId],
  versions: { all: ['versions'], of: (imageId: Id) => ['versions', imageId] },
  usage: (sub: Id) => ['usage', sub],
  operations: (sub: Id) => ['operations', sub],
  people: ['people'],
  tokens: ['tokens'],
  hosts: ['hosts'],
} as const;
