// RFC 6962 / RFC 9162 Merkle consistency proofs, verified with WebCrypto's
// SHA-256: a port of VerifyConsistency of github.com/transparency-dev/merkle
// (proof/verify.go), the library the server's audit package proves with.
// Sizes are BigInt inside, so that trees past 2^32 leaves work.

async function hashChildren(l: Uint8Array, r: Uint8Array): Promise<Uint8Array> {
  const b = new Uint8Array(1 + l.length + r.length)
  b[0] = 1
  b.set(l, 1)
  b.set(r, 1 + l.length)
  return new Uint8Array(await crypto.subtle.digest('SHA-256', b))
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

const bitLen = (x: bigint) => (x === 0n ? 0 : x.toString(2).length)
const onesCount = (x: bigint) => [...x.toString(2)].filter((c) => c === '1').length
function trailingZeros(x: bigint): number {
  let n = 0
  while (x > 0n && (x & 1n) === 0n) {
    x >>= 1n
    n++
  }
  return n
}

/**
 * verifyConsistency checks that a log of size2 with root2 extends the log of
 * size1 with root1, given the consistency proof's hashes (oldest level
 * first, as GET /v1/audit/proof/consistency answers them). It returns an
 * error message, or null when the proof holds.
 */
export async function verifyConsistency(size1: number | bigint, size2: number | bigint, proof: Uint8Array[], root1: Uint8Array, root2: Uint8Array): Promise<string | null> {
  const s1 = BigInt(size1), s2 = BigInt(size2)
  if (s2 < s1) return `size2 (${s2}) < size1 (${s1})`
  if (s1 === s2) {
    if (proof.length > 0) return 'size1=size2, but proof is not empty'
    return equal(root1, root2) ? null : 'the roots differ at the same size'
  }
  if (s1 === 0n) return proof.length > 0 ? `expected empty proof, but got ${proof.length} components` : null
  if (proof.length === 0) return 'empty proof'
  const index = s1 - 1n
  let inner = bitLen(index ^ (s2 - 1n))
  const border = onesCount(index >> BigInt(inner))
  const shift = trailingZeros(s1)
  inner -= shift
  let seed = proof[0]!, start = 1
  if (s1 === 1n << BigInt(shift)) {
    seed = root1
    start = 0
  }
  if (proof.length !== start + inner + border) return `wrong proof size ${proof.length}, want ${start + inner + border}`
  const p = proof.slice(start)
  const mask = (s1 - 1n) >> BigInt(shift)
  // The first root, from the hashes left of the path.
  let h1 = seed
  for (let i = 0; i < inner; i++) if (((mask >> BigInt(i)) & 1n) === 1n) h1 = await hashChildren(p[i]!, h1)
  for (const h of p.slice(inner)) h1 = await hashChildren(h, h1)
  if (!equal(h1, root1)) return 'the proof does not lead to the first root'
  // The second root.
  let h2 = seed
  for (let i = 0; i < inner; i++) h2 = ((mask >> BigInt(i)) & 1n) === 0n ? await hashChildren(h2, p[i]!) : await hashChildren(p[i]!, h2)
  for (const h of p.slice(inner)) h2 = await hashChildren(h, h2)
  return equal(h2, root2) ? null : 'the proof does not lead to the second root'
}

/** Checkpoint is the body of a signed checkpoint note (C2SP tlog-checkpoint). */
export interface Checkpoint {
  origin: string
  size: number
  root: Uint8Array
  rootBase64: string
}

/** parseCheckpoint reads the origin, size and root hash of a checkpoint note. */
export function parseCheckpoint(note: string): Checkpoint {
  const [origin = '', size = '', root = ''] = note.split('\n')
  if (!/^\d+$/.test(size)) throw new Error('checkpoint: the second line is not a size')
  const raw = Uint8Array.from(atob(root), (c) => c.charCodeAt(0))
  if (raw.length !== 32) throw new Error('checkpoint: the third line is not a SHA-256 root hash')
  return { origin, size: Number(size), root: raw, rootBase64: root }
}
