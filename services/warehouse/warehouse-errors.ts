/** Which warehouse errors are worth retrying: the same classification for live apply and replay. */
import { Effect, Schema } from "effect"

/** SQLSTATE classes worth retrying: connection, resources, operator intervention, serialization/deadlock. */
export const isTransientWarehouseError = (error: unknown): boolean => {
  const e = error as { code?: string; message?: string }
  const code = e?.code ?? ""
  if (/^(08|53|57|40)/.test(code) || code === "55P03") return true
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"].includes(code)) return true
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e?.message ?? "")
}

/** The warehouse cannot be reached or is not serving (an outage), as opposed to a conflict between transactions. */
export const isWarehouseUnavailable = (error: unknown): boolean => {
  const code = (error as { code?: string })?.code ?? ""
  return isTransientWarehouseError(error) && !/^40/.test(code) && code !== "55P03"
}

/**
 * A warehouse operation failed, classified once where it is caught: `transient` (retry later) and
 * `unavailable` (an outage, not a conflict) as above; `cause` is the driver's error (its SQLSTATE
 * and message: what outage reports and dead-letter reasons say).
 */
export class WarehouseError extends Schema.TaggedError<WarehouseError>()("WarehouseError", {
  message: Schema.String,
  transient: Schema.Boolean,
  unavailable: Schema.Boolean,
  cause: Schema.Unknown
}) {}

export const warehouseError = (cause: unknown): WarehouseError =>
  cause instanceof WarehouseError
    ? cause
    : new WarehouseError({ message: (cause as Error)?.message ?? String(cause), transient: isTransientWarehouseError(cause), unavailable: isWarehouseUnavailable(cause), cause })

/** A promise-returning warehouse call (pg) as an Effect that fails with a classified WarehouseError. */
export const tryWarehouse = <A>(work: () => Promise<A>): Effect.Effect<A, WarehouseError> => Effect.tryPromise({ try: work, catch: warehouseError })
