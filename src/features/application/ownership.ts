import type { SqlQueryable } from '../../platform/sql/sql-client.ts';
import { applicationStreamId } from './events.ts';

/**
 * Who submitted an application (its first event's actor): whose it is. undefined when no
 * such application exists, null when it predates identities.
 */
export async function applicationSubmitter(db: SqlQueryable, applicationId: string): Promise<string | null | undefined> {
  const [first] = await db.query<{ actor: string | null }>(`SELECT metadata->>'actor' AS actor FROM mutuo_events WHERE stream_id = $1 AND stream_version = 1`, [
    applicationStreamId(applicationId),
  ]);
  return first === undefined ? undefined : first.actor;
}
