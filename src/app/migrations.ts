/**
 * Where the platform's migrations are: each module keeps those of the tables it owns, and
 * one numbering runs through them all. The ones here, in app/, changed the tables of several
 * features at once; they were written before the tables' migrations lived with their owners.
 */
export const migrationFolders: readonly URL[] = [
  '../platform/eventstore/migrations/',
  '../platform/schemas/migrations/',
  '../platform/messaging/migrations/',
  '../platform/projections/migrations/',
  '../security/migrations/',
  '../privacy/migrations/',
  '../features/application/migrations/',
  '../features/documents/migrations/',
  '../features/notification/migrations/',
  '../features/bank-gateway/migrations/',
  './migrations/',
].map((folder) => new URL(folder, import.meta.url));
