// Console tickets: a browser cannot send an Authorization header on a
// WebSocket, so a caller who may see a running VM gets a short-lived ticket,
// and each of its console channels (screen, serial) opens once with it.
import { randomBytes } from 'node:crypto';
import type { ComputeDriver, VmStatus } from '../compute/compute-driver.js';
import { conflict, LabforgeError } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import type { ConsoleChannel, ConsoleTicketRepository } from '../repositories/console-ticket.repository.js';
import type { AccessPolicy } from './policy.js';
import type { VirtualMachine } from './vm.service.js';

const TICKET_MS = 60_000;

export class ConsoleTicketService {
  constructor(
    private readonly tickets: ConsoleTicketRepository,
    private readonly driver: ComputeDriver,
    private readonly policy: AccessPolicy,
  ) {}

  /**
   * A ticket for a VM the caller can see (the caller's service has checked that) and may act on: a console types
   * into the VM, so a lab's VM opens only to its student, its lab's creator and admins (the access policy).
   */
  async issue(p: Principal, vm: VirtualMachine): Promise<{ ticket: string; expiresAt: string; vm: VirtualMachine }> {
    await this.policy.checkAct(p, vm);
    if (vm.state !== 'Running') {
      throw conflict(`Virtual machine '${vm.name}' is ${vm.state}; start it to open its console.`, undefined, 'OperationNotAllowed');
    }
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = new Date(Date.now() + TICKET_MS).toISOString();
    await this.tickets.issue(ticket, vm.key, expiresAt, ['vnc', 'serial']);
    return { ticket, expiresAt, vm };
  }

  /** Consumes a ticket for one console channel; each ticket opens each channel once, within a minute. */
  async redeem(ticket: string, channel: ConsoleChannel): Promise<VmStatus> {
    const vmKey = await this.tickets.redeem(ticket, channel);
    if (!vmKey) {
      throw new LabforgeError(
        401,
        'InvalidConsoleTicket',
        'The console ticket is unknown, expired (tickets last one minute) or already used. Ask for a new one with POST .../virtualMachines/{vm}/console.',
      );
    }
    const status = await this.driver.status(vmKey);
    if (status?.state !== 'Running') throw conflict('The VM is not running any more; start it and open the console again.');
    return status;
  }
}
