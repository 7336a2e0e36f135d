// People sign in as themselves: an admin invites a creator, who chooses a
// password; wrong passwords are rate-limited; sessions end on sign-out; a
// student registers with their lab's registration code and sees their lab.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountRepository } from '../../src/repositories/account.repository.js';
import { AccountService } from '../../src/services/account.service.js';
import '../helpers/fake-compute.js';
import { publishedLab } from '../helpers/labs.js';
import { DIALECTS } from '../helpers/pg.js';
import { LABFORGE, startTestServer, type TestServer } from '../helpers/server.js';

const LS = 'api-version=2022-08-01';

describe.each(DIALECTS)('accounts and sign-in (%s)', (dialect) => {
  let t: TestServer;
  const signIn = (email: string, password: string) => t.call('POST', `/providers/Labforge.Core/signIn?${LABFORGE}`, { email, password }, { token: null });
  const register = (body: Record<string, string>) => t.call('POST', `/providers/Labforge.Core/register?${LABFORGE}`, body, { token: null });

  beforeAll(async () => {
    t = await startTestServer(dialect, { env: { LABFORGE_COMPUTE_DRIVER: 'fake' } });
  });
  afterAll(async () => t?.close());

  it('invites a creator, who chooses a password and signs in; wrong passwords are limited; sign-out ends the session', async () => {
    const created = await t.call('PUT', `/providers/Labforge.Core/accounts/Rivera@School.edu?${LABFORGE}`, {
      properties: { role: 'creator', displayName: 'Ms Rivera' },
    });
    expect(created.status).toBe(201);
    expect(created.body.properties).toMatchObject({ email: 'rivera@school.edu', role: 'creator', state: 'Invited' });
    const invitation = created.body.invitation.token as string;
    expect(invitation).toMatch(/^[\w-]{32}$/);
    expect(
      (
        await t.call(
          'PUT',
          `/providers/Labforge.Core/accounts/x@school.edu?${LABFORGE}`,
          { properties: { role: 'creator' } },
          { token: await t.tokenFor('creator') },
        )
      ).status,
    ).toBe(403);

    expect((await signIn('rivera@school.edu', 'anything')).body.error.message).toMatch(/no password yet/);
    const weak = await register({ email: 'rivera@school.edu', invitation, password: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body.error.message).toMatch(/10-200 characters/);
    expect((await register({ email: 'other@school.edu', invitation, password: 'Correct-Horse-42' })).status).toBe(401);
    const reg = await register({ email: 'rivera@school.edu', invitation, password: 'Correct-Horse-42' });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    expect(reg.body).toMatchObject({ subject: 'rivera@school.edu', role: 'creator' });
    // The invitation is spent.
    expect((await register({ email: 'rivera@school.edu', invitation, password: 'Another-Horse-42' })).status).toBe(401);
    const stored = await t.server.services.store.db
      .selectFrom('accounts')
      .select('password_hash')
      .where('email', '=', 'rivera@school.edu')
      .executeTakeFirstOrThrow();
    expect(stored.password_hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(stored.password_hash).not.toContain('Correct-Horse-42');

    const session = await signIn('RIVERA@school.edu', 'Correct-Horse-42');
    expect(session.status).toBe(200);
    const me = await t.call('GET', '/providers/Labforge.Core/whoami', undefined, { token: session.body.token });
    expect(me.body).toMatchObject({ subject: 'rivera@school.edu', role: 'creator' });
    expect(Date.parse(session.body.expiresAt) - Date.now()).toBeGreaterThan(11 * 3600_000);

    for (let i = 0; i < 5; i++) {
      const bad = await signIn('rivera@school.edu', 'Wrong-Horse-42');
      expect(bad.status).toBe(401);
      expect(bad.body.error.message).toBe('The email or the password is wrong.');
    }
    const locked = await signIn('rivera@school.edu', 'Correct-Horse-42');
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(locked.body.error.code).toBe('TooManyAttempts');
    // An unknown email answers like a wrong password.
    expect((await signIn('nobody@school.edu', 'Correct-Horse-42')).body.error.message).toBe('The email or the password is wrong.');

    expect((await t.call('POST', `/providers/Labforge.Core/signOut?${LABFORGE}`, undefined, { token: session.body.token })).status).toBe(204);
    expect((await t.call('GET', '/providers/Labforge.Core/whoami', undefined, { token: session.body.token })).status).toBe(401);
  });

  it('counts failed sign-ins in the database: another server process sharing it refuses the locked email too', async () => {
    await t.call('PUT', `/providers/Labforge.Core/accounts/okafor@school.edu?${LABFORGE}`, { properties: { role: 'creator' } });
    // A second server process on the same database: its own memory is empty.
    const other = new AccountService(new AccountRepository(t.server.services.store.db), t.server.services.tokens);
    for (let i = 0; i < 5; i++) await expect(other.signIn('okafor@school.edu', 'Wrong-Horse-42', '192.0.2.7')).rejects.toMatchObject({ status: 401 });
    const locked = await signIn('okafor@school.edu', 'Wrong-Horse-42');
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('TooManyAttempts');
    // Failures from one address count across emails too, in every process.
    for (let i = 0; i < 30; i++) await other.signIn(`nobody${i}@school.edu`, 'x', '192.0.2.99').catch(() => undefined);
    await expect(t.server.services.accounts.signIn('okafor@school.edu', 'x', '192.0.2.99')).rejects.toMatchObject({ status: 429 });
    expect((await t.call('DELETE', `/providers/Labforge.Core/accounts/okafor@school.edu?${LABFORGE}`)).status).toBe(200);
  });

  it("lets a student register with their lab's code and see their lab and seat", async () => {
    const { rg } = await publishedLab(t, { plan: 'science' });
    await t.call('PUT', `${rg}/providers/Microsoft.LabServices/labs/physics/users/kim?${LS}`, { properties: { email: 'kim@school.edu' } });
    const code = (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs/physics?${LS}`)).body.properties.securityProfile.registrationCode as string;

    expect((await register({ email: 'kim@school.edu', registrationCode: 'wrong-code', password: 'Student-Pass-42' })).status).toBe(401);
    // Not on the list, and the lab is not open.
    expect((await register({ email: 'lee@school.edu', registrationCode: code, password: 'Student-Pass-42' })).status).toBe(401);
    const kim = await register({ email: 'kim@school.edu', registrationCode: code, password: 'Student-Pass-42' });
    expect(kim.status, JSON.stringify(kim.body)).toBe(200);
    expect(kim.body.role).toBe('user');
    const user = (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs/physics/users/kim?${LS}`)).body;
    expect(user.properties.registrationState).toBe('Registered');
    const vms = (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs/physics/virtualMachines?${LS}`, undefined, { token: kim.body.token })).body
      .value;
    expect(vms.map((x: { name: string }) => x.name)).toEqual(['0']);

    // An open lab takes anyone with the code.
    await t.call('PATCH', `${rg}/providers/Microsoft.LabServices/labs/physics?${LS}`, { properties: { securityProfile: { openAccess: 'Enabled' } } });
    const lee = await register({ email: 'lee@school.edu', registrationCode: code, password: 'Student-Pass-42' });
    expect(lee.status).toBe(200);
    const leeVms = (await t.call('GET', `${rg}/providers/Microsoft.LabServices/labs/physics/virtualMachines?${LS}`, undefined, { token: lee.body.token })).body
      .value;
    expect(leeVms.map((x: { name: string }) => x.name)).toEqual(['1']);
    expect((await t.call('GET', `/providers/Labforge.Core/accounts?${LABFORGE}`)).body.value.map((a: { name: string }) => a.name)).toEqual([
      'kim@school.edu',
      'lee@school.edu',
      'rivera@school.edu',
    ]);
  });

  it("never lets a lab's registration code take over an invited account: the invitation alone redeems it", async () => {
    // The lab of the test before, opened to anyone with its code.
    const lab = `/subscriptions/${t.sub}/resourceGroups/school/providers/Microsoft.LabServices/labs/physics`;
    await t.call('PATCH', `${lab}?${LS}`, { properties: { securityProfile: { openAccess: 'Enabled' } } });
    const code = (await t.call('GET', `${lab}?${LS}`)).body.properties.securityProfile.registrationCode as string;
    for (const role of ['admin', 'creator', 'user'] as const) {
      const email = `invited-${role}@school.edu`;
      const created = await t.call('PUT', `/providers/Labforge.Core/accounts/${email}?${LABFORGE}`, { properties: { role } });
      expect(created.status).toBe(201);
      const invitation = created.body.invitation.token as string;
      // Someone who knows the open lab's code and the invited email gets nothing.
      const taken = await register({ email, registrationCode: code, password: 'Attacker-Pass-42' });
      expect(taken.status, role).toBe(409);
      expect(taken.body.error.code).toBe('InvitationPending');
      expect(taken.body.token).toBeUndefined();
      expect((await signIn(email, 'Attacker-Pass-42')).status).toBe(401);
      const account = (await t.call('GET', `/providers/Labforge.Core/accounts/${email}?${LABFORGE}`)).body;
      expect(account.properties).toMatchObject({ role, state: 'Invited' });
      // The invitation's own secret still works, and gives the role it was issued for.
      const mine = await register({ email, invitation, password: 'Invited-Pass-42' });
      expect(mine.status, JSON.stringify(mine.body)).toBe(200);
      expect(mine.body.role).toBe(role);
    }
  });
});
