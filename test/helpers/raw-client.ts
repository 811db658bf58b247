/**
 * A raw MQTT client over a TCP socket with mqtt-packet: for protocol tests that must send exactly
 * the bytes they choose and see exactly the packets the broker sends back.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type Packet } from 'mqtt-packet';

export class RawClient {
  readonly socket: Socket;
  readonly #packets: Packet[] = [];
  readonly #waiters: Array<() => void> = [];
  readonly closed: Promise<void>;
  readonly protocolVersion: number;
  #isClosed = false;

  private constructor(socket: Socket, protocolVersion: number) {
    this.socket = socket;
    this.protocolVersion = protocolVersion;
    const parser = mqtt.parser({ protocolVersion });
    parser.on('packet', (p: Packet) => {
      this.#packets.push(p);
      this.#wake();
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.#isClosed = true;
        this.#wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static open(port: number, protocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket, protocolVersion)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(packet: Packet): void {
    this.socket.write(mqtt.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  sendRaw(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet of type `cmd` (earlier packets of other types are skipped). */
  nextPacket<C extends Packet['cmd']>(cmd: C, timeoutMs = 3000): Promise<Extract<Packet, { cmd: C }>> {
    return new Promise((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true; // a timed-out waiter must not consume a later packet
        reject(new Error(`no ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (expired) return;
        const i = this.#packets.findIndex((p) => p.cmd === cmd);
        if (i >= 0) {
          clearTimeout(timer);
          resolve(this.#packets.splice(0, i + 1)[i] as Extract<Packet, { cmd: C }>);
        } else if (this.#isClosed) {
          clearTimeout(timer);
          reject(new Error(`connection closed before ${cmd}`));
        } else {
          this.#waiters.push(check);
        }
      };
      check();
    });
  }

  /** The next packet, whatever its type. */
  nextAny(timeoutMs = 3000): Promise<Packet> {
    return new Promise((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        reject(new Error(`no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (expired) return;
        const p = this.#packets.shift();
        if (p !== undefined) {
          clearTimeout(timer);
          resolve(p);
        } else if (this.#isClosed) {
          clearTimeout(timer);
          reject(new Error('connection closed'));
        } else {
          this.#waiters.push(check);
        }
      };
      check();
    });
  }

  /** Resolves true if the broker closes the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** CONNECT (3.1.1 unless told) and wait for CONNACK. */
  async handshake(clientId: string, extra: Partial<mqtt.IConnectPacket> = {}): Promise<mqtt.IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.protocolVersion as 4 | 5, clean: true, keepalive: 0, clientId, ...extra });
    return this.nextPacket('connack');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
