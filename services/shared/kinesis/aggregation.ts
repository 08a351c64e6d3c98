/**
 * The KPL aggregated record format (awslabs/amazon-kinesis-producer, aggregation-format.md), so
 * that standard tools (Firehose, the KCL, aws-kinesis-agg) read what the reader writes:
 *
 *   F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf bytes)
 *
 *   message AggregatedRecord { repeated string partition_key_table = 1;
 *                              repeated string explicit_hash_key_table = 2;
 *                              repeated Record records = 3; }
 *   message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
 *                    required bytes data = 3; repeated Tag tags = 4; }
 *
 * Pure: no I/O. `AggregateBuilder` adds user records while tracking the exact encoded size, so an
 * aggregate is closed before it would pass the record size limit.
 */
import { createHash } from "node:crypto"

export const AGGREGATION_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2])
const DIGEST_BYTES = 16

export interface UserRecord {
  readonly partitionKey: string
  readonly explicitHashKey?: string | undefined
  readonly data: Uint8Array
}

/** What a producer hands the builder: data as bytes, or as text written as UTF-8 (no intermediate buffer). */
export interface OutgoingRecord {
  readonly partitionKey: string
  readonly explicitHashKey?: string | undefined
  readonly data: Uint8Array | string
  /** UTF-8 length of `data` when it is text (computed by the caller, who needs it anyway). */
  readonly dataBytes: number
}

const varintSize = (value: number): number => {
  let size = 1
  while (value >= 0x80) {
    value = Math.floor(value / 128)
    size++
  }
  return size
}

/** Bytes of a length-delimited field (tag + length + payload) with a one-byte tag. */
const fieldSize = (payload: number) => 1 + varintSize(payload) + payload

const recordMessageSize = (partitionKeyIndex: number, explicitHashKeyIndex: number | undefined, dataBytes: number) =>
  1 + varintSize(partitionKeyIndex) + (explicitHashKeyIndex === undefined ? 0 : 1 + varintSize(explicitHashKeyIndex)) + fieldSize(dataBytes)

export class AggregateBuilder {
  private readonly partitionKeys = new Map<string, number>()
  private readonly hashKeys = new Map<string, number>()
  private readonly records: Array<{ pk: number; ehk: number | undefined; data: Uint8Array | string; bytes: number }> = []
  private protobufBytes = 0

  get count(): number {
    return this.records.length
  }

  /** Encoded size of the aggregate as it stands (magic + protobuf + digest). */
  get size(): number {
    return AGGREGATION_MAGIC.length + this.protobufBytes + DIGEST_BYTES
  }

  /** The encoded size after adding `record` (without adding it). */
  sizeWith(record: OutgoingRecord): number {
    const pk = this.partitionKeys.get(record.partitionKey)
    const ehk = record.explicitHashKey === undefined ? undefined : this.hashKeys.get(record.explicitHashKey)
    let extra = 0
    if (pk === undefined) extra += fieldSize(Buffer.byteLength(record.partitionKey))
    if (record.explicitHashKey !== undefined && ehk === undefined) extra += fieldSize(Buffer.byteLength(record.explicitHashKey))
    const message = recordMessageSize(pk ?? this.partitionKeys.size, record.explicitHashKey === undefined ? undefined : (ehk ?? this.hashKeys.size), record.dataBytes)
    return this.size + extra + fieldSize(message)
  }

  add(record: OutgoingRecord): void {
    let pk = this.partitionKeys.get(record.partitionKey)
    if (pk === undefined) {
      pk = this.partitionKeys.size
      this.partitionKeys.set(record.partitionKey, pk)
      this.protobufBytes += fieldSize(Buffer.byteLength(record.partitionKey))
    }
    let ehk: number | undefined
    if (record.explicitHashKey !== undefined) {
      ehk = this.hashKeys.get(record.explicitHashKey)
      if (ehk === undefined) {
        ehk = this.hashKeys.size
        this.hashKeys.set(record.explicitHashKey, ehk)
        this.protobufBytes += fieldSize(Buffer.byteLength(record.explicitHashKey))
      }
    }
    this.records.push({ pk, ehk, data: record.data, bytes: record.dataBytes })
    this.protobufBytes += fieldSize(recordMessageSize(pk, ehk, record.dataBytes))
  }

