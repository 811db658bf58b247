/**
 * MQTT 5 enhanced authentication: the AUTH exchange before CONNACK with the built-in
 * MQLOG-CHALLENGE method, refusals, and re-authentication on a live connection.
 */
import test, { type ExecutionContext } from 'ava';
import { answerChallenge, challengeResponseAuth } from '../../src/auth/auth-method.js';
import { Broker } from '../../src/server/broker.js';
import { collect, connect5, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

const SECRET = Buffer.from('s3cret-for-alice');
const METHOD = 'MQLOG-CHALLENGE';

async function authBroker(t: ExecutionContext): Promise<Broker> {
  const method = challengeResponseAuth((user) => (user === 'alice' ? SECRET : undefined));
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0 }, undefined, { authMethods: [method] });
  t.teardown(() => broker.close());
  return broker;
}

async function startAuth(port: number, username: string): Promise<{ raw: RawClient; challenge: Buffer }> {
  const raw = await RawClient.open(port, 5);
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: `auth-${username}`, username, properties: { authenticationMethod: METHOD } });
  const auth = await raw.nextPacket('auth');
  return { raw, challenge: auth.properties?.authenticationData as Buffer };
}

test('completes the challenge-response exchange before CONNACK', async (t) => {
  const broker = await authBroker(t);
  const { raw, challenge } = await startAuth(broker.port, 'alice');
  t.teardown(() => raw.destroy());
  t.is(challenge.length, 16);
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answerChallenge(SECRET, challenge) } });
  const connack = await raw.nextPacket('connack');
  t.is(connack.reasonCode, 0);
  t.is(connack.properties?.authenticationMethod, METHOD);
  // and the connection works
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'authed', qos: 0 }] });
  t.deepEqual((await raw.nextPacket('suback')).granted, [0]);
});

test('refuses a wrong answer with CONNACK 0x87', async (t) => {
  const broker = await authBroker(t);
  const { raw } = await startAuth(broker.port, 'alice');
  t.teardown(() => raw.destroy());
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: Buffer.alloc(32) } });
  const connack = await raw.nextPacket('connack');
  t.is(connack.reasonCode, 0x87);
  t.true(await raw.closedWithin(2000));
});

test('refuses an unknown user with CONNACK 0x87, without a challenge', async (t) => {
  const broker = await authBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'mallory', username: 'mallory', properties: { authenticationMethod: METHOD } });
  t.is((await raw.nextPacket('connack')).reasonCode, 0x87);
});

test('a packet other than AUTH during the exchange is a protocol error [MQTT-4.12.0-4]', async (t) => {
  const broker = await authBroker(t);
  const { raw } = await startAuth(broker.port, 'alice');
  t.teardown(() => raw.destroy());
  raw.send({ cmd: 'pingreq' });
  t.true(await raw.closedWithin(2000));
});

test('re-authenticates a live connection, and disconnects with 0x87 when that fails', async (t) => {
  const broker = await authBroker(t);
  const { raw, challenge } = await startAuth(broker.port, 'alice');
  t.teardown(() => raw.destroy());
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answerChallenge(SECRET, challenge) } });
  await raw.nextPacket('connack');
  raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
  const again = await raw.nextPacket('auth');
  t.is(again.reasonCode, 0x18);
  const fresh = again.properties?.authenticationData as Buffer;
  t.false(fresh.equals(challenge), 'a new challenge each time');
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answerChallenge(SECRET, fresh) } });
  t.is((await raw.nextPacket('auth')).reasonCode, 0x00);
  // a failed re-authentication ends the connection
  raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
  await raw.nextPacket('auth');
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: Buffer.alloc(32, 1) } });
  t.is((await raw.nextPacket('disconnect')).reasonCode, 0x87);
});

test('clients without an authentication method still connect as before', async (t) => {
  const broker = await authBroker(t);
  const client = await connect5(t, broker.port);
  await client.subscribeAsync('plain', { qos: 1 });
  await client.publishAsync('plain', 'ok', { qos: 1 });
  t.is((await collect(client).waitFor(1))[0]?.payload, 'ok');
});
