import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Command, Message } from "@synod/core"
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

  it.effect(
    "scoped client ids are two tokens; requests go to the replica's request subject of the client's scope",
    () =>
      Effect.sync(() => {
        assert.deepStrictEqual(Subjects.subject("prod", "client/alice.c7"), Option.some("synod.prod.client.alice.c7"))
        assert.deepStrictEqual(Subjects.parse("prod", "synod.prod.client.alice.c7"), Option.some("client/alice.c7"))
        for (const bad of ["client/a.b.c", "client/.b", "client/a.", "replica/a.b"]) {
          assert.isTrue(Option.isNone(Subjects.subject("prod", bad)), bad)
        }
        assert.isTrue(Option.isNone(Subjects.parse("prod", "synod.prod.replica.a.b")))
        assert.isTrue(Option.isNone(Subjects.parse("prod", "synod.prod.req.s1.alice")))
        const request = (client: string) =>
          new Message.Request({ command: new Command.Command({ client, seq: 1, acked: 0, op: null }) })
        assert.deepStrictEqual(
          Subjects.sendSubject("prod", "replica/s1", request("alice.c7")),
          Option.some("synod.prod.req.s1.alice")
        )
        assert.deepStrictEqual(
          Subjects.sendSubject("prod", "replica/s1", request("c7")),
          Option.some("synod.prod.req.s1.c7")
        )
        assert.isTrue(Option.isNone(Subjects.sendSubject("prod", "replica/s1", request("a>"))))
        const decision = new Message.Progress({ slotOut: 1 })
        assert.deepStrictEqual(
          Subjects.sendSubject("prod", "replica/s1", decision),
          Option.some("synod.prod.replica.s1")
        )
        assert.deepStrictEqual(Option.getOrThrow(Subjects.listenSubjects("prod", "replica/s1")), [
          { subject: "synod.prod.replica.s1", channel: "protocol" },
          { subject: "synod.prod.req.s1.*", channel: "request" }
        ])
        assert.strictEqual(Subjects.refusal("request", "synod.prod.req.s1.alice", request("alice.c7")), undefined)
        assert.include(Subjects.refusal("request", "synod.prod.req.s1.alice", request("bob.c7"))!, "scope")
        assert.include(Subjects.refusal("request", "synod.prod.req.s1.alice", decision)!, "Progress")
        assert.include(Subjects.refusal("protocol", "synod.prod.replica.s1", request("alice.c7"))!, "protocol subject")
        assert.strictEqual(Subjects.refusal("protocol", "synod.prod.replica.s1", decision), undefined)
        assert.include(Subjects.refusal("response", "synod.prod.client.alice.c7", decision)!, "client's subject")
        // a read is a client message: on the request subject of its client's scope, never on a protocol one
        const read = (client: string) => new Message.Read({ client, id: 1, op: null })
        assert.deepStrictEqual(
          Subjects.sendSubject("prod", "replica/s1", read("alice.c7")),
          Option.some("synod.prod.req.s1.alice")
        )
        assert.strictEqual(Subjects.refusal("request", "synod.prod.req.s1.alice", read("alice.c7")), undefined)
        assert.include(Subjects.refusal("request", "synod.prod.req.s1.alice", read("bob.c7"))!, "scope")
        assert.include(Subjects.refusal("protocol", "synod.prod.replica.s1", read("alice.c7"))!, "protocol subject")
        const answer = new Message.ReadResponse({ id: 1, result: null, slot: 0 })
        assert.strictEqual(Subjects.refusal("response", "synod.prod.client.alice.c7", answer), undefined)
        assert.include(Subjects.refusal("protocol", "synod.prod.leader.s1", answer)!, "protocol subject")
        assert.include(
          Subjects.refusal("request", "synod.prod.req.s1.alice", new Message.ReadIndex({ id: 1 }))!,
          "ReadIndex"
        )
      })
  )

  it("sendSubjects remembers subjects and answers what sendSubject answers, past its limit too", () => {
    const addresses = [
      "replica/s1",
      "replica/s2",
      "acceptor/s1",
      "leader/s3",
      "client/alice.c7",
      "replica/a.b",
      "nobody/x",
      "replica/*"
    ]
    const clients = ["alice.c7", "bob.c7", "c7", "a>", "a.b.c", "", "x"]
    const message = fc.oneof(
      fc
        .constantFrom(...clients)
        .map((client) => new Message.Request({ command: new Command.Command({ client, seq: 1, acked: 0, op: null }) })),
      fc.constantFrom(...clients).map((client) => new Message.Read({ client, id: 1, op: null })),
      fc.constant(new Message.Progress({ slotOut: 1 }))
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.constantFrom(...addresses), message), { maxLength: 60 }),
        (limit, sends) => {
          const subjectOf = Subjects.sendSubjects("prod", limit)
          for (const [to, m] of sends) assert.deepStrictEqual(subjectOf(to, m), Subjects.sendSubject("prod", to, m))
        }
      )
    )
  })

  it.effect(
    "permissions: a server subscribes to its own subjects only, a client user publishes requests of its scope only",
    () =>
      Effect.sync(() => {
        assert.deepStrictEqual(Subjects.serverPermissions("prod", "s1"), {
          publish: ["synod.prod.>"],
          subscribe: [
            "synod.prod.replica.s1",
            "synod.prod.leader.s1",
            "synod.prod.acceptor.s1",
            "synod.prod.learner.s1",
            "synod.prod.node.s1",
            "synod.prod.req.s1.*",
            "synod.prod.client.s1.*"
          ]
        })
        assert.deepStrictEqual(Subjects.clientPermissions("prod", "app"), {
          publish: ["synod.prod.req.*.app"],
          subscribe: ["synod.prod.client.app.*"]
        })
      })
  )
})
