// Building blocks of the wire schemas. Response schemas are compiled into
// serialisers (fast-json-stringify), which write only the properties a schema
// declares and check unions with a validator per value; so these helpers say
// "one of these strings" and "or null" with `enum` and type lists, never anyOf,
// and open objects say so with additionalProperties.
import Type, { type Static, type TSchema } from 'typebox';

/** One string from a closed list (`enum`, not a union of literals). */
export const StringEnum = <const V extends readonly string[]>(values: V, options: { description?: string } = {}) =>
  Type.Unsafe<V[number]>({ type: 'string', enum: [...values], ...options });

/** The schema or null, as a type list. */
export function Nullable<T extends TSchema>(schema: T) {
  const s = schema as unknown as { type?: string; enum?: unknown[] };
  if (typeof s.type !== 'string') throw new TypeError('Nullable needs a schema with one type');
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [s.type, 'null'], ...(s.enum ? { enum: [...s.enum, null] } : {}) });
}

/** An object of string values under any names (tags). */
export const StringMap = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, ...options });

/** An object whose properties are open (Azure objects labforge stores as given, results of operations). */
export const OpenObject = (options: { description?: string } = {}) =>
  Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, ...options });

/** A list answer: `{value: [...], nextLink?}`; follow nextLink as given for the next page. */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    value: Type.Array(item),
    nextLink: Type.Optional(Type.String({ description: 'The next page, when there is one: follow it as given.' })),
  });

/** A list answer's type. */
export type Page<T> = { value: T[]; nextLink?: string };

/** What an answer without a body is declared with (no content in the OpenAPI document). */
export const NO_BODY_DESCRIPTION = 'No body.';
export const NoBody = (description = NO_BODY_DESCRIPTION) => Type.Unsafe<void>({ type: 'null', description });
