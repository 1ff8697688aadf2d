import type { FastifyReply, FastifyRequest } from 'fastify';
import { invalidInput } from '../../domain/errors.ts';
import type { Checkpoints } from '../projections/checkpoints.ts';

/** Where a query finds how far each read model is, and how long it may wait for one. */
export type ReadYourWrites = {
  readonly checkpoints: Checkpoints;
  /** How long a query waits for its read model to reach X-Min-Position. */
  readonly maxWaitMs: number;
};

const positionPattern = /^\d{1,18}$/;

/** The position a query must see, from X-Min-Position or ?minPosition=; undefined when none is asked. */
export function minPositionOf(request: FastifyRequest): number | undefined {
  const header = request.headers['x-min-position'];
  const query = (request.query as Record<string, unknown> | undefined)?.minPosition;
  const given = typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
  if (given === undefined) return undefined;
  if (!positionPattern.test(given))
    throw invalidInput([{ path: typeof header === 'string' ? 'X-Min-Position' : 'minPosition', message: 'must be a position: a whole number' }]);
  return Number(given);
}

/**
 * Read-your-writes: waits, at most `maxWaitMs`, until the read model holds `position`.
 * Past the bound the query answers with what the read model has and says so in
 * `X-Read-Model-Behind: true`. Whether the query asked for a position at all.
 */
export async function awaitPosition(
  { checkpoints, maxWaitMs }: ReadYourWrites,
  projection: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  const position = minPositionOf(request);
  if (position === undefined) return false;
  const reached = await checkpoints.waitFor(projection, position, maxWaitMs);
  if (!reached) reply.header('x-read-model-behind', 'true');
  return true;
}
