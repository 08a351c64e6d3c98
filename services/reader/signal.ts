/**
 * "Something changed": plain code notifies, fibers wait until their condition holds.
 * A waiter closes the latch before it checks its condition, so a notification between the
 * check and the wait is never lost.
 */
import { Effect, Latch } from "effect"

export class Signal {
  private readonly latch = Latch.makeUnsafe(false)

  notify(): void {
    this.latch.openUnsafe()
  }

  /** Waits for the next notification. */
  get next(): Effect.Effect<void> {
    const latch = this.latch
    return Effect.suspend(() => {
      latch.closeUnsafe()
      return latch.await
    })
  }

  /** Waits until `condition()` holds, re-checking after every notification. */
  until(condition: () => boolean): Effect.Effect<void> {
    const latch = this.latch
    return Effect.gen(function* () {
      for (;;) {
        latch.closeUnsafe()
        if (condition()) return
        yield* latch.await
      }
    })
  }
}
