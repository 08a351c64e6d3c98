/** The reader's failures, and which of them a new session (a reconnection) can fix. */
import { Schema } from "effect"

/** The reader will not run as things are (slot gone or moved, source not ready, another reader): a restart cannot fix it. */
export class ReaderRefused extends Schema.TaggedError<ReaderRefused>()("ReaderRefused", {
  message: Schema.String
}) {}

/** The source connection was lost (restart, failover, network): reconnect and resume from the checkpoint. */
export class SourceUnavailable extends Schema.TaggedError<SourceUnavailable>()("SourceUnavailable", {
  message: Schema.String
}) {}

/** Effect wraps a rejected promise without a `catch` in an UnknownError: look at what it wraps. */
export const underlying = (error: unknown): unknown => {
  let current = error
  for (let i = 0; i < 5; i++) {
    const e = current as { _tag?: string; cause?: unknown }
    if (e && typeof e === "object" && e._tag === "UnknownError" && e.cause !== undefined) current = e.cause
    else break
  }
  return current
}

/** SQLSTATEs and socket errors that mean "the connection went away", not "the request is wrong". */
const CONNECTION_STATES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"])
const SOCKET_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"])

export const isSourceConnectionError = (error: unknown): boolean => {
  const e = underlying(error) as { _tag?: string; code?: string; message?: string }
  if (e?._tag === "SourceUnavailable") return true
  if (e?._tag === "ReaderRefused") return false
  if (CONNECTION_STATES.has(e?.code ?? "") || SOCKET_CODES.has(e?.code ?? "")) return true
  return /Connection terminated|terminating connection|connection is closed|Client has encountered a connection error|the replication connection was closed/i.test(e?.message ?? "")
}
