import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Subjects } from "@synod/transport-nats"

describe("Subjects", () => {
  it.effect("maps an address to synod.<cluster>.<role>.<id> and back", () =>
    Effect.sync(() => {
      const s = Subjects.subject("prod", "acceptor/a1")
      assert.deepStrictEqual(s, Option.some("synod.prod.acceptor.a1"))
      assert.deepStrictEqual(Subjects.parse("prod", "synod.prod.acceptor.a1"), Option.some("acceptor/a1"))
      assert.deepStrictEqual(Subjects.subject("c-1_x", "client/7f3c-9a"), Option.some("synod.c-1_x.client.7f3c-9a"))
    })
  )

  it.effect("refuses addresses that would not be one subject token", () =>
    Effect.sync(() => {
      for (const bad of ["acceptor/a.1", "acceptor/*", "acceptor/>", "acceptor/a b", "nobody/a1", "acceptor/", "a1"]) {
        assert.isTrue(Option.isNone(Subjects.subject("prod", bad)), bad)
      }
    })
  )

  it.effect("parses only subjects of its own cluster and scheme", () =>
    Effect.sync(() => {
      for (const bad of [
        "synod.other.acceptor.a1",
        "synod.prod.acceptor",
        "synod.prod.acceptor.a1.x",
        "synod.prod.nobody.a1",
        "other.prod.acceptor.a1",
        "synod.prod.acceptor.*"
      ]) {
        assert.isTrue(Option.isNone(Subjects.parse("prod", bad)), bad)
      }
    })
  )

  it.effect("names a node's presence subject, which is no address but falls under the node's wildcard", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(Subjects.presence("prod", "s1"), Option.some("synod.prod.node.s1"))
      assert.isTrue(Option.isNone(Subjects.parse("prod", "synod.prod.node.s1")))
      for (const bad of ["s.1", "*", ">", ""]) assert.isTrue(Option.isNone(Subjects.presence("prod", bad)), bad)
    })
  )

  it.effect("builds wildcards for a cluster, a role and a node", () =>
    Effect.sync(() => {
      assert.strictEqual(Subjects.wildcard("prod"), "synod.prod.>")
      assert.strictEqual(Subjects.wildcard("prod", { role: "acceptor" }), "synod.prod.acceptor.*")
      assert.strictEqual(Subjects.wildcard("prod", { id: "s1" }), "synod.prod.*.s1")
      assert.strictEqual(Subjects.wildcard("prod", { role: "client", id: "c1" }), "synod.prod.client.c1")
    })
  )

  it.effect("validates cluster names as single NATS tokens", () =>
    Effect.sync(() => {
      assert.isTrue(Subjects.isClusterName("prod-eu_1"))
      for (const bad of ["", "a.b", "*", ">", "a b", "x".repeat(65)]) assert.isFalse(Subjects.isClusterName(bad), bad)
    })
  )
})