  /** The aggregated record's bytes. */
  encode(): Buffer {
    const out = Buffer.allocUnsafe(this.size)
    AGGREGATION_MAGIC.copy(out, 0)
    let at = AGGREGATION_MAGIC.length
    const writeVarint = (value: number) => {
      while (value >= 0x80) {
        out[at++] = (value % 128) | 0x80
        value = Math.floor(value / 128)
      }
      out[at++] = value
    }
    const writeString = (tag: number, text: string) => {
      out[at++] = tag
      writeVarint(Buffer.byteLength(text))
      at += out.write(text, at, "utf8")
    }
    for (const key of this.partitionKeys.keys()) writeString(0x0a, key) // field 1, wire type 2
    for (const key of this.hashKeys.keys()) writeString(0x12, key) // field 2, wire type 2
    for (const record of this.records) {
      out[at++] = 0x1a // field 3, wire type 2
      writeVarint(recordMessageSize(record.pk, record.ehk, record.bytes))
      out[at++] = 0x08 // Record field 1, varint
      writeVarint(record.pk)
      if (record.ehk !== undefined) {
        out[at++] = 0x10 // Record field 2, varint
        writeVarint(record.ehk)
      }
      out[at++] = 0x1a // Record field 3, bytes
      writeVarint(record.bytes)
      if (typeof record.data === "string") out.write(record.data, at, "utf8")
      else out.set(record.data, at)
      at += record.bytes
    }
    const protobufEnd = at
    createHash("md5").update(out.subarray(AGGREGATION_MAGIC.length, protobufEnd)).digest().copy(out, protobufEnd)
    return out
  }
}

/** A user record's data as the builder takes it. */
export const outgoing = (record: UserRecord): OutgoingRecord => ({ ...record, dataBytes: record.data.byteLength })

export const isAggregated = (data: Uint8Array): boolean =>
  data.byteLength >= AGGREGATION_MAGIC.length + DIGEST_BYTES &&
  data[0] === 0xf3 && data[1] === 0x89 && data[2] === 0x9a && data[3] === 0xc2

export class AggregationFormatError extends Error {
  override readonly name = "AggregationFormatError"
}

/**
 * The user records of a Kinesis record: its aggregated user records in order, or the record
 * itself when it is not aggregated. A corrupt aggregate (bad digest, truncated protobuf) throws.
 */
export const deaggregate = (data: Uint8Array, outerPartitionKey: string): Array<UserRecord> => {
  if (!isAggregated(data)) return [{ partitionKey: outerPartitionKey, data }]
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const end = bytes.length - DIGEST_BYTES
  const digest = createHash("md5").update(bytes.subarray(AGGREGATION_MAGIC.length, end)).digest()
  if (!digest.equals(bytes.subarray(end))) throw new AggregationFormatError("aggregated record digest mismatch")
  let at = AGGREGATION_MAGIC.length
  const readVarint = (limit: number): number => {
    let value = 0
    let scale = 1
    for (;;) {
      if (at >= limit) throw new AggregationFormatError("truncated varint")
      const byte = bytes[at++]!
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
      if (scale > 2 ** 49) throw new AggregationFormatError("varint too long")
    }
  }
  const readDelimited = (limit: number): Buffer => {
    const length = readVarint(limit)
    if (at + length > limit) throw new AggregationFormatError("truncated field")
    const slice = bytes.subarray(at, at + length)
    at += length
    return slice
  }
  const skip = (wireType: number, limit: number) => {
    if (wireType === 0) readVarint(limit)
    else if (wireType === 2) readDelimited(limit)
    else if (wireType === 1 || wireType === 5) {
      const width = wireType === 1 ? 8 : 4
      if (at + width > limit) throw new AggregationFormatError("truncated fixed-width field")
      at += width
    } else throw new AggregationFormatError(`unsupported wire type ${wireType}`)
  }
  const partitionKeys: Array<string> = []
  const hashKeys: Array<string> = []
  const raw: Array<{ pk: number; ehk: number | undefined; data: Buffer }> = []
  while (at < end) {
    const tag = readVarint(end)
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (field === 1 && wireType === 2) partitionKeys.push(readDelimited(end).toString("utf8"))
    else if (field === 2 && wireType === 2) hashKeys.push(readDelimited(end).toString("utf8"))
    else if (field === 3 && wireType === 2) {
      const length = readVarint(end)
      const recordEnd = at + length
      if (recordEnd > end) throw new AggregationFormatError("truncated record")
      let pk: number | undefined
      let ehk: number | undefined
      let payload: Buffer | undefined
      while (at < recordEnd) {
        const t = readVarint(recordEnd)
        const f = Math.floor(t / 8)
        const w = t & 7
        if (f === 1 && w === 0) pk = readVarint(recordEnd)
        else if (f === 2 && w === 0) ehk = readVarint(recordEnd)
        else if (f === 3 && w === 2) payload = readDelimited(recordEnd)
        else skip(w, recordEnd) // tags and unknown fields
      }
      if (pk === undefined || payload === undefined) throw new AggregationFormatError("record without partition key index or data")
      raw.push({ pk, ehk, data: payload })
    } else skip(wireType, end)
  }
  return raw.map((r) => {
    const partitionKey = partitionKeys[r.pk]
    if (partitionKey === undefined) throw new AggregationFormatError(`partition key index ${r.pk} out of range`)
    const explicitHashKey = r.ehk === undefined ? undefined : hashKeys[r.ehk]
    if (r.ehk !== undefined && explicitHashKey === undefined) throw new AggregationFormatError(`explicit hash key index ${r.ehk} out of range`)
    return explicitHashKey === undefined ? { partitionKey, data: r.data } : { partitionKey, explicitHashKey, data: r.data }
  })
}
