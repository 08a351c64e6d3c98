/**
 * pgoutput decoding without lossy conversions. pg-logical-replication's parser runs every
 * value through pg-types (numeric → string is fine, but timestamps become millisecond Dates in
 * local time) and turns an unchanged TOAST datum into `undefined`. This subclass keeps the
 * server's text and marks unchanged TOAST datums explicitly.
 */
import { PgoutputPlugin, type Pgoutput } from "pg-logical-replication"
// The parser class is not re-exported by the package index.
import { PgoutputParser } from "pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-parser.js"

/** Marks a TOAST column whose value the server did not send (unchanged, not NULL). */
export const UNCHANGED_TOAST: unique symbol = Symbol("unchanged-toast")

export type RawValue = string | null | typeof UNCHANGED_TOAST
export type RawTuple = Record<string, RawValue>

interface BinaryReader {
  readUint8(): number
  readInt16(): number
  readInt32(): number
  read(n: number): Uint8Array
  decodeText(buf: Uint8Array): string
}

class RawTextParser extends (PgoutputParser as unknown as new () => { parse(buf: Buffer): Pgoutput.Message }) {
  readRelationColumn(reader: BinaryReader) {
    const flags = reader.readUint8()
    const name = (reader as unknown as { readString(): string }).readString()
    const typeOid = reader.readInt32()
    const typeMod = reader.readInt32()
    return { flags, name, typeOid, typeMod, typeSchema: null, typeName: null, parser: (raw: string) => raw }
  }

  readTuple(reader: BinaryReader, relation: Pgoutput.MessageRelation, unchangedFallback?: RawTuple): RawTuple {
    const count = reader.readInt16()
    const tuple: RawTuple = Object.create(null)
    for (let i = 0; i < count; i++) {
      const name = relation.columns[i]!.name
      const kind = reader.readUint8()
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
        const bytes = reader.read(reader.readInt32())
        tuple[name] = kind === 0x74 ? reader.decodeText(bytes) : `\\x${Buffer.from(bytes).toString("hex")}`
      } else if (kind === 0x6e /* n */) {
        tuple[name] = null
      } else if (kind === 0x75 /* u */) {
        const fallback = unchangedFallback?.[name]
        tuple[name] = fallback === undefined ? UNCHANGED_TOAST : fallback
      } else {
        throw new Error(`unknown pgoutput attribute kind ${String.fromCharCode(kind)}`)
      }
    }
    return tuple
  }
}

export class RawPgoutputPlugin extends PgoutputPlugin {
  private readonly raw = new RawTextParser()
  override parse(buffer: Buffer): Pgoutput.Message {
    return this.raw.parse(buffer)
  }
}
