/**
 * Test helpers: a broker on 127.0.0.1 port 0 with a fresh temp data dir (torn down with the test),
 * and an `mqtt` npm client connected to it.
 */
import type { ExecutionContext } from 'ava';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { BrokerOptions } from '../../src/config.js';
import { Broker } from '../../src/server/broker.js';

export async function tempDir(t: ExecutionContext, prefix = 'mqlog-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The files under `dir` this process holds descriptors on (one entry per descriptor). */
export async function fdsUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(`${dir}/`)) out.push(target);
  }
  return out;
}

export async function startBroker(t: ExecutionContext, opts: BrokerOptions = {}): Promise<Broker> {
  const dataDir = opts.dataDir ?? (await tempDir(t));
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, sysIntervalSec: 0, ...opts, dataDir });
  t.teardown(() => broker.close());
  return broker;
}

/** Connects a 5.0 client. */
export function connect5(t: ExecutionContext, port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  return connect(t, port, { protocolVersion: 5, ...opts });
}

export async function connect(t: ExecutionContext, port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
  // collect from the first packet: messages can arrive in the same chunk as CONNACK
  collect(client);
  t.teardown(() => new Promise<void>((r) => client.end(true, {}, () => r())));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
  properties: IPublishPacket['properties'];
}

export interface Inbox {
  messages: Received[];
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
}

const inboxes = new WeakMap<MqttClient, Inbox>();

/** Collects messages; `waitFor(n)` resolves once n have arrived (or rejects after `timeoutMs`). */
export function collect(client: MqttClient): Inbox {
  const existing = inboxes.get(client);
  if (existing !== undefined) return existing;
  const messages: Received[] = [];
  const waiters: Array<() => void> = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup, properties: packet.properties });
    for (const w of waiters.splice(0)) w();
  });
  const inbox: Inbox = {
    messages,
    waitFor(n, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out with ${messages.length}/${n} messages: ${JSON.stringify(messages)}`)), timeoutMs);
        const check = () => {
          if (messages.length >= n) {
            clearTimeout(timer);
            resolve(messages);
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
  };
  inboxes.set(client, inbox);
  return inbox;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
