/**
 * Lake helpers for integration tests: an S3 client that records every PutObject as sent on the
 * wire (key and If-None-Match header), an archiver running beside the pipeline, and reading the
 * whole raw lake back.
 */
import { spawn } from "node:child_process"
import type { S3Client } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import pg from "pg"
import type { StreamRecord } from "../../contracts/change-event.ts"
import { RAW_PREFIX } from "../../contracts/lake.ts"
import type { Archiver } from "../../services/archiver/archiver.ts"
import { archiverFromEnv } from "../../services/archiver/main.ts"
import { decodeRawLines } from "../../services/lake/raw.ts"
import { s3Client } from "../../services/shared/aws-clients.ts"
import { makeLakeStore, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { dumpWarehouse, type Rows } from "../fixtures/derive-star-schema.ts"
import { waitFor } from "./processes.ts"

export interface RecordedPut {
  readonly key: string
  readonly ifNoneMatch: string | undefined
}

/** An S3 client whose PutObject requests are recorded after serialization (what goes on the wire). */
export const recordingS3 = (env: Record<string, string>): { client: S3Client; puts: Array<RecordedPut> } => {
  const client = s3Client(env)
  const puts: Array<RecordedPut> = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "PutObjectCommand") {
        const request = args.request as { headers: Record<string, string> }
        puts.push({ key: (args.input as { Key: string }).Key, ifNoneMatch: request.headers["if-none-match"] })
      }
      return next(args)
    },
    { step: "finalizeRequest", name: "recordPutObject" }
  )
  return { client, puts }
}

export const lakeOf = (env: Record<string, string>, client?: S3Client): LakeStoreShape => makeLakeStore(env.TOTES_LAKE_BUCKET!, client ?? s3Client(env))

export interface RunningArchiver {
  readonly archiver: Archiver
  readonly puts: Array<RecordedPut>
  readonly stop: () => Promise<void>
}

export const startArchiver = (env: Record<string, string>, options: { flushMs?: number; flushBytes?: number } = {}): RunningArchiver => {
  const { client, puts } = recordingS3(env)
  const archiver = archiverFromEnv(env, { s3: client, flushMs: options.flushMs ?? 500, flushBytes: options.flushBytes ?? 256 * 1024, idleWaitMs: 50 })
  const controller = new AbortController()
  const running = archiver.run(controller.signal)
  running.catch(() => {})
  return {
    archiver,
    puts,
    stop: async () => {
      controller.abort()
      await running
    }
  }
}

export interface LakeContent {
  readonly objects: ReadonlyArray<string>
  readonly records: ReadonlyArray<StreamRecord>
}

/** Every record of every raw object (duplicates included), objects in key order. */
export const readRawLake = async (lake: LakeStoreShape): Promise<LakeContent> => {
  const objects = await Effect.runPromise(lake.list(RAW_PREFIX))
  const records: Array<StreamRecord> = []
  for (const object of objects) {
    const body = await Effect.runPromise(lake.get(object.key))
    for (const line of decodeRawLines(body)) records.push(JSON.parse(line) as StreamRecord)
  }
  return { objects: objects.map((o) => o.key), records }
}

/** Waits until the raw lake holds every one of `ids`. */
export const waitLakeHolds = async (lake: LakeStoreShape, ids: Iterable<string>, timeoutMs = 60_000) => {
  const wanted = new Set(ids)
  await waitFor(async () => {
    const { records } = await readRawLake(lake)
    const have = new Set(records.map((r) => r.id))
    return [...wanted].every((id) => have.has(id))
  }, timeoutMs, `the lake to hold ${wanted.size} records`)
}

/** dumpWarehouse of a database URL (default schemas). */
export const dumpOf = async (url: string): Promise<Record<string, Rows>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await dumpWarehouse(client)
  } finally {
    await client.end()
  }
}

const CLI = new URL("./cli-child.ts", import.meta.url).pathname

/** Runs the lake/replay/verify commands as a CLI in a child process (see cli-child.ts). */
export const runLakeCli = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })
