// KafkaJS client for the sluice compatibility suite.
//
//   node client.js produce BROKER TOPIC CODEC COUNT   -> {"acked": n, "errors": [...]}
//   node client.js consume BROKER TOPIC COUNT         -> one JSON object per record
//   node client.js group BROKER TOPIC GROUP SESSION_MS -> one consumer-group member
//     printing the JSON event lines described in test/compat/group_test.go
//     until SIGTERM
//
// KafkaJS ships gzip only; snappy, lz4 and zstd need codec plugins that are
// not part of the package, so the suite drives none and gzip.
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [, , mode, broker, topic, a, b] = process.argv;
const kafka = new Kafka({ clientId: 'sluice-compat', brokers: [broker], logLevel: logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 100 } });

async function produce(codec, count) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const compression = codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  let acked = 0;
  const errors = [];
  for (let start = 0; start < count; start += 500) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + 500); i++) {
      messages.push({ key: `k-${codec}-${i}`, value: `v-${codec}-${i}-${'sluice'.repeat(8)}`,
        headers: { idx: String(i), codec } });
    }
    try {
      await producer.send({ topic, acks: -1, compression, messages });
      acked += messages.length;
    } catch (e) {
      errors.push(String(e));
    }
  }
  await producer.disconnect();
  console.log(JSON.stringify({ acked, errors: errors.slice(0, 5) }));
}

async function consume(count) {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: 'compat-kafkajs-' + Date.now() });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  const lines = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${n} of ${count} in 60s`)), 60000);
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const h = {};
        for (const [k, v] of Object.entries(message.headers || {})) h[k] = v.toString();
        lines.push(JSON.stringify({ p: partition, o: Number(message.offset), k: message.key.toString(),
          v: message.value.toString(), h }));
        n++;
        if (n >= count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  process.stdout.write(lines.join('\n') + '\n');
  void offsets;
}

async function group(groupId, sessionMs) {
  const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
  const consumer = kafka.consumer({ groupId, sessionTimeout: sessionMs,
    heartbeatInterval: Math.floor(sessionMs / 6), rebalanceTimeout: 2 * sessionMs });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    emit({ ev: 'assign', parts: [...(e.payload.memberAssignment[topic] || [])].sort((x, y) => x - y) });
  });
  consumer.on(consumer.events.REBALANCING, () => emit({ ev: 'assign', parts: [] }));
  process.on('SIGTERM', () => {
    consumer.disconnect().then(() => process.exit(0), () => process.exit(1));
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const o = Number(message.offset);
      emit({ ev: 'rec', p: partition, o });
      await consumer.commitOffsets([{ topic, partition, offset: String(o + 1) }]);
      emit({ ev: 'commit', p: partition, o: o + 1 });
    },
  });
}

(async () => {
  if (mode === 'produce') await produce(a, Number(b));
  else if (mode === 'group') await group(a, Number(b));
  else await consume(Number(a));
})().catch((e) => { console.error(e); process.exit(1); });
