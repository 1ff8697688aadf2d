import type { StoredEvent } from '../../platform/eventstore/types.ts';
import { dataSubjectEventCatalog, idsIn, PersonalDataErased } from '../data-subjects/index.ts';
import { applicationEventCatalog, type ApplicationEvent } from './events.ts';

export type ApplicationFact = {
  readonly applicationId: string;
  readonly event: ApplicationEvent;
  readonly stored: StoredEvent;
};

/** Stored application events, upcast to their latest version, with the application they are about. */
export function decodeApplicationEvents(events: readonly StoredEvent[]): ApplicationFact[] {
  return events
    .filter((stored) => stored.streamId.startsWith('application-'))
    .map((stored) => ({
      applicationId: stored.streamId.slice('application-'.length),
      event: applicationEventCatalog.decode(stored.type, stored.schemaVersion, stored.data) as ApplicationEvent,
      stored,
    }));
}

/**
 * The applicant of a submission as it is stored, sealed: what a read model keeps of them,
 * so that their erasure leaves its copy unreadable, with nothing to scrub. A submission
 * stored unsealed would be copied in the clear: it is refused instead.
 */
export function sealedApplicant(stored: StoredEvent): { readonly $sealed: string } {
  const applicant = stored.sealed?.applicant;
  if (!applicant) throw new Error(`${stored.type} ${stored.eventId} carries no sealed applicant: a read model keeps no personal data in the clear`);
  return applicant;
}

/** The facts grouped by application, in the order they happened. */
export function byApplication(facts: readonly ApplicationFact[]): Map<string, ApplicationFact[]> {
  const groups = new Map<string, ApplicationFact[]>();
  for (const fact of facts) {
    const group = groups.get(fact.applicationId);
    if (group) group.push(fact);
    else groups.set(fact.applicationId, [fact]);
  }
  return groups;
}

/** The applications whose applicant's personal data the batch's erasures destroyed. */
export function erasedApplications(events: readonly StoredEvent[]): string[] {
  const erased = new Set<string>();
  for (const stored of events) {
    if (stored.type !== PersonalDataErased.type) continue;
    const event = dataSubjectEventCatalog.decode(stored.type, stored.schemaVersion, stored.data);
    if (event.type === 'PersonalDataErased') for (const id of idsIn(event.data.streams, 'application-')) erased.add(id);
  }
  return [...erased];
}
