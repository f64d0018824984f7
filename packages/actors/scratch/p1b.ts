import { Codec, Trusted, Ballot, Address } from "@synod/core"
import { AcceptorCore } from "../src/Acceptor.ts"
import { ScoutTally } from "../src/Scout.ts"
import { Limits } from "@synod/core"
const b = Trusted.ballot(3, "s1")
const N = 1600, PER = 40
const pvs = []
for (let s = 1; s <= N; s++) {
  const cmds = []
  for (let i = 0; i < PER; i++) cmds.push(Trusted.command(`c${i}`, s, s - 1, { _tag: "Put", key: `key-${s}-${i}-xxxxx`, value: "v".repeat(100) } as any))
  pvs.push(Trusted.pvalue(b, s, Trusted.batch(cmds)))
}
const acc = new AcceptorCore({ promised: b, accepted: pvs.map((p) => [p.slot, p] as const), watermark: 1 } as any, { pageBytes: Limits.fromMessageBytes(1024 * 1024).pageBytes })
const b2 = Trusted.ballot(4, "s2")
const from = Address.make ? undefined : undefined
for (let round = 0; round < 3; round++) {
  const tally = new ScoutTally(b2, ["a1"], 1)
  let at = 1, pages = 0
  let tBuild = 0, tEnc = 0, tDec = 0, tMerge = 0, bytes = 0
  const t0 = performance.now()
  for (;;) {
    let t = performance.now()
    const p1b = acc.p1a(b2, at)
    tBuild += performance.now() - t; t = performance.now()
    const env = Trusted.envelope("acceptor/a1" as any, "leader/s2" as any, p1b)
    const bytesOut = Codec.encodeBytes(env)
    bytes += bytesOut.length
    tEnc += performance.now() - t; t = performance.now()
    const dec = Codec.decode(bytesOut)
    if (dec._tag !== "Success") throw new Error(JSON.stringify(dec))
    tDec += performance.now() - t; t = performance.now()
    const step = tally.p1b("a1", dec.success.message as any)
    tMerge += performance.now() - t
    pages++
    if (step._tag === "NextPage") { at = (dec.success.message as any).next; continue }
    break
  }
  console.log({ pages, bytes, total: performance.now() - t0, tBuild, tEnc, tDec, tMerge })
}
