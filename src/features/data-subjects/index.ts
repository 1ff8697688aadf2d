/** The data subjects' door: a person's own stream (legal holds, erasure) and the erasure service and routes. */
export * from './data-subject.ts';
export { createErasureService, erasureRoutes, shredKeysQueue, type ErasureService } from './erasure.ts';
