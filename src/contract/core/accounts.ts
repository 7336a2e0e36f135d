// Labforge.Core/accounts, sessions and who is calling: people sign in with an
// email and a password; every request is made with a token (an API token or
// a session's).
import Type, { type Static } from 'typebox';
import { Nullable, StringEnum } from '../schema.js';
import { RoleSchema } from './tokens.js';

export const Account = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  properties: Type.Object({
    email: Type.String(),
    displayName: Type.Optional(Type.String()),
    role: RoleSchema,
    state: StringEnum(['Active', 'Invited', 'NoPassword']),
    createdAt: Type.String(),
    createdBy: Type.String(),
    lastSignInAt: Type.Optional(Type.String()),
  }),
});
export type Account = Static<typeof Account>;

/** A one-time invitation to choose a password (14 days), shown once. */
export const Invitation = Type.Object({ token: Type.String(), expiresAt: Type.String() });

/** The answer to PUT of an account: with an invitation when it has no password yet. */
export const AccountWithInvitation = Type.Object({ ...Account.properties, invitation: Type.Optional(Invitation) });
export type AccountWithInvitation = Static<typeof AccountWithInvitation>;

/** PUT …/accounts/{email}; the server checks the role and the password's strength. */
export const AccountInput = Type.Object({
  properties: Type.Object({
    role: Type.Optional(Type.String()),
    displayName: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    password: Type.Optional(Type.String({ maxLength: 200 })),
  }),
});
export type AccountInput = Static<typeof AccountInput>;

/** A session: a token for 12 hours, for the person who signed in. */
export const Session = Type.Object({ token: Type.String(), expiresAt: Type.String(), subject: Type.String(), role: RoleSchema });
export type Session = Static<typeof Session>;

/** signIn (email, password) and register (with an admin's invitation or a lab's registration code). */
export const Credentials = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254 })),
  password: Type.Optional(Type.String({ maxLength: 200 })),
  invitation: Type.Optional(Type.String({ maxLength: 200 })),
  registrationCode: Type.Optional(Type.String({ maxLength: 100 })),
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
});
export type Credentials = Static<typeof Credentials>;

/** POST /providers/Labforge.Core/redeemRegistrationCode: a signed-in student joins another lab. */
export const RedeemInput = Type.Object({ registrationCode: Type.String({ maxLength: 100 }) });
export type RedeemInput = Static<typeof RedeemInput>;

export const Registered = Type.Object({ registered: Type.Boolean() });
export type Registered = Static<typeof Registered>;

/** GET /providers/Labforge.Core/whoami. */
export const WhoAmI = Type.Object({ subject: Type.String(), role: RoleSchema, tokenId: Type.String() });
export type WhoAmI = Static<typeof WhoAmI>;
