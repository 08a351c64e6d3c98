/**
 * The lake bucket. Every write creates a new object with `IfNoneMatch: *` (S3 rejects an
 * overwrite with 412; the local servers don't enforce it, so tests also watch the requests).
 */
import { GetObjectCommand, paginateListObjectsV2, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { s3Client } from "./s3-client.ts"
import { LakeBucket, readConfig } from "./config.ts"

export class LakeError extends Schema.TaggedError<LakeError>()("LakeError", {
  key: Schema.String,
  message: Schema.String
}) {}

export interface LakeObject {
  readonly key: string
  readonly size: number
  readonly lastModified: Date | undefined
}

export interface LakeStoreShape {
  readonly bucket: string
  /** Writes a new object; an existing key is an error, never overwritten. */
  readonly putNew: (key: string, body: Uint8Array | string, contentType: string) => Effect.Effect<void, LakeError>
  readonly get: (key: string) => Effect.Effect<Uint8Array, LakeError>
  readonly list: (prefix: string, startAfter?: string) => Effect.Effect<ReadonlyArray<LakeObject>, LakeError>
}

const retry = Schedule.exponential("200 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 6 }))

/** S3's answers that another attempt cannot change (S3 reads its writes at once): not retried. */
const FINAL = /NoSuchKey|NotFound|NoSuchBucket|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|InvalidBucketName/
export const isFinalLakeError = (error: LakeError): boolean => FINAL.test(error.message)
const retryUnlessFinal = { schedule: retry, while: (error: LakeError) => !isFinalLakeError(error) }

const errorMessage = (error: unknown) => `${(error as Error)?.name ?? "Error"}: ${(error as Error)?.message ?? String(error)}`

export const makeLakeStore = (bucket: string, client: S3Client): LakeStoreShape => ({
  bucket,
  putNew: (key, body, contentType) =>
    Effect.tryPromise({
      try: () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, IfNoneMatch: "*" })),
      catch: (error) => new LakeError({ key, message: errorMessage(error) })
    }).pipe(
      // 412 means a previous attempt of this very write landed: the object exists, done.
      Effect.catchIf(
        (error) => error.message.includes("PreconditionFailed"),
        () => Effect.void
      ),
      Effect.retry(retryUnlessFinal),
      Effect.asVoid
    ),
  get: (key) =>
    Effect.tryPromise({
      try: async () => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        return out.Body!.transformToByteArray()
      },
      catch: (error) => new LakeError({ key, message: errorMessage(error) })
    }).pipe(Effect.retry(retryUnlessFinal)),
  list: (prefix, startAfter) =>
    Effect.tryPromise({
      try: async () => {
        const objects: Array<LakeObject> = []
        for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix, ...(startAfter ? { StartAfter: startAfter } : {}) })) {
          for (const o of page.Contents ?? []) objects.push({ key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified })
        }
        return objects
      },
      catch: (error) => new LakeError({ key: prefix, message: errorMessage(error) })
    }).pipe(Effect.retry(retryUnlessFinal))
})

export class LakeStore extends Context.Service<LakeStore, LakeStoreShape>()("totes/shared/LakeStore") {
  static readonly layer = Layer.sync(LakeStore, () => LakeStore.of(makeLakeStore(readConfig(LakeBucket), s3Client())))

  static readonly layerTest = Layer.sync(LakeStore, () => LakeStore.of(makeMemoryLakeStore()))
}

/**
 * In-memory lake with the same write-once semantics; `failPuts` makes the first N writes fail.
 * Objects carry their write time as LastModified (`now` sets the clock).
 */
export const makeMemoryLakeStore = (
  faults: { failPuts?: number; now?: () => number } = {}
): LakeStoreShape & { readonly objects: Map<string, Uint8Array> } => {
  const objects = new Map<string, Uint8Array>()
  const writtenAt = new Map<string, Date>()
  const now = faults.now ?? Date.now
  let failures = faults.failPuts ?? 0
  return {
    bucket: "memory",
    objects,
    putNew: (key, body) =>
      Effect.suspend(() => {
        if (failures > 0) {
          failures--
          return Effect.fail(new LakeError({ key, message: "injected put failure" }))
        }
        if (objects.has(key)) return Effect.fail(new LakeError({ key, message: "object exists" }))
        objects.set(key, typeof body === "string" ? Buffer.from(body) : body)
        writtenAt.set(key, new Date(now()))
        return Effect.void
      }),
    get: (key) => {
      const body = objects.get(key)
      return body ? Effect.succeed(body) : Effect.fail(new LakeError({ key, message: "NoSuchKey" }))
    },
    list: (prefix, startAfter) =>
      Effect.sync(() =>
        [...objects.entries()]
          .filter(([k]) => k.startsWith(prefix) && (!startAfter || k > startAfter))
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([key, body]) => ({ key, size: body.byteLength, lastModified: writtenAt.get(key) }))
      )
  }
}
