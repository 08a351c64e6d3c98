/** In-memory lake and checkpoint stores with fault switches, for the lake unit tests. */
import { Effect, Option } from "effect"
import { CheckpointError, type CheckpointStoreShape, type StoredCheckpoint } from "../../services/shared/checkpoint-store.ts"
import { LakeError, type LakeStoreShape } from "../../services/shared/lake-store.ts"

export const memoryLake = (faults: { failPuts?: number } = {}): LakeStoreShape & { readonly objects: Map<string, Uint8Array> } => {
  const objects = new Map<string, Uint8Array>()
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
          .map(([key, body]) => ({ key, size: body.byteLength, lastModified: new Date(0) }))
      )
  }
}

export const memoryCheckpoints = (faults: { failAdvances?: number } = {}): CheckpointStoreShape & { readonly items: Map<string, StoredCheckpoint<unknown>> } => {
  const items = new Map<string, StoredCheckpoint<unknown>>()
  let failures = faults.failAdvances ?? 0
  return {
    items,
    get: <A>(key: string) => Effect.sync(() => Option.fromNullishOr(items.get(key) as StoredCheckpoint<A> | undefined)),
    advance: (key, position, data) =>
      Effect.suspend(() => {
        if (failures > 0) {
          failures--
          return Effect.fail(new CheckpointError({ key, message: "injected checkpoint failure" }))
        }
        const current = items.get(key)
        if (current && current.position > position) return Effect.succeed(false)
        items.set(key, { position, data })
        return Effect.succeed(true)
      }),
    put: (key, data) => Effect.sync(() => void items.set(key, { position: "", data }))
  }
}
