import { openTestPglite } from '../sql/testing.ts';
import { createInProcessBus } from './in-process-bus.ts';
import { describeMessaging } from './messaging.contract.ts';

describeMessaging('in-process bus on PGlite', async () => {
  const database = await openTestPglite();
  const bus = createInProcessBus();
  return {
    database,
    bus,
    forgetConsumer: async (name) => bus.forget(name),
    dispose: async () => {
      await bus.close();
      await database.dispose();
    },
  };
});
