// Labforge.Core/hosts: the hypervisor hosts, and how each runs VMs.
import Type, { type Static } from 'typebox';
import { StringEnum } from '../schema.js';

/** How a host accelerates VMs: KVM where the probe proved it, software emulation (tcg) otherwise, and why. */
export const HostAcceleration = Type.Object({
  accelerator: StringEnum(['kvm', 'tcg']),
  kvm: StringEnum(['works', 'missing', 'broken', 'unproven', 'disabled']),
  reason: Type.String(),
  checkedAt: Type.String(),
  source: StringEnum(['probe', 'runtime', 'config']),
});
export type HostAcceleration = Static<typeof HostAcceleration>;

export const Host = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  properties: Type.Object({
    state: StringEnum(['Ready', 'Unreachable']),
    stateReason: Type.Optional(Type.String()),
    computeDriver: Type.String(),
    acceleration: Type.Optional(HostAcceleration),
    virtualMachines: Type.Object({ total: Type.Integer(), running: Type.Integer(), failed: Type.Integer() }),
  }),
});
export type Host = Static<typeof Host>;
