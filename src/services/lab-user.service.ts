// The people of a lab: staff add students by email (and give them extra
// hours), invite them (labforge sends no email: the answer carries the
// registration code), and remove them; students register with the lab's code.
// A published lab gives each of its users a student VM (a seat).
import { randomUUID } from 'node:crypto';
import { conflict, forbidden, invalidParameter, notFound } from '../errors.js';
import type { Principal } from '../lib/principal.js';
import { nowIso } from '../lib/time.js';
import type { LabRecord, LabRepository, LabUserRecord } from '../repositories/lab.repository.js';
import { checkName } from './common.js';
import { durationSeconds, type LabService } from './lab.service.js';
import { isStaff } from './policy.js';
import type { VmService } from './vm.service.js';

export interface LabUser {
  key: string;
  labName: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  email: string;
  displayName: string | null;
  registrationState: string;
  invitationState: string;
  invitationSent: string | null;
  additionalUsageQuotaSeconds: number;
  totalUsageSeconds: number;
  createdAt: string;
  createdBy: string;
}

export class LabUserService {
  constructor(
    private readonly labs: LabService,
    private readonly labRecords: LabRepository,
    private readonly vms: VmService,
  ) {}

  private toUser(u: LabUserRecord, lab: LabRecord, usage: number): LabUser {
    return {
      key: u.key,
      labName: lab.name,
      subscriptionId: lab.subscriptionId,
      resourceGroup: lab.resourceGroup,
      name: u.name,
      email: u.email,
      displayName: u.displayName,
      registrationState: u.registrationState,
      invitationState: u.invitationState,
      invitationSent: u.invitationSent,
      additionalUsageQuotaSeconds: u.additionalUsageQuotaSeconds,
      totalUsageSeconds: usage,
      createdAt: u.createdAt,
      createdBy: u.createdBy,
    };
  }

  private async usageOf(lab: LabRecord, email: string): Promise<number> {
    const [vm] = await this.vms.labVms(lab.key, { owner: email, type: 'User' });
    return vm ? this.vms.usageSeconds(vm.key) : 0;
  }

  async list(p: Principal, sub: string, rg: string, labName: string): Promise<LabUser[]> {
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    const users = await this.labRecords.users(lab.key, isStaff(p) ? undefined : p.subject.toLowerCase());
    const out: LabUser[] = [];
    for (const u of users) out.push(this.toUser(u, lab, await this.usageOf(lab, u.email)));
    return out;
  }

  async get(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<LabUser> {
    const u = (await this.list(p, sub, rg, labName)).find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!u)
      throw notFound('ResourceNotFound', `The Resource 'Microsoft.LabServices/labs/${labName}/users/${name}' under resource group '${rg}' was not found.`);
    return u;
  }

  /** Adds a student by email (or changes their extra quota); a published lab gives them a free seat at once. */
  async put(
    p: Principal,
    sub: string,
    rg: string,
    labName: string,
    name: string,
    body: { email?: string; additionalUsageQuota?: string },
  ): Promise<{ user: LabUser; created: boolean }> {
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can add students.');
    this.labs.checkOwner(p, lab);
    checkName('labUser', name);
    const extra = body.additionalUsageQuota !== undefined ? durationSeconds(body.additionalUsageQuota, 'properties.additionalUsageQuota') : undefined;
    const existing = await this.labRecords.userByName(lab.key, name);
    if (existing) {
      if (body.email && body.email.toLowerCase() !== existing.email) {
        throw conflict(
          `Changing property 'email' of user '${name}' is not allowed. Remove the user and add them again.`,
          'properties.email',
          'PropertyChangeNotAllowed',
        );
      }
      if (extra !== undefined) await this.labRecords.updateUser(existing.key, { additionalUsageQuotaSeconds: extra });
      return { user: await this.get(p, sub, rg, labName, name), created: false };
    }
    const email = body.email?.trim().toLowerCase();
    if (!email || !/^[^@\s]{1,64}@[^@\s]{1,189}$/.test(email)) {
      throw invalidParameter("properties.email is required: the student's email address (they sign in with it).", 'properties.email');
    }
    await this.labRecords.addUser({
      key: randomUUID(),
      labKey: lab.key,
      name,
      email,
      registrationState: 'NotRegistered',
      additionalUsageQuotaSeconds: extra ?? 0,
      createdBy: p.subject,
    });
    if (lab.state === 'Published') await this.assignSeats(lab);
    return { user: await this.get(p, sub, rg, labName, name), created: true };
  }

  async delete(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<boolean> {
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can remove students.');
    this.labs.checkOwner(p, lab);
    const u = await this.labRecords.userByName(lab.key, name);
    if (!u) return false;
    await this.labRecords.deleteUser(u.key);
    // Their seat goes back to the lab (its disk is reset for the next student).
    const [seat] = await this.vms.labVms(lab.key, { owner: u.email });
    if (seat) await this.vms.reassign(seat.key, lab.createdBy);
    return true;
  }

  /** Marks an invitation as sent (labforge sends no email itself: the answer carries the registration code to pass on). */
  async invite(p: Principal, sub: string, rg: string, labName: string, name: string): Promise<{ user: LabUser; registrationCode: string }> {
    const lab = await this.labs.requireLab(p, sub, rg, labName);
    if (!isStaff(p)) throw forbidden('Only lab staff can invite students.');
    this.labs.checkOwner(p, lab);
    const u = await this.get(p, sub, rg, labName, name);
    await this.labRecords.updateUser(u.key, { invitationState: 'Sent', invitationSent: nowIso() });
    return { user: await this.get(p, sub, rg, labName, name), registrationCode: lab.securityProfile.registrationCode };
  }

  /**
   * A student with a lab's registration code: registered when the lab lists their email, or added when the lab
   * is open to anyone with the code. Returns false when the code or the email does not fit.
   */
  async registerStudent(email: string, code: string): Promise<boolean> {
    const lab = await this.labRecords.byRegistrationCode(code);
    if (!lab) return false;
    const user = await this.labRecords.userByEmail(lab.key, email);
    if (user) {
      await this.labRecords.updateUser(user.key, { registrationState: 'Registered' });
    } else {
      if (lab.securityProfile.openAccess !== 'Enabled') return false;
      const base = (email.split('@')[0] ?? 'student').replace(/[^\w.-]/g, '-').slice(0, 90) || 'student';
      const taken = await this.labRecords.userNameKeys(lab.key);
      let name = base;
      for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${base}-${i}`;
      await this.labRecords.addUser({
        key: randomUUID(),
        labKey: lab.key,
        name,
        email,
        registrationState: 'Registered',
        additionalUsageQuotaSeconds: 0,
        createdBy: 'registration',
      });
    }
    if (lab.state === 'Published') await this.assignSeats(lab);
    return true;
  }

  /** Gives unclaimed seats to the lab's users who have none, in the order they were added. */
  async assignSeats(lab: LabRecord): Promise<void> {
    const users = await this.labRecords.usersByArrival(lab.key);
    const seats = await this.vms.labVms(lab.key, { type: 'User' });
    seats.sort((a, b) => Number(a.name.split('/')[2]) - Number(b.name.split('/')[2]));
    const claimed = new Set(seats.map((s) => s.owner));
    const free = seats.filter((s) => !users.some((u) => u.email === s.owner));
    for (const u of users) {
      if (claimed.has(u.email)) continue;
      const seat = free.shift();
      if (!seat) break;
      await this.vms.reassign(seat.key, u.email);
    }
  }
}
