/**
 * The Application feature's door: what the other features may use of it. Its events are
 * its published language; the rest is what a feature reading an application's stream
 * needs (the decider to replay it, who submitted it).
 */
export * from './events.ts';
export { applicationDecider, type ApplicationState, type ApplicationStatus } from './decider.ts';
export { toApplicationEvent } from './service.ts';
export { applicationSubmitter } from './ownership.ts';
