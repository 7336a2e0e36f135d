// The console WebSockets of VMs and lab VMs: the one-minute ticket in the URL
// is the credential (browsers cannot send an Authorization header on a
// WebSocket); each ticket opens the VNC proxy and the read-only serial stream once.
import { createConnection } from 'node:net';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import Type from 'typebox';
import type { Services } from '../../services/index.js';
import { followFile } from './serial-follow.js';

const TicketParams = Type.Object({ ticket: Type.String() });

export function consoleRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Registered here, not on the whole app: the plugin hooks every request of the context it is registered in.
    await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
    app.get(
      '/consoles/:ticket/vnc',
      {
        websocket: true,
        config: { public: true },
        schema: { hide: true, params: TicketParams },
        preValidation: async (req) => {
          (req as unknown as { vmStatus: unknown }).vmStatus = await s.consoleTickets.redeem((req.params as { ticket: string }).ticket, 'vnc');
        },
      },
      (socket, req) => {
        const status = (req as unknown as { vmStatus: { id?: string; vncSocket?: string } }).vmStatus;
        const vnc = createConnection(status.vncSocket as string);
        s.autoShutdown.consoleOpened(status.id as string);
        socket.on('close', () => s.autoShutdown.consoleClosed(status.id as string));
        vnc.on('data', (d) => socket.send(d));
        vnc.on('error', () => socket.close(1011, 'The VM display is not reachable'));
        vnc.on('close', () => socket.close(1000, 'The VM display closed'));
        socket.on('message', (d: Buffer) => vnc.write(d));
        socket.on('close', () => vnc.destroy());
      },
    );
    app.get(
      '/consoles/:ticket/serial',
      {
        websocket: true,
        config: { public: true },
        schema: { hide: true, params: TicketParams },
        preValidation: async (req) => {
          (req as unknown as { vmStatus: unknown }).vmStatus = await s.consoleTickets.redeem((req.params as { ticket: string }).ticket, 'serial');
        },
      },
      (socket, req) => {
        const status = (req as unknown as { vmStatus: { id: string; serialLog: string } }).vmStatus;
        const stop = followFile(status.serialLog, {
          tailBytes: 64 * 1024,
          onData: (text) => socket.send(text),
          stillWanted: async () => (await s.driver.status(status.id))?.state === 'Running',
          onEnd: () => socket.close(1000, 'The VM stopped'),
        });
        s.autoShutdown.consoleOpened(status.id);
        // Read-only: input from the client is ignored.
        socket.on('close', () => {
          stop();
          s.autoShutdown.consoleClosed(status.id);
        });
      },
    );
  };
}
