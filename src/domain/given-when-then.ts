import assert from 'node:assert/strict';
import { replay, type Decider } from './decider.ts';
import { DomainError, type DomainErrorKind } from './errors.ts';

export type Outcome<Event, State> = {
  /** Asserts the command yields exactly these events; returns the state they lead to. */
  readonly then: (expected: readonly Event[]) => State;
  /** Asserts the command is refused with this kind and code and, if given, exactly these field paths. */
  readonly thenFails: (kind: DomainErrorKind, code: string, paths?: readonly string[]) => DomainError;
};

export type Scenario<Command, Event, State, Context> = {
  /** Decides the command with the default context, overridden by `context`. */
  readonly when: (command: Command, context?: Partial<Context>) => Outcome<Event, State>;
};

/**
 * Business rules as given/when/then over any decider:
 * `given([submitted]).when(lockRate(30), { now }).then([rateLocked])`.
 */
export function forDecider<Command, Event, State, Context extends object>(
  decider: Decider<Command, Event, State, Context>,
  defaultContext: Context,
): (history: readonly Event[]) => Scenario<Command, Event, State, Context> {
  return (history) => {
    const state = replay(decider, history);
    return {
      when: (command, context = {}) => {
        const decide = (): readonly Event[] => decider.decide(command, state, { ...defaultContext, ...context });
        return {
          then: (expected) => {
            let events: readonly Event[];
            try {
              events = decide();
            } catch (error) {
              if (error instanceof DomainError) {
                assert.fail(`expected events, but the command was refused: ${describe(error)}`);
              }
              throw error;
            }
            assert.deepEqual(events, expected);
            return replay({ initialState: state, evolve: decider.evolve }, events);
          },
          thenFails: (kind, code, paths) => {
            let events: readonly Event[];
            try {
              events = decide();
            } catch (error) {
              if (!(error instanceof DomainError)) throw error;
              assert.deepEqual({ kind: error.kind, code: error.code }, { kind, code }, describe(error));
              if (paths !== undefined) {
                assert.deepEqual(uniqueSorted(error.errors.map((fieldError) => fieldError.path)), uniqueSorted(paths), describe(error));
              }
              return error;
            }
            return assert.fail(`expected ${kind} ${code}, but the command yielded ${JSON.stringify(events)}`);
          },
        };
      },
    };
  };
}

function describe(error: DomainError): string {
  const fields = error.errors.map((fieldError) => `${fieldError.path}: ${fieldError.message}`).join('; ');
  return `${error.kind} ${error.code}: ${error.message}${fields ? ` [${fields}]` : ''}`;
}

function uniqueSorted(paths: readonly string[]): string[] {
  return [...new Set(paths)].sort();
}
