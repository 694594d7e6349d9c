// The cold archive records where a file ends with an offset commit before it uploads the file, so a commit
// that did not happen must never look made. kafkajs 2.2.4 resolved consumer.commitOffsets() without
// committing once its consumer had stopped (it does while it restarts after losing the broker); the patch in
// patches/ makes it reject. Against the real Kafka.

import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { localServices, uniqueName } from '../support/local-services.js';

const services = localServices();

describe('kafkajs offset commits', () => {
  const kafka = new Kafka({ brokers: services.kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const topic = uniqueName('tmtest_commit');
  const groupId = uniqueName('tmtest_commit_group');

  afterAll(async () => {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('reject a commit made while the consumer stops with a batch in hand, and commit nothing', async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();
    const committed = async () =>
      (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions.find((p) => p.partition === 0);

    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let stopping: Promise<void> | undefined;
    const outcome = new Promise<{ after: unknown }>((resolve) => {
      void consumer.run({
        autoCommit: false,
        eachBatch: async () => {
          if (stopping) return;
          // While running, a commit is made.
          await consumer.commitOffsets([{ topic, partition: 0, offset: '1', metadata: 'cut:1' }]);
          // A consumer that stops (as it does when it loses the broker) waits for the batch in hand; a commit
          // made meanwhile is not sent.
          stopping = consumer.stop();
          const after = await consumer
            .commitOffsets([{ topic, partition: 0, offset: '2', metadata: 'cut:2' }])
            .then(
              () => 'resolved',
              (err: unknown) => err,
            );
          resolve({ after });
        },
      });
    });
    const { after } = await outcome;
    await stopping;
    await consumer.disconnect();
    expect(String(after)).toMatch(/not running; the offsets were not committed/);
    expect(await committed()).toMatchObject({ offset: '1', metadata: 'cut:1' });
  });
});
