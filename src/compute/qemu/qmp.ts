// A small QMP (QEMU Machine Protocol) client over a unix socket: the greeting,
// capabilities negotiation, commands with their answers, and events.
import { connect, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: unknown;
}

export class QmpError extends Error {
  override name = 'QmpError';
}

export class QmpClient {
  private buffer = '';
  private readonly waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  readonly events: QmpEvent[] = [];
  private closed = false;

  private constructor(private readonly socket: Socket) {}

  /** Connects and negotiates capabilities; fails after `timeoutMs`. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new QmpError(`no QMP answer on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new QmpError(`cannot reach QMP on ${path}: ${err.message}`));
      });
    });
    const client = new QmpClient(socket);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => client.onData(d));
    socket.on('close', () => client.onClose());
    socket.on('error', () => client.onClose());
    await client.next(); // greeting
    await client.execute('qmp_capabilities');
    return client;
  }

  private next(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed) reject(new QmpError('QMP connection closed'));
      else this.waiting.push({ resolve, reject });
    });
  }

  private onData(text: string): void {
    this.buffer += text;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { event?: string; data?: unknown; QMP?: unknown; return?: unknown; error?: { desc: string } };
      if (msg.event) {
        this.events.push({ event: msg.event, data: msg.data });
        continue;
      }
      const w = this.waiting.shift();
      if (!w) continue;
      if (msg.error) w.reject(new QmpError(msg.error.desc));
      else w.resolve(msg.return ?? msg.QMP);
    }
  }

  private onClose(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new QmpError('QMP connection closed'));
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const answer = this.next();
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    return (await answer) as T;
  }

  close(): void {
    this.socket.destroy();
  }
}
