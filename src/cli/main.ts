import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config.ts';
import { deadLetterCommand, UsageError } from './dlq.ts';
import { openPlatform } from './platform.ts';

const usage = `usage: mutuo <command>

commands:
  start    run the whole platform in one process (HTTP API, outbox relay, consumers)
  dlq      list, show, redrive or discard dead letters (mutuo dlq for details)

configuration comes from environment variables; see the README.`;

async function start(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  const platform = await openPlatform(config, logger);
  const url = await platform.server.listen({ port: config.port, host: config.host });
  logger.info(`Mutuo is running on ${platform.database} and ${platform.bus}: ${url} (API docs at ${url}/docs)`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info(`${signal}: finishing requests in flight and closing`);
    await platform.close();
    process.exit(0);
  };
  process.on('SIGINT', (signal) => void shutdown(signal));
  process.on('SIGTERM', (signal) => void shutdown(signal));
}

async function dlq(): Promise<void> {
  const baseUrl = process.env.MUTUO_URL || `http://127.0.0.1:${process.env.PORT || 3000}`;
  console.log(await deadLetterCommand(process.argv.slice(3), baseUrl));
}

const commands: Record<string, () => Promise<void>> = { start, dlq };

const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error(usage);
  process.exit(2);
}
command().catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error(error instanceof ConfigError ? `configuration: ${error.message}` : error instanceof Error ? error.message : error);
  process.exit(1);
});
