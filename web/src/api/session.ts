// Signing in and out, who is signed in, and the subscription the pages work in.
import i18n from '../i18n.js';
import { ApiError, call, get, session } from './transport.js';
import { API_VERSIONS, type List, type Me, type SessionInfo, type Subscription } from './types.js';

const CORE = '/providers/Labforge.Core';

/** Signs in with email and password and keeps the session token in this tab. */
export async function signIn(email: string, password: string): Promise<SessionInfo> {
  const r = await call<SessionInfo>('POST', `${CORE}/signIn`, API_VERSIONS.labforge, { email, password });
  session.set(r.body.token);
  return r.body;
}

/** Ends the session on the server (if it still can) and in this tab. */
export async function signOut(): Promise<void> {
  await call('POST', `${CORE}/signOut`, API_VERSIONS.labforge).catch(() => undefined);
  session.clear();
}

export const whoami = () => get<Me>(`${CORE}/whoami`, API_VERSIONS.labforge);

/** The subscription the server lists for this person (the portal works in the first). */
export async function subscription(): Promise<string> {
  const r = await get<List<Subscription>>('/subscriptions', API_VERSIONS.subscriptions);
  const sub = r.value[0]?.subscriptionId;
  if (!sub) throw new ApiError(404, 'NoSubscription', i18n.t('errors.noSubscription'));
  return sub;
}
