/**
 * Reports a dependency outage of the reader once when it starts and once when it ends (how long,
 * how many retries), never a line per attempt; and as metrics: the outage book
 * (shared/outage-book.ts) with explicit recovery. Several callers of one dependency (the Kinesis
 * lane senders) share one tracker: the outage starts with the first caller that fails and ends
 * when the last failing caller has recovered.
 */
import { makeOutageBook, type OutageBook } from "../shared/outage-book.ts"

export interface OutageReport {
  readonly dependency: string
  readonly state: "started" | "ended"
  readonly message: string
}

export class OutageTracker {
  private readonly book: OutageBook

  constructor(
    private readonly dependency: string,
    report: (r: OutageReport) => void
  ) {
    this.book = makeOutageBook({ wording: "inline", component: "reader", notify: ({ dependency, state, message }) => report({ dependency, state, message }) })
  }

  failed(reason: string, caller = ""): void {
    this.book.failed(this.dependency, { reason, caller })
  }

  recovered(caller = ""): void {
    this.book.recovered(this.dependency, caller)
  }
}
