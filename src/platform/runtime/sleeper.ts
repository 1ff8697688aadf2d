/**
 * The pause of a loop that follows work (new events, due jobs): `sleep` waits at most its
 * time and `wake` ends it at once. A wake that comes while the loop is awake (reading,
 * publishing) is kept, and makes the next sleep return at once: the work it announces may
 * have been committed after the loop's last look, and would otherwise wait a whole sleep.
 */
export type Sleeper = {
  readonly sleep: (ms: number) => Promise<void>;
  readonly wake: () => void;
};

export function createSleeper(): Sleeper {
  let woken = false;
  let end: (() => void) | undefined;
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        if (woken) {
          woken = false;
          resolve();
          return;
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          end = undefined;
          resolve();
        }
        end = done;
      }),
    wake: () => {
      if (end) end();
      else woken = true;
    },
  };
}
