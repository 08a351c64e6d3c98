/**
 * An independent reading of the KPL aggregated record format for unit tests: aws-kinesis-agg
 * (AWS Labs' Node module) and the protobufjs message type it loads from the format's .proto.
 * Typed here because the package's own types import aws-sdk v2.
 */
import { createHash } from "node:crypto"
import { createRequire } from "node:module"

export interface AggUserRecord {
  readonly partitionKey: string
  readonly explicitPartitionKey: string | undefined
  readonly subSequenceNumber: number
  /** base64 */
  readonly data: string
}

interface AggEncodedRecord {
  readonly partitionKey: string
  readonly data: Buffer
  readonly ExplicitHashKey?: string
}

interface ProtobufRecord {
  readonly partition_key_index: unknown
  readonly explicit_hash_key_index?: unknown
  readonly data: Uint8Array
}

export interface ProtobufAggregate {
  readonly partition_key_table: Array<string>
  readonly explicit_hash_key_table: Array<string>
  readonly records: Array<ProtobufRecord>
}

const require = createRequire(import.meta.url)

export const kinesisAgg = require("aws-kinesis-agg") as {
  deaggregateSync: (
    record: { partitionKey: string; data: string; sequenceNumber: string },
    computeChecksums: boolean,
    cb: (err: Error | null | undefined, records?: Array<AggUserRecord>) => void
  ) => void
  RecordAggregator: new () => {
    addUserRecord(record: { partitionKey: string; explicitHashKey?: string; data: Buffer }): void
    build(): AggEncodedRecord
  }
}

const AggregatedRecord = (
  require("aws-kinesis-agg/lib/common.js") as {
    AggregatedRecord: { decode(bytes: Uint8Array): ProtobufAggregate; encode(message: object): { finish(): Uint8Array } }
  }
).AggregatedRecord

/** aws-kinesis-agg's synchronous deaggregation (checksums verified); throws what it reports. */
export const theirDeaggregate = (data: Buffer, outerPartitionKey = "outer"): Array<AggUserRecord> => {
  let result: Array<AggUserRecord> | undefined
  let failure: Error | undefined
  kinesisAgg.deaggregateSync({ partitionKey: outerPartitionKey, data: data.toString("base64"), sequenceNumber: "49590338271490256608559692538361571095921575989136588898" }, true, (err, records) => {
    if (err) failure = err
    else result = records
  })
  if (failure) throw failure
  if (!result) throw new Error("aws-kinesis-agg did not call back")
  return result
}

/** protobufjs' view of the message between the magic and the digest (which fields are present). */
export const protobufOf = (data: Uint8Array): ProtobufAggregate => AggregatedRecord.decode(data.subarray(4, data.length - 16))

export interface ReferenceUserRecord {
  readonly partitionKey: string
  readonly explicitHashKey: string | undefined
  readonly data: Buffer
}

/** The user records of an aggregate, read with protobufjs after checking magic and MD5 with node:crypto. */
export const referenceDecode = (data: Uint8Array): Array<ReferenceUserRecord> => {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (bytes.subarray(0, 4).toString("hex") !== "f3899ac2") throw new Error("no KPL magic")
  const protobufBytes = bytes.subarray(4, bytes.length - 16)
  if (!createHash("md5").update(protobufBytes).digest().equals(bytes.subarray(bytes.length - 16))) throw new Error("MD5 trailer mismatch")
  const message = AggregatedRecord.decode(protobufBytes)
  return message.records.map((r) => ({
    partitionKey: message.partition_key_table[Number(String(r.partition_key_index))]!,
    explicitHashKey: Object.prototype.hasOwnProperty.call(r, "explicit_hash_key_index") ? message.explicit_hash_key_table[Number(String(r.explicit_hash_key_index))] : undefined,
    data: Buffer.from(r.data)
  }))
}

/** The aggregate protobufjs encodes for these records (tables in order of first use), with magic and MD5. */
export const referenceEncode = (records: ReadonlyArray<{ partitionKey: string; explicitHashKey?: string | undefined; data: Uint8Array }>): Buffer => {
  const pks = [...new Set(records.map((r) => r.partitionKey))]
  const ehks = [...new Set(records.flatMap((r) => (r.explicitHashKey === undefined ? [] : [r.explicitHashKey])))]
  const message = {
    partition_key_table: pks,
    explicit_hash_key_table: ehks,
    records: records.map((r) => ({
      partition_key_index: pks.indexOf(r.partitionKey),
      ...(r.explicitHashKey === undefined ? {} : { explicit_hash_key_index: ehks.indexOf(r.explicitHashKey) }),
      data: r.data
    }))
  }
  const protobufBytes = AggregatedRecord.encode(message).finish()
  return Buffer.concat([Buffer.from([0xf3, 0x89, 0x9a, 0xc2]), protobufBytes, createHash("md5").update(protobufBytes).digest()])
}
