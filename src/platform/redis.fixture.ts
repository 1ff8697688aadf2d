/** The Redis server the integration tests use; they fail, never skip, when it is down. */
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
