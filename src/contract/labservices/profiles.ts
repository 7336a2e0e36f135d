// Profiles lab plans give their labs as defaults and labs keep as their own.
import Type, { type Static } from 'typebox';

/** How people reach a lab's VMs: Public, Private or None per channel. */
export const ConnectionProfile = Type.Object({
  webSshAccess: Type.String(),
  webRdpAccess: Type.String(),
  clientSshAccess: Type.String(),
  clientRdpAccess: Type.String(),
});
export type ConnectionProfile = Static<typeof ConnectionProfile>;

/** When a lab's VMs shut down by themselves (delays as ISO 8601 durations). */
export const AutoShutdownProfile = Type.Object({
  shutdownOnDisconnect: Type.String(),
  shutdownWhenNotConnected: Type.String(),
  shutdownOnIdle: Type.String(),
  disconnectDelay: Type.Optional(Type.String()),
  noConnectDelay: Type.Optional(Type.String()),
  idleDelay: Type.Optional(Type.String()),
});
export type AutoShutdownProfile = Static<typeof AutoShutdownProfile>;

/** The profiles as requests give them: any field may be left out (the plan's default or the current value is kept); the server checks the values. */
export const ConnectionProfileInput = Type.Partial(ConnectionProfile);
export const AutoShutdownProfileInput = Type.Partial(AutoShutdownProfile);
