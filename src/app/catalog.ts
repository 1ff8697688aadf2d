import { createEventCatalog } from '../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../platform/eventstore/event-definition.ts';
import { dataSubjectEventHistory } from '../features/data-subjects/data-subject.ts';
import { applicationEventHistory } from '../features/application/events.ts';
import { gatewayEventHistory } from '../features/bank-gateway/events.ts';
import { documentsEventHistory } from '../features/documents/events.ts';
import { notificationEventHistory } from '../features/notification/events.ts';
import { rateEventHistory } from '../features/rates/events.ts';
import { scoringEventHistory } from '../features/scoring/events.ts';

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
