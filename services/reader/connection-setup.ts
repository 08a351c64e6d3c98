/**
 * Connection set-up as explicit steps, each one query/answer: connect → identify the database
 * and the server (system id) → check that the source can be captured → take the slot's lock (one
 * reader per slot) → make sure the publication covers the tables.
 */
import { Effect } from "effect"
import pg from "pg"
import { AdminConnection, type ReaderSettings } from "./context.ts"
import { ReaderRefused } from "./errors.ts"
import { ensurePublication, primaryKeys, SOURCE_SESSION_OPTIONS, SourceValidationError, systemIdentifier, tryLockSlot, validateSource } from "./source-admin.ts"

export interface SourceIdentity {
  readonly database: string
  readonly systemId: string
  /** "public.<table>" → primary-key columns: the key of every event. */
  readonly primaryKeys: ReadonlyMap<string, ReadonlyArray<string>>
}

/** The admin connection for the session; `onLost` hears of it dropping; closed with the session. */
export const connectAdmin = (sourceUrl: string, onLost: (error: Error) => void) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new pg.Client({ connectionString: sourceUrl, application_name: "totes-reader", options: SOURCE_SESSION_OPTIONS })
        client.on("error", onLost)
        await client.connect()
        return new AdminConnection(client)
      },
      catch: (error) => error as Error
    }),
    (admin) =>
      Effect.promise(async () => {
        admin.client.removeAllListeners("error")
        admin.client.on("error", () => {})
        await admin.client.end().catch(() => {})
      })
  )

export const setUpSource = (admin: AdminConnection, settings: ReaderSettings) =>
  Effect.tryPromise({
    try: async (): Promise<SourceIdentity> => {
      const database = (await admin.query("SELECT current_database() AS db")).rows[0].db as string
      const systemId = await systemIdentifier(admin)
      await validateSource(admin, settings.tables, settings.publication)
      if (!(await tryLockSlot(admin, settings.slot))) {
        throw new ReaderRefused({ message: `another reader holds slot '${settings.slot}' (advisory lock taken): refusing to run two readers on one slot` })
      }
      await ensurePublication(admin, settings.publication, settings.tables)
      return { database, systemId, primaryKeys: await primaryKeys(admin, settings.tables) }
    },
    catch: (error) => (error instanceof SourceValidationError ? new ReaderRefused({ message: error.message }) : (error as Error))
  })
