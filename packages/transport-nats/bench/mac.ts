/**
 * What authenticated envelopes (`ClusterKey`) cost per NATS message: sealing on the
 * sender, opening (checking the MAC and the counter) on the receiver, for bodies of
 * typical sizes. Prints microseconds per message; it is a script, not a test.
 *
 *   node_modules/.bin/node packages/transport-nats/bench/mac.ts
 */
import { ClusterKey } from "@synod/transport-nats"

const key = "a-cluster-key-of-at-least-32-characters"
const encoder = new TextEncoder()
const sizes = [200, 2_000, 16_000, 256_000]
console.log("body bytes   seal µs   open µs   encode µs (the UTF-8 encoding a publish does anyway, for scale)")
for (const size of sizes) {
  const body = `{"x":"${"y".repeat(size - 8)}"}`
  const seal = ClusterKey.sealer({ current: key }, "s1")
  const open = ClusterKey.opener({ current: key })
  const n = Math.max(200, Math.floor(4_000_000 / size))
  const sealed: Array<Uint8Array> = []
  for (let i = 0; i < 100; i++)
    open.open("synod.b.replica.s1", encoder.encode(seal.seal("synod.b.replica.s1", body)), true)
  let t = performance.now()
  for (let i = 0; i < n; i++) sealed.push(encoder.encode(seal.seal("synod.b.replica.s1", body)))
  // (sealing is timed with the encoding of its result, as a publish does it)
  const sealUs = ((performance.now() - t) * 1000) / n
  t = performance.now()
  for (const data of sealed) {
    const r = open.open("synod.b.replica.s1", data, true)
    if (!(r instanceof Uint8Array)) throw new Error(r.reason)
  }
  const openUs = ((performance.now() - t) * 1000) / n
  t = performance.now()
  let total = 0
  for (let i = 0; i < n; i++) total += encoder.encode(body).length
  const encodeUs = ((performance.now() - t) * 1000) / n
  if (total === 0) throw new Error("nothing encoded")
  console.log(
    `${String(size).padStart(10)}   ${sealUs.toFixed(2).padStart(7)}   ${openUs.toFixed(2).padStart(7)}   ${encodeUs.toFixed(2).padStart(9)}`
  )
}
