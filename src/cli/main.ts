import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config.ts';
import { openPlatform } from './platform.ts';

const usage = `usage: mutuo <command>

commands:
  start    run the whole platform in one process (HTTP API, services)

configuration comes from environment variables; see the README.`;

async function start(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  const platform = await openPlatform(config, logger);
  const url = await platform.server.listen({ port: config.port, host: config.host });
  logger.info(`Mutuo is running on ${platform.database}: ${url} (API docs at ${url}/docs)`);

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

const commands: Record<string, () => Promise<void>> = { start };

const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error(usage);
  process.exit(2);
}
command().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `configuration: ${error.message}` : error);
  process.exit(1);
});
