// Labforge.Core/tokens: API tokens (admins only).
import Type, { type Static } from 'typebox';
import { ROLES } from '../roles.js';
import { Nullable, StringEnum } from '../schema.js';

export const RoleSchema = StringEnum(ROLES);

export const Token = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  properties: Type.Object({
    displayName: Type.String(),
    subject: Type.String(),
    role: RoleSchema,
    createdAt: Type.String(),
    createdBy: Type.String(),
    expiresAt: Nullable(Type.String()),
    lastUsedAt: Nullable(Type.String()),
    revokedAt: Nullable(Type.String()),
    state: StringEnum(['Active', 'Expired', 'Revoked']),
  }),
});
export type Token = Static<typeof Token>;

/** The answer to creating a token: the secret is in it, and only there. */
export const CreatedToken = Type.Object({ ...Token.properties, token: Type.String({ description: 'The secret; shown only in this answer' }) });
export type CreatedToken = Static<typeof CreatedToken>;

/** POST /providers/Labforge.Core/tokens; the server checks the role and names the roles that exist. */
export const TokenInput = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  role: Type.String(),
  subject: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  expiresInDays: Type.Optional(Type.Integer()),
});
export type TokenInput = Static<typeof TokenInput>;
