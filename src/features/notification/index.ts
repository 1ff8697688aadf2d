/** The notification feature's door: its events, the published language other features read. */
export * from './events.ts';
