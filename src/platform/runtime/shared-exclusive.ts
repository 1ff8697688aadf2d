/**
 * A lock held by many at once (shared) or by one alone (exclusive), granted in the order it
 * is asked for: a shared request behind a waiting exclusive one waits too, so that the
 * exclusive one is not starved by a steady flow of shared ones.
 */
export type SharedExclusiveLock = {
  readonly shared: <T>(work: () => Promise<T>) => Promise<T>;
  readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>;
};

type Mode = 'shared' | 'exclusive';

export function createSharedExclusiveLock(): SharedExclusiveLock {
  const waiting: { readonly mode: Mode; readonly grant: () => void }[] = [];
  let sharedHolders = 0;
  let exclusiveHeld = false;

  function grantWhatCan(): void {
    while (waiting.length > 0 && !exclusiveHeld) {
      const next = waiting[0]!;
      if (next.mode === 'exclusive' && sharedHolders > 0) return;
      waiting.shift();
      if (next.mode === 'exclusive') exclusiveHeld = true;
      else sharedHolders++;
      next.grant();
    }
  }

  async function hold<T>(mode: Mode, work: () => Promise<T>): Promise<T> {
    await new Promise<void>((grant) => {
      waiting.push({ mode, grant });
      grantWhatCan();
    });
    try {
      return await work();
    } finally {
      if (mode === 'exclusive') exclusiveHeld = false;
      else sharedHolders--;
      grantWhatCan();
    }
  }

  return { shared: (work) => hold('shared', work), exclusive: (work) => hold('exclusive', work) };
}
