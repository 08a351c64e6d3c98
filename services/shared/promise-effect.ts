/**
 * The one way a promise-only library (pg, pg-copy-streams, the bulk loader) is called from Effect
 * code: a rejection fails the Effect with the error it is (its class, message and tag unchanged),
 * so callers and the CLI's outcome.ts see exactly what the library threw.
 */
import { Effect } from "effect"

export const fromPromise = <A>(work: () => Promise<A>): Effect.Effect<A, Error> =>
  Effect.tryPromise({ try: work, catch: (cause) => (cause instanceof Error ? cause : new Error(String(cause))) })
