// labforge's own JSON (provider Labforge.Core): operations, tokens, hosts,
// accounts and sessions, as the wire contract (src/contract/core) declares them.
import type { Account as AccountWire, Host as HostWire, Operation as OperationWire, Session as SessionWire, Token as TokenWire } from '../../contract/index.js';
import type { Operation } from '../../operations/operation.store.js';
import type { Account, Session } from '../../services/account.service.js';
import type { Host } from '../../services/host.service.js';
import type { TokenInfo } from '../../services/token.service.js';

export function renderOperation(op: Operation): OperationWire {
  return {
    id: `/subscriptions/${op.subscriptionId}/providers/Labforge.Core/operations/${op.id}`,
    name: op.id,
    status: op.state,
    startTime: op.startedAt ?? op.createdAt,
    endTime: op.endedAt || undefined,
    percentComplete: op.percentComplete,
    error: op.error || undefined,
    properties: {
      kind: op.kind,
      resourceId: op.targetId,
      statusMessage: op.statusMessage,
      createdBy: op.createdBy,
      createdAt: op.createdAt,
      attempts: op.attempts,
      cancelRequested: op.cancelRequested,
      result: op.checkpoint.result,
    },
  };
}

export function renderToken(t: TokenInfo): TokenWire {
  return {
    id: `/providers/Labforge.Core/tokens/${t.id}`,
    name: t.id,
    type: 'Labforge.Core/tokens',
    properties: {
      displayName: t.name,
      subject: t.subject,
      role: t.role,
      createdAt: t.createdAt,
      createdBy: t.createdBy,
      expiresAt: t.expiresAt,
      lastUsedAt: t.lastUsedAt,
      revokedAt: t.revokedAt,
      state: t.revokedAt ? 'Revoked' : t.expiresAt && t.expiresAt < new Date().toISOString() ? 'Expired' : 'Active',
    },
  };
}

export function renderHost(h: Host): HostWire {
  return {
    id: `/providers/Labforge.Core/hosts/${h.name}`,
    name: h.name,
    type: 'Labforge.Core/hosts',
    properties: {
      state: h.state,
      stateReason: h.stateReason || undefined,
      computeDriver: h.driver,
      acceleration: h.acceleration || undefined,
      virtualMachines: h.vms,
    },
  };
}

export function renderAccount(a: Account): AccountWire {
  return {
    id: `/providers/Labforge.Core/accounts/${a.email}`,
    name: a.email,
    type: 'Labforge.Core/accounts',
    properties: {
      email: a.email,
      displayName: a.displayName ?? undefined,
      role: a.role,
      state: a.hasPassword ? 'Active' : a.invitationPending ? 'Invited' : 'NoPassword',
      createdAt: a.createdAt,
      createdBy: a.createdBy,
      lastSignInAt: a.lastSignInAt ?? undefined,
    },
  };
}

export const renderSession = (s: Session): SessionWire => ({ token: s.token, expiresAt: s.expiresAt, subject: s.subject, role: s.role });
