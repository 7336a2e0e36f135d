// Profiles that lab plans give their labs as defaults and labs keep as their own (JSON columns of both tables).

/** How people reach a lab's VMs (Azure Lab Services' names and values). */
export interface ConnectionProfile {
  webSshAccess: string;
  webRdpAccess: string;
  clientSshAccess: string;
  clientRdpAccess: string;
}
/** When a lab's VMs shut down by themselves. */
export interface AutoShutdownProfile {
  shutdownOnDisconnect: string;
  shutdownWhenNotConnected: string;
  shutdownOnIdle: string;
  disconnectDelay?: string;
  noConnectDelay?: string;
  idleDelay?: string;
}
