/**
 * MD5 of a short string, in JavaScript. Kinesis routes a record by the MD5 of its partition key;
 * the reader computes it once per event, and for keys of a few dozen bytes a call into OpenSSL
 * (node:crypto) costs several times more than the hash itself. Checked against node:crypto in
 * the unit tests. Returns the digest as four big-endian 32-bit words (the 128-bit hash key).
 */
const S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0)

const encoder = new TextEncoder()
let scratch = new Uint8Array(128)
const words = new Int32Array(16)

const swap = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0

/** MD5 digest of the UTF-8 bytes of `text`, as [w0, w1, w2, w3] (big-endian words, unsigned). */
export const md5Words = (text: string): [number, number, number, number] => {
  let length = text.length
  let bytes: Uint8Array
  let ascii = true
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) > 0x7f) ascii = false
  if (ascii) {
    const padded = ((length + 8) >> 6) * 64 + 64
    if (scratch.length < padded) scratch = new Uint8Array(padded * 2)
    for (let i = 0; i < length; i++) scratch[i] = text.charCodeAt(i)
    bytes = scratch
  } else {
    const utf8 = encoder.encode(text)
    length = utf8.length
    const padded = ((length + 8) >> 6) * 64 + 64
    if (scratch.length < padded) scratch = new Uint8Array(padded * 2)
    scratch.set(utf8)
    bytes = scratch
  }
  const blocks = ((length + 8) >> 6) + 1
  const total = blocks * 64
  bytes[length] = 0x80
  bytes.fill(0, length + 1, total)
  const bits = length * 8
  bytes[total - 8] = bits & 0xff
  bytes[total - 7] = (bits >>> 8) & 0xff
  bytes[total - 6] = (bits >>> 16) & 0xff
  bytes[total - 5] = (bits >>> 24) & 0xff
  const high = Math.floor(bits / 2 ** 32)
  bytes[total - 4] = high & 0xff
  bytes[total - 3] = (high >>> 8) & 0xff
  bytes[total - 2] = (high >>> 16) & 0xff
  bytes[total - 1] = (high >>> 24) & 0xff

  let a0 = 0x67452301
  let b0 = 0xefcdab89 | 0
  let c0 = 0x98badcfe | 0
  let d0 = 0x10325476
  for (let block = 0; block < blocks; block++) {
    const base = block * 64
    for (let i = 0; i < 16; i++) {
      const o = base + i * 4
      words[i] = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)
    }
    let a = a0
    let b = b0
    let c = c0
    let d = d0
    for (let i = 0; i < 64; i++) {
      let f: number
      let g: number
      if (i < 16) {
        f = (b & c) | (~b & d)
        g = i
      } else if (i < 32) {
        f = (d & b) | (~d & c)
        g = (5 * i + 1) & 15
      } else if (i < 48) {
        f = b ^ c ^ d
        g = (3 * i + 5) & 15
      } else {
        f = c ^ (b | ~d)
        g = (7 * i) & 15
      }
      const sum = (a + f + K[i]! + words[g]!) | 0
      a = d
      d = c
      c = b
      b = (b + ((sum << S[i]!) | (sum >>> (32 - S[i]!)))) | 0
    }
    a0 = (a0 + a) | 0
    b0 = (b0 + b) | 0
    c0 = (c0 + c) | 0
    d0 = (d0 + d) | 0
  }
  return [swap(a0), swap(b0), swap(c0), swap(d0)]
}
