/**
 * Reads back the Parquet files parquet-writer.ts writes (flat schema, v1 data pages, PLAIN values,
 * RLE definition levels, any codec parquetjs-lite knows) as raw column values: INT64 as bigint,
 * so DECIMAL unscaled values and TIMESTAMP_MICROS keep every digit (parquetjs-lite's own reader
 * knows no DECIMAL and turns microseconds into a millisecond Date). Other layouts are refused.
 */
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)
const thrift = require("parquetjs-lite/gen-nodejs/parquet_types") as Record<string, any>
const { decodeThrift, getThriftEnum } = require("parquetjs-lite/lib/util") as {
  decodeThrift: (target: unknown, buffer: Buffer, offset?: number) => number
  getThriftEnum: (enumeration: unknown, value: number) => string
}
const codec = require("parquetjs-lite/lib/codec") as Record<string, { decodeValues: (type: string, cursor: Cursor, count: number, options: Record<string, unknown>) => Array<unknown> }>
const compression = require("parquetjs-lite/lib/compression") as { inflate: (method: string, value: Buffer) => Buffer }

interface Cursor {
  buffer: Buffer
  offset: number
}

export type RawValue = string | number | bigint | boolean | null

export interface ParquetColumnRead {
  readonly name: string
  readonly type: string
  readonly convertedType: string | undefined
  readonly scale: number | undefined
  readonly values: ReadonlyArray<RawValue>
}

export interface ParquetFileRead {
  readonly rows: number
  readonly columns: ReadonlyArray<ParquetColumnRead>
  readonly keyValues: Readonly<Record<string, string>>
}

export const readParquetFile = (bytes: Uint8Array): ParquetFileRead => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.toString("ascii", 0, 4) !== "PAR1" || buffer.toString("ascii", buffer.length - 4) !== "PAR1") throw new Error("not a Parquet file")
  const footerLength = buffer.readUInt32LE(buffer.length - 8)
  const metadata = new thrift.FileMetaData()
  decodeThrift(metadata, buffer, buffer.length - 8 - footerLength)
  const leaves = (metadata.schema as Array<any>).slice(1)
  if (leaves.some((element) => element.num_children > 0)) throw new Error("nested Parquet schemas are not supported")
  const collected: Array<Array<RawValue>> = leaves.map(() => [])
  for (const group of metadata.row_groups as Array<any>) {
    ;(group.columns as Array<any>).forEach((chunk, index) => {
      const element = leaves[index]
      const meta = chunk.meta_data
      const type = getThriftEnum(thrift.Type, meta.type)
      const codecName = getThriftEnum(thrift.CompressionCodec, meta.codec)
      const optional = getThriftEnum(thrift.FieldRepetitionType, element.repetition_type) === "OPTIONAL"
      const cursor: Cursor = { buffer, offset: Number(meta.data_page_offset) }
      let read = 0
      while (read < Number(meta.num_values)) {
        const header = new thrift.PageHeader()
        cursor.offset += decodeThrift(header, buffer, cursor.offset)
        const pageEnd = cursor.offset + header.compressed_page_size
        if (getThriftEnum(thrift.PageType, header.type) !== "DATA_PAGE") throw new Error(`unsupported page type in column ${element.name}`)
        const body = compression.inflate(codecName, buffer.subarray(cursor.offset, pageEnd))
        cursor.offset = pageEnd
        const count = header.data_page_header.num_values as number
        const page: Cursor = { buffer: body, offset: 0 }
        const levels = optional ? (codec.RLE!.decodeValues("INT32", page, count, { bitWidth: 1 }) as Array<number>) : undefined
        const present = levels ? levels.filter((level) => level === 1).length : count
        const values = codec.PLAIN!.decodeValues(type, page, present, { typeLength: element.type_length }) as Array<unknown>
        let next = 0
        for (let i = 0; i < count; i++) {
          if (levels && levels[i] === 0) collected[index]!.push(null)
          else {
            const value = values[next++]
            collected[index]!.push(Buffer.isBuffer(value) ? value.toString("utf8") : (value as RawValue))
          }
        }
        read += count
      }
    })
  }
  return {
    rows: Number(metadata.num_rows),
    keyValues: Object.fromEntries(((metadata.key_value_metadata ?? []) as Array<any>).map((kv) => [kv.key, kv.value])),
    columns: leaves.map((element, index) => ({
      name: element.name,
      type: getThriftEnum(thrift.Type, element.type),
      convertedType: element.converted_type === null || element.converted_type === undefined ? undefined : getThriftEnum(thrift.ConvertedType, element.converted_type),
      scale: element.scale ?? undefined,
      values: collected[index]!
    }))
  }
}
