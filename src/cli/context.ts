// What every client command needs: an API client for the logged-in server and
// the subscription to work in, with a clear message when nobody logged in.
import { ApiClient } from '../client/api-client.js';
import { effectiveLogin } from './config-store.js';
import { CliError, EXIT } from './errors.js';

export interface Context {
  client: ApiClient;
  server: string;
  /** The subscription from the login, or the first one the server lists. */
  subscription(): Promise<string>;
}

export function makeClient(server: string, token: string | undefined, caFile: string | undefined): ApiClient {
  try {
    return new ApiClient({ baseUrl: server, token, caFile, userAgent: 'labforge-cli/0.1.0' });
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}

export function loadContext(): Context {
  const login = effectiveLogin();
  if (!login.server || !login.token) {
    throw new CliError(
      'You are not logged in. Run `labforge login --server https://HOST:PORT --token TOKEN` first (or set LABFORGE_SERVER and LABFORGE_TOKEN).',
      EXIT.auth,
    );
  }
  const client = makeClient(login.server, login.token, login.caFile);
  let sub = login.subscription;
  return {
    client,
    server: login.server,
    subscription: async () => {
      if (sub) return sub;
      const subs = await client.listSubscriptions();
      sub = subs[0]?.subscriptionId;
      if (!sub) throw new CliError(`The server ${login.server} lists no subscription this token may use.`, EXIT.notFound);
      return sub;
    },
  };
}
