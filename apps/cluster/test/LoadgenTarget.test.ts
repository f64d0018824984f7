/**
 * `bench/loadgen-target.ts`, the entry point the shared yardstick drives synod's client
 * through, against three `synod serve` processes over NATS: writes, linearizable reads,
 * many at once as the load generator's loops send them, and a clean close.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { create } from "../../../bench/loadgen-target.ts"
import * as ServeCluster from "./ServeCluster.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("bench/loadgen-target.ts", () => {
  it.live(
    "puts and gets through synod's own client, as the yardstick calls it",
    () =>
      ServeCluster.run({ name: "loadgen" }, (cluster) =>
        Effect.gen(function* () {
          yield* ServeCluster.ready(cluster)
          process.env.SYNOD_CLUSTER = cluster.name
          process.env.SYNOD_SERVERS = cluster.members.map((m) => m.node).join(",")
          const target = yield* Effect.promise(() => create({ endpoints: [cluster.natsUrl] }))
          try {
            assert.strictEqual(target.info.system, "synod")
            yield* Effect.promise(() => target.put("k0000000000000001", bytes("first")))
            const keys = Array.from({ length: 64 }, (_, i) => `k${String(i).padStart(15, "0")}`)
            yield* Effect.promise(() => Promise.all(keys.map((k) => target.put(k, bytes(`v-${k}`)))))
            const got = (yield* Effect.promise(() => target.get(keys[9]!))) as { readonly value?: string }
            assert.strictEqual(got.value, `v-${keys[9]}`)
            const first = (yield* Effect.promise(() => target.get("k0000000000000001"))) as { readonly value?: string }
            assert.strictEqual(first.value, "first")
          } finally {
            yield* Effect.promise(() => target.close())
            delete process.env.SYNOD_CLUSTER
            delete process.env.SYNOD_SERVERS
          }
        })
      ),
    90_000
  )
})
