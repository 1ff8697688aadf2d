import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Admin, findErrorBy } from '@platformatic/kafka';
import { Connection } from 'rabbitmq-client';
import type { Bus } from './bus.ts';
import { createKafkaBus } from './kafka-bus.ts';
import { consumerGroup } from './kafka-consumer-group.ts';
import { partitionCount } from './message.ts';
import { consumerExchange, createRabbitMqBus, partitionQueue } from './rabbitmq-bus.ts';

/** The RabbitMQ the integration tests use; they fail, never skip, when it is down. */
export const testAmqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** The Apache Kafka the integration tests use (`npm run kafka -- start`); they fail, never skip, when it is down. */
export const testKafkaBrokers = (process.env.TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/** Deletes a consumer's queues and exchanges, so that tests leave nothing bound behind. */
export async function deleteConsumerTopology(consumer: string, url = testAmqpUrl): Promise<void> {
  const connection = new Connection({ url, retryLow: 100, retryHigh: 500 });
  try {
    const channel = await connection.acquire();
    try {
      for (let partition = 0; partition < partitionCount; partition++) {
        await channel.queueDelete({ queue: partitionQueue(consumer, partition) });
      }
      await channel.queueDelete({ queue: partitionQueue(consumer, 'unrouted') });
      await channel.exchangeDelete({ exchange: consumerExchange(consumer) });
      await channel.exchangeDelete({ exchange: `${consumerExchange(consumer)}.unrouted` });
    } finally {
      await channel.close();
    }
  } finally {
    await connection.close();
  }
}

const run = promisify(execFile);

/**
 * A virtual host of its own on the local broker (made with rabbitmqctl), so that no other
 * run's queues or events mix in; dispose deletes it with everything in it.
 */
export async function openVirtualHost(url = testAmqpUrl): Promise<{ url: string; dispose: () => Promise<void> }> {
  const vhost = `mutuo-${randomUUID().slice(0, 8)}`;
  await run('rabbitmqctl', ['add_vhost', vhost]);
  const scoped = new URL(url);
  await run('rabbitmqctl', ['set_permissions', '-p', vhost, decodeURIComponent(scoped.username || 'guest'), '.*', '.*', '.*']);
  scoped.pathname = `/${encodeURIComponent(vhost)}`;
  return { url: scoped.toString(), dispose: () => run('rabbitmqctl', ['delete_vhost', vhost]).then(() => undefined) };
}

/**
 * A topic of its own on the test brokers (its groups are named after it), so that no other
 * run's events or groups mix in; made at once (unless a test wants the bus to make it), so
 * that a run without a broker fails here. dispose deletes it, after forgetConsumer deleted
 * the groups a test is done with.
 */
export async function openTestTopic({ create = true, brokers = testKafkaBrokers } = {}): Promise<{
  topic: string;
  forgetConsumer: (consumer: string) => Promise<void>;
  dispose: () => Promise<void>;
}> {
  const topic = `mutuo.test-${randomUUID().slice(0, 8)}.events`;
  const admin = new Admin({ clientId: 'mutuo-tests', bootstrapBrokers: brokers });
  try {
    if (create) await admin.createTopics({ topics: [topic], partitions: 16, replicas: -1 });
    else await admin.listTopics();
  } catch (error) {
    await admin.close();
    throw error;
  }
  return {
    topic,
    forgetConsumer: async (consumer) => {
      await admin.deleteGroups({ groups: [consumerGroup(topic, consumer)] }).catch((error: Error) => {
        if (!findErrorBy(error, 'apiId', 'GROUP_ID_NOT_FOUND')) throw error;
      });
    },
    dispose: async () => {
      await admin.deleteTopics({ topics: [topic] });
      await admin.close();
    },
  };
}

/**
 * The broker's bus that a test's child process is given by its environment: Apache Kafka
 * (KAFKA_BROKERS, on the topic KAFKA_TOPIC), RabbitMQ (AMQP_URL), or none.
 */
export async function brokerBusFromEnvironment(env: NodeJS.ProcessEnv, onError?: (error: unknown) => void): Promise<Bus | undefined> {
  if (env.KAFKA_BROKERS) {
    return createKafkaBus({ brokers: env.KAFKA_BROKERS.split(','), ...(env.KAFKA_TOPIC ? { topic: env.KAFKA_TOPIC } : {}), ...(onError ? { onError } : {}) });
  }
  if (env.AMQP_URL) return createRabbitMqBus({ url: env.AMQP_URL, ...(onError ? { onError } : {}) });
  return undefined;
}
