/**
 * Pure: which pending records go into the next PutRecords call. Kinesis only keeps order per
 * shard for records that were accepted, so a failed entry must not be overtaken by a later
 * change of the same row. Each call therefore carries at most one record per partition key,
 * and never one whose key has an earlier record still pending: a key's records go out one
 * call after another, in order, however the calls fail.
 */
export const MAX_RECORDS_PER_CALL = 500
export const MAX_BYTES_PER_CALL = 5 * 1024 * 1024
/** Kinesis counts data + partition key against the 1 MiB record limit. */
export const MAX_RECORD_BYTES = 1024 * 1024

export interface PendingRecord {
  readonly partitionKey: string
  readonly explicitHashKey?: string
  readonly data: Uint8Array
}

export const recordBytes = (record: PendingRecord) => record.data.byteLength + Buffer.byteLength(record.partitionKey)

/** Indices into `pending` (in order) for the next call. */
export const planNextCall = (pending: ReadonlyArray<PendingRecord>): Array<number> => {
  const chosen: Array<number> = []
  const seenKeys = new Set<string>()
  let bytes = 0
  for (let i = 0; i < pending.length && chosen.length < MAX_RECORDS_PER_CALL; i++) {
    const record = pending[i]!
    const orderKey = record.explicitHashKey ?? record.partitionKey
    if (seenKeys.has(orderKey)) continue
    seenKeys.add(orderKey)
    const size = recordBytes(record)
    if (bytes + size > MAX_BYTES_PER_CALL) break
    bytes += size
    chosen.push(i)
  }
  return chosen
}
