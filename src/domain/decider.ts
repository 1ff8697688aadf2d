/**
 * An aggregate as pure functions: `decide` turns a command into events (or throws a
 * DomainError) given the current state and what the outside world lends it (clock,
 * ids, reference data); `evolve` folds one event into the state.
 */
export type Decider<Command, Event, State, Context> = {
  readonly initialState: State;
  readonly decide: (command: Command, state: State, context: Context) => readonly Event[];
  readonly evolve: (state: State, event: Event) => State;
};

export function replay<Event, State>(decider: Pick<Decider<never, Event, State, never>, 'initialState' | 'evolve'>, events: Iterable<Event>): State {
  let state = decider.initialState;
  for (const event of events) state = decider.evolve(state, event);
  return state;
}
