/**
 * MQTT 5.0 CONNECT/CONNACK: what the broker advertises, assigned client ids, server keep alive,
 * response information, and server-initiated DISCONNECT with a reason code.
 */
import test from 'ava';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt';
import mqtt from 'mqtt';
import { Broker } from '../../src/server/broker.js';
import { connect5, startBroker, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

async function connack(port: number, opts: mqtt.IClientOptions = {}): Promise<{ client: mqtt.MqttClient; packet: IConnackPacket }> {
  const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0, ...opts });
  const packet = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, packet };
}

test('advertises its limits and capabilities in CONNACK', async (t) => {
  const broker = await startBroker(t, { maxPacketBytes: 65536, receiveMaximum: 100, topicAliasMaximum: 16 });
  const { client, packet } = await connack(broker.port, { clientId: 'caps' });
  t.teardown(() => client.end(true));
  const p = packet.properties ?? {};
  t.is(packet.reasonCode, 0);
  t.is(p.receiveMaximum, 100);
  t.is(p.maximumPacketSize, 65536);
  t.is(p.topicAliasMaximum, 16);
  t.is(p.retainAvailable, true);
  t.is(p.wildcardSubscriptionAvailable, true);
  t.is(p.subscriptionIdentifiersAvailable, true);
  t.is(p.sharedSubscriptionAvailable, true);
  t.is(p.maximumQoS, undefined, 'QoS 2 is supported, so Maximum QoS is absent');
  t.is(p.assignedClientIdentifier, undefined);
});

test('assigns and announces a client id for an empty one [MQTT-3.2.2-16]', async (t) => {
  const broker = await startBroker(t);
  const { client, packet } = await connack(broker.port, { clientId: '' });
  t.teardown(() => client.end(true));
  t.regex(packet.properties?.assignedClientIdentifier ?? '', /^mqlog-/);
});

test('announces Maximum QoS when configured below 2 and refuses a PUBLISH above it [MQTT-3.2.2-11]', async (t) => {
  const broker = await startBroker(t, { maxQos: 1 });
  const { client, packet } = await connack(broker.port);
  t.teardown(() => client.end(true));
  t.is(packet.properties?.maximumQoS, 1);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('qos2', { protocolVersion: 5 });
  raw.send({ cmd: 'publish', topic: 'q', payload: Buffer.from('x'), qos: 2, messageId: 1, retain: false, dup: false });
  const d = await raw.nextPacket('disconnect');
  t.is(d.reasonCode, 0x9b);
});

test('imposes Server Keep Alive when the client asks for none or too long', async (t) => {
  const broker = await startBroker(t, { maxKeepaliveSec: 5 });
  const { client, packet } = await connack(broker.port, { keepalive: 0 });
  t.teardown(() => client.end(true));
  t.is(packet.properties?.serverKeepAlive, 5);
  const second = await connack(broker.port, { keepalive: 3 });
  t.teardown(() => second.client.end(true));
  t.is(second.packet.properties?.serverKeepAlive, undefined, 'a keepalive within the limit is kept');
});

test('answers Request Response Information with a response topic basis', async (t) => {
  const broker = await startBroker(t);
  const { client, packet } = await connack(broker.port, { clientId: 'rr', properties: { requestResponseInformation: true } });
  t.teardown(() => client.end(true));
  t.is(packet.properties?.responseInformation, 'mqlog/response/rr');
});

test('refuses an unsupported authentication method with 0x8C', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  const ack = await raw.handshake('auth', { protocolVersion: 5, properties: { authenticationMethod: 'KERBEROS' } });
  t.is(ack.reasonCode, 0x8c);
  t.true(await raw.closedWithin(2000));
});

test('tells a taken-over client why with DISCONNECT 0x8E', async (t) => {
  const broker = await startBroker(t);
  const first = await connect5(t, broker.port, { clientId: 'dup-id' });
  const disconnected = new Promise<IDisconnectPacket>((resolve) => first.once('disconnect', resolve));
  await connect5(t, broker.port, { clientId: 'dup-id' });
  t.is((await disconnected).reasonCode, 0x8e);
});

test('tells a silent client DISCONNECT 0x8D at 1.5 × keepalive', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('sleepy', { protocolVersion: 5, keepalive: 1 });
  const d = await raw.nextPacket('disconnect', 3000);
  t.is(d.reasonCode, 0x8d);
});

test('tells clients DISCONNECT 0x8B on shutdown', async (t) => {
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0 });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('bye', { protocolVersion: 5 });
  const closing = broker.close();
  const d = await raw.nextPacket('disconnect');
  await closing;
  t.is(d.reasonCode, 0x8b);
});
