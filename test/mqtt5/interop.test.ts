/**
 * 3.1.1 and 5.0 clients on the same topics: QoS 0/1/2 both ways, retained messages and Wills.
 * A 3.1.1 subscriber gets 5.0 messages without properties; a 5.0 subscriber gets 3.1.1 ones.
 */
import test from 'ava';
import { collect, connect, connect5, startBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

for (const qos of [0, 1, 2] as const) {
  test(`a 3.1.1 publisher reaches a 5.0 subscriber and the reverse at QoS ${qos}`, async (t) => {
    const broker = await startBroker(t);
    const v3 = await connect(t, broker.port);
    const v5 = await connect5(t, broker.port);
    const in3 = collect(v3);
    const in5 = collect(v5);
    await v3.subscribeAsync('mix/#', { qos });
    await v5.subscribeAsync('mix/#', { qos });
    await v3.publishAsync('mix/from3', 'three', { qos });
    await v5.publishAsync('mix/from5', 'five', { qos, properties: { userProperties: { k: 'v' }, contentType: 'text/plain' } });
    const got3 = await in3.waitFor(2);
    const got5 = await in5.waitFor(2);
    t.deepEqual(got3.map((m) => `${m.topic}=${m.payload}@${m.qos}`).sort(), [`mix/from3=three@${qos}`, `mix/from5=five@${qos}`]);
    t.deepEqual(got5.map((m) => `${m.topic}=${m.payload}@${m.qos}`).sort(), [`mix/from3=three@${qos}`, `mix/from5=five@${qos}`]);
    const fromFive = got5.find((m) => m.topic === 'mix/from5');
    t.deepEqual(fromFive?.properties?.userProperties, { k: 'v' });
    t.is(got3.find((m) => m.topic === 'mix/from5')?.properties, undefined, '3.1.1 has no properties');
  });
}

test('retained messages cross versions with their properties kept for 5.0', async (t) => {
  const broker = await startBroker(t);
  const v5pub = await connect5(t, broker.port);
  await v5pub.publishAsync('ret/five', 'r5', { qos: 1, retain: true, properties: { contentType: 'x/y' } });
  const v3pub = await connect(t, broker.port);
  await v3pub.publishAsync('ret/three', 'r3', { qos: 1, retain: true });
  const v3 = await connect(t, broker.port);
  const v5 = await connect5(t, broker.port);
  const in3 = collect(v3);
  const in5 = collect(v5);
  await v3.subscribeAsync('ret/#', { qos: 1 });
  await v5.subscribeAsync('ret/#', { qos: 1 });
  const got3 = await in3.waitFor(2);
  const got5 = await in5.waitFor(2);
  t.true(got3.every((m) => m.retain));
  t.true(got5.every((m) => m.retain));
  t.is(got5.find((m) => m.topic === 'ret/five')?.properties?.contentType, 'x/y');
});

test('Wills cross versions: a 5.0 client sees a 3.1.1 Will and the reverse', async (t) => {
  const broker = await startBroker(t);
  const v3 = await connect(t, broker.port);
  const v5 = await connect5(t, broker.port);
  const in3 = collect(v3);
  const in5 = collect(v5);
  await v3.subscribeAsync('will/#', { qos: 1 });
  await v5.subscribeAsync('will/#', { qos: 1 });
  const dying3 = await RawClient.open(broker.port, 4);
  await dying3.handshake('d3', { will: { topic: 'will/3', payload: Buffer.from('w3'), qos: 1, retain: false } });
  const dying5 = await RawClient.open(broker.port, 5);
  await dying5.handshake('d5', { protocolVersion: 5, will: { topic: 'will/5', payload: Buffer.from('w5'), qos: 1, retain: false, properties: { contentType: 'c' } } });
  dying3.destroy();
  dying5.destroy();
  const got3 = await in3.waitFor(2);
  const got5 = await in5.waitFor(2);
  t.deepEqual(got3.map((m) => m.payload).sort(), ['w3', 'w5']);
  t.deepEqual(got5.map((m) => m.payload).sort(), ['w3', 'w5']);
  t.is(got5.find((m) => m.topic === 'will/5')?.properties?.contentType, 'c');
});
