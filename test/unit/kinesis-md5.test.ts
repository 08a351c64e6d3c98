/** The JavaScript MD5 that routes events, against node:crypto (OpenSSL). */
import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import { md5Words } from "../../services/shared/kinesis/md5.ts"
import { Random } from "../../tools/source/random.ts"

/** node:crypto's digest as the same four big-endian unsigned words. */
const oracle = (text: string): [number, number, number, number] => {
  const digest = createHash("md5").update(text, "utf8").digest()
  return [digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)]
}

const hex = (words: ReadonlyArray<number>) => words.map((w) => w.toString(16).padStart(8, "0")).join("")

describe("md5Words", () => {
  it("RFC 1321 test vectors", () => {
    expect(hex(md5Words(""))).toBe("d41d8cd98f00b204e9800998ecf8427e")
    expect(hex(md5Words("a"))).toBe("0cc175b9c0f1b6a831c399e269772661")
    expect(hex(md5Words("abc"))).toBe("900150983cd24fb0d6963f7d28e17f72")
    expect(hex(md5Words("message digest"))).toBe("f96b697d7cb7938d525a2f31aaf161d0")
    expect(hex(md5Words("abcdefghijklmnopqrstuvwxyz"))).toBe("c3fcd3d76192e4007dfb496cca67e13b")
    expect(hex(md5Words("12345678901234567890123456789012345678901234567890123456789012345678901234567890"))).toBe("57edf4a22be3c955ac49da2e2107b67a")
  })

  it("returns unsigned 32-bit words", () => {
    for (const text of ["", "payment:1", "sales_order:42", "ü"]) {
      for (const word of md5Words(text)) {
        expect(Number.isInteger(word)).toBe(true)
        expect(word).toBeGreaterThanOrEqual(0)
        expect(word).toBeLessThanOrEqual(0xffffffff)
      }
    }
  })

  it("ASCII of every length 0..200 (around the 55/56/63/64/119/120 byte padding boundaries)", () => {
    const rng = new Random("md5-ascii")
    for (let length = 0; length <= 200; length++) {
      for (let sample = 0; sample < 3; sample++) {
        const text = Array.from({ length }, () => String.fromCharCode(rng.int(0, 0x7f))).join("")
        expect(md5Words(text), `length ${length}`).toEqual(oracle(text))
      }
    }
  })

  it("UTF-8 whose byte length crosses the block boundaries (2-, 3- and 4-byte characters)", () => {
    const rng = new Random("md5-utf8")
    const alphabet = ["a", "é", "λ", "€", "日", "😀", "𝄞", "\u0080", "\u07ff", "\u0800", "\uffff", "\u{10ffff}"]
    const seenLengths = new Set<number>()
    for (let i = 0; i < 2000; i++) {
      let text = ""
      const target = rng.int(0, 200)
      while (Buffer.byteLength(text) < target) text += rng.pick(alphabet)
      seenLengths.add(Buffer.byteLength(text))
      expect(md5Words(text), JSON.stringify(text)).toEqual(oracle(text))
    }
    for (const boundary of [55, 56, 63, 64, 119, 120, 127, 128]) expect(seenLengths.has(boundary), `byte length ${boundary} covered`).toBe(true)
  })

  it("one non-ASCII character at the start, middle or end of an ASCII key of length 50..130", () => {
    for (let length = 50; length <= 130; length++) {
      for (const position of [0, length >> 1, length - 1]) {
        const text = `${"k".repeat(position)}ü${"k".repeat(length - position - 1)}`
        expect(md5Words(text), `length ${length} at ${position}`).toEqual(oracle(text))
      }
    }
  })

  it("alternating long and short inputs (the scratch buffer grows and is reused)", () => {
    const texts = ["x".repeat(5000), "a", "é".repeat(3000), "", "y".repeat(63), "z".repeat(10_000), "b"]
    for (const text of [...texts, ...texts.reverse()]) expect(md5Words(text)).toEqual(oracle(text))
  })

  it("lone surrogates hash as their UTF-8 replacement character, like node:crypto", () => {
    for (const text of ["\ud800", "key-\udfff", "a\ud83d"]) expect(md5Words(text)).toEqual(oracle(text))
  })
})
