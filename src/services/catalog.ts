import { createEventCatalog } from '../eventstore/event-catalog.ts';
import type { LatestEventOf } from '../eventstore/event-definition.ts';
import { dataSubjectEventHistory } from '../privacy/data-subject.ts';
import { applicationEventHistory } from './application/events.ts';
import { gatewayEventHistory } from './bank-gateway/events.ts';
import { documentsEventHistory } from './documents/events.ts';
import { notificationEventHistory } from './notification/events.ts';
import { rateEventHistory } from './rates/events.ts';
import { scoringEventHistory } from './scoring/events.ts';

/** Every version of every event type of every service: what the schema registry holds. */
export const platformEventHistory = [
  ...applicationEventHistory,
  ...scoringEventHistory,
  ...documentsEventHistory,
  ...gatewayEventHistory,
  ...notificationEventHistory,
  ...rateEventHistory,
  ...dataSubjectEventHistory,
] as const;

/** Reads any service's events, of any stored version, as their latest version. */
export const platformEventCatalog = createEventCatalog(platformEventHistory);

/** Any service's event at its latest version: narrowing on `type` narrows `data`. */
export type PlatformEvent = LatestEventOf<typeof platformEventHistory>;
export type PlatformEventOf<T extends PlatformEvent['type']> = Extract<PlatformEvent, { type: T }>;
