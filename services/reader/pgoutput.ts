/**
 * pgoutput decoding without lossy conversions. pg-logical-replication's parser runs every
 * value through pg-types (timestamps become millisecond Dates in local time) and turns an
 * unchanged TOAST datum into `undefined`. This subclass decodes the server's text straight into
 * the contract's lossless JSON values (values.ts) while it reads the tuple, and lists the
 * unchanged TOAST columns instead of inventing a value for them.
 */
import { PgoutputPlugin, type Pgoutput } from "pg-logical-replication"
// The parser class is not re-exported by the package index.
import { PgoutputParser } from "pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-parser.js"
import type { Row } from "../../contracts/change-event.ts"
import { decodeValue } from "./values.ts"

/** Symbol-keyed (so JSON.stringify skips it): the columns whose TOAST value the server did not send. */
export const UNCHANGED_COLUMNS: unique symbol = Symbol("unchanged-toast-columns")

export type DecodedTuple = Record<string, Row[string]> & { [UNCHANGED_COLUMNS]?: Array<string> }

interface BinaryReader {
  readUint8(): number
  readInt16(): number
  readInt32(): number
  read(n: number): Uint8Array
  decodeText(buf: Uint8Array): string
  /** The message buffer and the read position (pg-logical-replication's BinaryReader fields). */
  _b: Buffer
  _p: number
}

class RawTextParser extends (PgoutputParser as unknown as new () => { parse(buf: Buffer): Pgoutput.Message }) {
  readRelationColumn(reader: BinaryReader) {
    const flags = reader.readUint8()
    const name = (reader as unknown as { readString(): string }).readString()
    const typeOid = reader.readInt32()
    const typeMod = reader.readInt32()
    return { flags, name, typeOid, typeMod, typeSchema: null, typeName: null, parser: (raw: string) => raw }
  }

  readTuple(reader: BinaryReader, relation: Pgoutput.MessageRelation, unchangedFallback?: DecodedTuple): DecodedTuple {
    const count = reader.readInt16()
    const tuple: DecodedTuple = {}
    const columns = relation.columns
    for (let i = 0; i < count; i++) {
      const column = columns[i]!
      const kind = reader.readUint8()
      if (kind === 0x74 /* t */) {
        // Hot path: slice the text straight out of the message buffer (no TextDecoder per value).
        const length = reader.readInt32()
        const start = reader._p
        if (start + length > reader._b.length) throw new Error("unexpected end of pgoutput message")
        reader._p = start + length
        tuple[column.name] = decodeValue(column.typeOid, reader._b.toString("utf8", start, start + length)) as Row[string]
      } else if (kind === 0x6e /* n */) {
        tuple[column.name] = null
      } else if (kind === 0x75 /* u */) {
        if (unchangedFallback && column.name in unchangedFallback) tuple[column.name] = unchangedFallback[column.name]!
        else (tuple[UNCHANGED_COLUMNS] ??= []).push(column.name)
      } else if (kind === 0x62 /* b */) {
        tuple[column.name] = decodeValue(column.typeOid, `\\x${Buffer.from(reader.read(reader.readInt32())).toString("hex")}`) as Row[string]
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
