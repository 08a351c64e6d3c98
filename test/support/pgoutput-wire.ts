/**
 * pgoutput protocol-1 messages as the walsender sends them (PostgreSQL docs, "Logical Replication
 * Message Formats"), for unit tests that parse them with the reader's real parser instead of
 * hand-shaping the parsed objects.
 */
export type TupleValue = { readonly text: string } | { readonly binary: Uint8Array } | null | "unchanged"

export interface WireColumn {
  readonly name: string
  readonly typeOid: number
  /** Part of the replica identity (pgoutput flags every column under REPLICA IDENTITY FULL). */
  readonly key?: boolean
}

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
const PG_EPOCH_MICROS = 946_684_800_000_000n

class Writer {
  private readonly parts: Array<Buffer> = []
  byte(value: number) {
    this.parts.push(Buffer.from([value]))
    return this
  }
  char(c: string) {
    return this.byte(c.charCodeAt(0))
  }
  int16(value: number) {
    const b = Buffer.alloc(2)
    b.writeInt16BE(value)
    this.parts.push(b)
    return this
  }
  int32(value: number) {
    const b = Buffer.alloc(4)
    b.writeInt32BE(value)
    this.parts.push(b)
    return this
  }
  int64(value: bigint) {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(value)
    this.parts.push(b)
    return this
  }
  lsn(text: string) {
    const [hi, lo] = text.split("/") as [string, string]
    return this.int64((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`))
  }
  string(text: string) {
    this.parts.push(Buffer.from(text, "utf8"), Buffer.from([0]))
    return this
  }
  bytes(value: Uint8Array) {
    this.parts.push(Buffer.from(value))
    return this
  }
  tuple(values: ReadonlyArray<TupleValue>) {
    this.int16(values.length)
    for (const value of values) {
      if (value === null) this.char("n")
      else if (value === "unchanged") this.char("u")
      else if ("text" in value) this.char("t").int32(Buffer.byteLength(value.text)).bytes(Buffer.from(value.text, "utf8"))
      else this.char("b").int32(value.binary.length).bytes(value.binary)
    }
    return this
  }
  done(): Buffer {
    return Buffer.concat(this.parts)
  }
}

const micros = (iso: string, extraMicros = 0n) => BigInt(Date.parse(iso)) * 1000n + extraMicros - PG_EPOCH_MICROS

export const wire = {
  relation: (relationOid: number, schema: string, name: string, identity: "d" | "f" | "i" | "n", columns: ReadonlyArray<WireColumn>) => {
    const w = new Writer().char("R").int32(relationOid).string(schema).string(name).char(identity).int16(columns.length)
    for (const c of columns) w.byte(c.key ? 1 : 0).string(c.name).int32(c.typeOid).int32(-1)
    return w.done()
  },
  /** `commitTime`: ISO with milliseconds, plus `extraMicros` below the millisecond. */
  begin: (finalLsn: string, commitTime: string, xid: number, extraMicros = 0n) => new Writer().char("B").lsn(finalLsn).int64(micros(commitTime, extraMicros)).int32(xid).done(),
  commit: (commitLsn: string, endLsn: string, commitTime: string, extraMicros = 0n) =>
    new Writer().char("C").byte(0).lsn(commitLsn).lsn(endLsn).int64(micros(commitTime, extraMicros)).done(),
  insert: (relationOid: number, values: ReadonlyArray<TupleValue>) => new Writer().char("I").int32(relationOid).char("N").tuple(values).done(),
  /** `old`: a key-only ('K') or whole ('O') old image, or none. */
  update: (relationOid: number, values: ReadonlyArray<TupleValue>, old?: { readonly kind: "K" | "O"; readonly values: ReadonlyArray<TupleValue> }) => {
    const w = new Writer().char("U").int32(relationOid)
    if (old) w.char(old.kind).tuple(old.values)
    return w.char("N").tuple(values).done()
  },
  delete: (relationOid: number, kind: "K" | "O", values: ReadonlyArray<TupleValue>) => new Writer().char("D").int32(relationOid).char(kind).tuple(values).done(),
  truncate: (relationOids: ReadonlyArray<number>, options = 0) => {
    const w = new Writer().char("T").int32(relationOids.length).byte(options)
    for (const oid of relationOids) w.int32(oid)
    return w.done()
  },
  message: (transactional: boolean, lsn: string, prefix: string, content: string) =>
    new Writer().char("M").byte(transactional ? 1 : 0).lsn(lsn).string(prefix).int32(Buffer.byteLength(content)).bytes(Buffer.from(content, "utf8")).done(),
  type: (typeOid: number, schema: string, name: string) => new Writer().char("Y").int32(typeOid).string(schema).string(name).done(),
  origin: (lsn: string, name: string) => new Writer().char("O").lsn(lsn).string(name).done()
}

export const t = (text: string): TupleValue => ({ text })
