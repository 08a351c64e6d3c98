/**
 * Rows into PostgreSQL with COPY … FROM STDIN (text format), streamed while they are produced.
 *
 *   const copy = startCopy(client, `COPY t (a, b) FROM STDIN`)
 *   await copy.write(`${copyField(a)}\t${copyField(b)}\n`)    // waits when the server is behind
 *   const rows = await copy.end()
 *
 * copyField writes a value as the server reads it back into the same text a JSON value gives
 * through jsonb_populate_recordset (what apply uses): strings as they are, numbers and booleans
 * as their JSON text, null as \N. Objects and arrays are not fields: callers route such rows
 * elsewhere (`isCopyScalar`).
 */
import { once } from "node:events"
import type { Writable } from "node:stream"
import type pg from "pg"
import { from as copyFrom } from "pg-copy-streams"

type Scalar = string | number | boolean | null

const SPECIAL = /[\\\n\r\t]/
const SPECIAL_ALL = /[\\\n\r\t]/g
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/** Text with COPY's four special characters escaped. */
export const copyEscape = (text: string): string => (SPECIAL.test(text) ? text.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : text)

export const isCopyScalar = (value: unknown): value is Scalar | undefined =>
  value === null || value === undefined || typeof value === "string" || typeof value === "number" || typeof value === "boolean"

/** One field of a COPY text row (null and undefined: \N). */
export const copyField = (value: Scalar | undefined): string =>
  value === null || value === undefined ? "\\N" : typeof value === "string" ? copyEscape(value) : String(value)

export interface CopyWriter {
  /** Queues text (whole rows); resolves once the stream can take more. */
  readonly write: (text: string) => Promise<void>
  /** Ends the COPY; resolves to the rows the server loaded. */
  readonly end: () => Promise<number>
}

/** Text is handed to the socket in pieces of about this size. */
const CHUNK = 256 * 1024

export const startCopy = (client: pg.ClientBase, sql: string): CopyWriter => {
  const stream = client.query(copyFrom(sql)) as unknown as Writable & { rowCount: number }
  let failure: Error | undefined
  const failed = new Promise<never>((_, reject) => {
    stream.on("error", (error: Error) => {
      failure = error
      reject(error)
    })
  })
  failed.catch(() => {})
  let buffer = ""
  const flush = async () => {
    if (failure) throw failure
    if (buffer.length === 0) return
    const ok = stream.write(buffer)
    buffer = ""
    if (!ok) await Promise.race([once(stream, "drain"), failed])
  }
  return {
    write: async (text) => {
      buffer += text
      if (buffer.length >= CHUNK) await flush()
    },
    end: async () => {
      await flush()
      const finished = once(stream, "finish")
      stream.end()
      await Promise.race([finished, failed])
      return stream.rowCount
    }
  }
}
