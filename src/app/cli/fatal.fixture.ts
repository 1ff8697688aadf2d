// A process with the last-resort policy, and one fault, named by its first argument: an error
// thrown where nothing catches it, a failed promise nobody awaits, or an 'error' event that
// has a listener (which must not end it).
import { EventEmitter } from 'node:events';
import { createLogger } from '../../platform/logger.ts';
import { exitOnUnhandledErrors } from './fatal.ts';

exitOnUnhandledErrors(createLogger('info'));
const fault = process.argv[2];
if (fault === 'throw') {
  setTimeout(() => {
    throw new Error('a fault nobody foresaw');
  }, 10);
} else if (fault === 'reject') {
  void Promise.reject(new Error('a promise nobody awaited'));
} else if (fault === 'heard') {
  const connection = new EventEmitter();
  connection.on('error', (error: Error) => console.log(JSON.stringify({ heard: error.message })));
  connection.emit('error', new Error('read ECONNRESET'));
  setTimeout(() => console.log(JSON.stringify({ still: 'running' })), 50);
} else {
  throw new Error(`unknown fault ${fault}`);
}
