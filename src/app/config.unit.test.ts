import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkOutsideSystems, ConfigError, loadConfig } from './config.ts';

const production = {
  NODE_ENV: 'production',
  AUTH_JWKS_URL: 'https://id.bank.example/jwks',
  AUTH_ISSUER: 'https://id.bank.example',
  MUTUO_SUBJECT_DIGEST_SECRET: 'x'.repeat(32),
};
const outsideSystems = {
  BUREAU_CRIF_URL: 'https://crif.bank.example',
  BUREAU_EXPERIAN_URL: 'https://experian.bank.example',
  MAINFRAME_URL: 'tcp://mainframe.bank.example:7070',
  SMTP_URL: 'smtps://mail.bank.example:465',
};
const allServices = ['application', 'scoring', 'documents', 'bank-gateway', 'notification', 'projector', 'query'];

describe('configuration', () => {
  it('refuses, in production, to run a service without the outside systems it calls, naming each missing one', () => {
    for (const variable of Object.keys(outsideSystems)) {
      const config = loadConfig({ ...production, ...outsideSystems, [variable]: '' });
      assert.throws(
        () => checkOutsideSystems(config, allServices),
        (error: Error) => error instanceof ConfigError && error.message.includes(variable),
        variable,
      );
    }
    const none = loadConfig(production);
    assert.throws(() => checkOutsideSystems(none, ['scoring']), /BUREAU_CRIF_URL \(scoring\), BUREAU_EXPERIAN_URL \(scoring\) must be set/);
    assert.throws(() => checkOutsideSystems(none, ['bank-gateway']), /MAINFRAME_URL \(bank-gateway\)/);
    assert.throws(() => checkOutsideSystems(none, ['notification']), /SMTP_URL \(notification\)/);
    checkOutsideSystems(loadConfig({ ...production, ...outsideSystems }), allServices);
  });

  it('asks a process only for the outside systems of the services it runs', () => {
    const none = loadConfig(production);
    checkOutsideSystems(none, ['projector']);
    checkOutsideSystems(none, ['query', 'application', 'documents']);
    assert.throws(
      () => checkOutsideSystems(loadConfig({ ...production, SMTP_URL: outsideSystems.SMTP_URL }), ['notification', 'bank-gateway']),
      (error: Error) => /MAINFRAME_URL/.test(error.message) && !/SMTP_URL/.test(error.message),
    );
  });

  it('publishes on RabbitMQ or Apache Kafka when one is named, and refuses both at once', () => {
    assert.equal(loadConfig({}).broker, undefined);
    assert.deepEqual(loadConfig({ AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672' }).broker, { kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672' });
    assert.deepEqual(loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092' }).broker, {
      kind: 'kafka',
      brokers: ['kafka-1:9092', 'kafka-2:9092'],
      topic: 'mutuo.events',
      partitions: 16,
    });
    assert.deepEqual(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092', KAFKA_TOPIC: 'mutuo.staging.events', KAFKA_PARTITIONS: '48' }).broker, {
      kind: 'kafka',
      brokers: ['127.0.0.1:9092'],
      topic: 'mutuo.staging.events',
      partitions: 48,
    });
    assert.throws(() => loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092', KAFKA_TOPIC: 'events' }), /KAFKA_TOPIC must be mutuo\. followed by/);
    assert.throws(() => loadConfig({ KAFKA_BROKERS: 'kafka-1' }), /KAFKA_BROKERS must list host:port pairs/);
    assert.throws(() => loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092', KAFKA_PARTITIONS: '0' }), /KAFKA_PARTITIONS must be a whole number from 1/);
    assert.throws(
      () => loadConfig({ AMQP_URL: 'amqp://127.0.0.1', KAFKA_BROKERS: '127.0.0.1:9092' }),
      (error: Error) => error instanceof ConfigError && /AMQP_URL and KAFKA_BROKERS are both set/.test(error.message),
    );
  });

  it('lets the simulators stand in outside production', () => {
    checkOutsideSystems(loadConfig({}), allServices);
  });

  it('serves the metrics on a port of their own only when METRICS_PORT is set, on HOST unless METRICS_HOST says otherwise', () => {
    assert.equal(loadConfig({}).metrics, undefined);
    assert.deepEqual(loadConfig({ METRICS_PORT: '9464', HOST: '0.0.0.0' }).metrics, { port: 9464, host: '0.0.0.0' });
    assert.deepEqual(loadConfig({ METRICS_PORT: '9464', HOST: '0.0.0.0', METRICS_HOST: '10.0.0.5' }).metrics, { port: 9464, host: '10.0.0.5' });
    assert.throws(() => loadConfig({ METRICS_PORT: 'ninety' }), /METRICS_PORT/);
  });

  it("reads the read horizon watch's threshold and interval, 10 s and 2 s unless told, and names a wrong one", () => {
    assert.deepEqual(loadConfig({}).horizon, { stallMs: 10_000, checkMs: 2_000 });
    assert.deepEqual(loadConfig({ MUTUO_HORIZON_STALL_MS: '300', MUTUO_HORIZON_CHECK_MS: '50' }).horizon, { stallMs: 300, checkMs: 50 });
    assert.throws(() => loadConfig({ MUTUO_HORIZON_STALL_MS: '0' }), /MUTUO_HORIZON_STALL_MS must be a whole number from 1/);
    assert.throws(() => loadConfig({ MUTUO_HORIZON_CHECK_MS: 'often' }), /MUTUO_HORIZON_CHECK_MS/);
  });

  it("reads the simulators' settings, and names the variable that is wrong", () => {
    assert.deepEqual(loadConfig({ MAINFRAME_PORT: '0', MAINFRAME_HOST: '127.0.0.2', BUREAU_PORT: '9090' }).simulators, {
      mainframePort: 0,
      mainframeHost: '127.0.0.2',
      bureauPort: 9090,
    });
    assert.deepEqual(loadConfig({}).simulators, { mainframePort: 7070, mainframeHost: '127.0.0.1', bureauPort: undefined });
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ MAINFRAME_PORT: '70000' }, /MAINFRAME_PORT must be a whole number from 0 to 65535, got "70000"/],
      [{ MAINFRAME_PORT: 'abc' }, /MAINFRAME_PORT/],
      [{ BUREAU_PORT: '-1' }, /BUREAU_PORT/],
      [{ MAINFRAME_LATENCY_MS: '-5' }, /MAINFRAME_LATENCY_MS/],
      [{ MAINFRAME_LATENCY_MS: '1.5' }, /MAINFRAME_LATENCY_MS/],
      [{ MAINFRAME_TIMEOUT_RATE: '1.5' }, /MAINFRAME_TIMEOUT_RATE must be a number from 0 to 1, got "1.5"/],
      [{ MAINFRAME_REFUSAL_RATE: 'often' }, /MAINFRAME_REFUSAL_RATE/],
    ];
    for (const [env, message] of cases)
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
        JSON.stringify(env),
      );
  });

  it("finds the running platform for the operations commands at MUTUO_URL, else on this machine's PORT", () => {
    assert.deepEqual(loadConfig({ MUTUO_URL: 'http://mutuo.internal:8080', MUTUO_TOKEN: 'a-token' }).operations, {
      platformUrl: 'http://mutuo.internal:8080',
      token: 'a-token',
    });
    assert.deepEqual(loadConfig({ PORT: '3100' }).operations, { platformUrl: 'http://127.0.0.1:3100', token: undefined });
  });
});
