/**
 * The replication connection: pgoutput messages from the slot, handed on synchronously as they
 * are parsed. pg-logical-replication's own acknowledgements and flow control are off: its timer
 * would confirm the last *received* position (losing unpublished changes on a crash), and its
 * flow control awaits every message. Backpressure pauses the socket instead, and the only
 * position ever confirmed to the server is the one the caller passes to `confirm`.
 */
import { LogicalReplicationService, type Pgoutput } from "pg-logical-replication"
import { RawPgoutputPlugin } from "./pgoutput.ts"
import { SOURCE_SESSION_OPTIONS } from "./source-admin.ts"

export interface ReplicationStreamOptions {
  readonly sourceUrl: string
  readonly slot: string
  readonly publication: string
  /** Stream changes committed after this position. */
  readonly startLsn: string
  /** Called for every message, in WAL order; must not throw. */
  readonly onMessage: (lsn: string, message: Pgoutput.Message) => void
  /** The server asked for a status update (keepalive with the reply flag). */
  readonly onReplyRequested: () => void
}

export interface ReplicationStream {
  /** Settles when replication ends: resolves after `close`, rejects when the connection fails. */
  readonly ended: Promise<void>
  pause(): void
  resume(): void
  readonly paused: boolean
  /** Tells the server that everything up to `lsn` is durable (it may recycle WAL before it). */
  confirm(lsn: string): void
  close(): Promise<void>
}

export const openReplicationStream = (options: ReplicationStreamOptions): ReplicationStream => {
  const service = new LogicalReplicationService(
    { connectionString: options.sourceUrl, application_name: "totes-reader-stream", options: SOURCE_SESSION_OPTIONS },
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } }
  )
  let closing = false
  let paused = false
  let failure: Error | undefined
  // The socket under pg's connection: pausing it stops parsing (the walsender then waits).
  const socket = () => (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream

  service.on("data", options.onMessage)
  service.on("heartbeat", (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
    if (shouldRespond) options.onReplyRequested()
  })
  const failed = new Promise<never>((_, reject) =>
    service.on("error", (error: Error) => {
      failure ??= error
      if (!closing) reject(error)
    })
  )
  failed.catch(() => {})
  const subscribed = service
    .subscribe(new RawPgoutputPlugin({ protoVersion: 1, publicationNames: [options.publication], messages: true }), options.slot, options.startLsn)
    .then(() => {
      // The library resolves when the connection closes, also when the server ended it.
      if (!closing) throw failure ?? new Error("the replication connection was closed by the server")
    })
  const ended = Promise.race([subscribed, failed]) as Promise<void>
  ended.catch(() => {})

  return {
    ended,
    get paused() {
      return paused
    },
    pause() {
      if (paused) return
      paused = true
      socket()?.pause()
    },
    resume() {
      if (!paused) return
      paused = false
      socket()?.resume()
    },
    confirm(lsn: string) {
      void service.acknowledge(lsn).catch(() => false)
    },
    async close() {
      closing = true
      // The library removes every listener when it stops; a late socket error on a connection the
      // server already dropped must not become an unhandled 'error' event.
      const internals = service as unknown as { _client?: NodeJS.EventEmitter | null; _connection?: NodeJS.EventEmitter | null }
      const client = internals._client
      const connection = internals._connection
      await service.stop().catch(() => {})
      client?.on("error", () => {})
      connection?.on("error", () => {})
    }
  }
}
