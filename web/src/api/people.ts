// People's accounts (a new one gets a one-time invitation) and API tokens (admins).
import { get, send } from './transport.js';
import { API_VERSIONS, type CreatedPerson, type List, type PersonRow, type TokenRow } from './types.js';

const V = API_VERSIONS.labforge;
const CORE = '/providers/Labforge.Core';

export const listPeople = async () => (await get<List<PersonRow>>(`${CORE}/accounts`, V)).value;
export const createPerson = (email: string, role: string) =>
  send<CreatedPerson>('PUT', `${CORE}/accounts/${encodeURIComponent(email)}`, V, { properties: { role } });
export const listTokens = async () => (await get<List<TokenRow>>(`${CORE}/tokens`, V)).value;
export const revokeToken = (id: string) => send('DELETE', `${CORE}/tokens/${id}`, V);
