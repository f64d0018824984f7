/**
 * The live dashboard (`/ui`): its sampling arithmetic, and the page in headless Chromium
 * against real processes — `synod up`, whose numbers move as writes flow, and three
 * `synod serve` processes, where the page of a survivor shows the new leader after the
 * leader is killed. Screenshots go to the test's temp dir (or `SYNOD_SCREENSHOTS`).
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Address, InMemoryBus, Transport, Trusted } from "@synod/core"
import * as Dashboard from "@synod/cluster/Dashboard"
import * as Browser from "@synod/testing/Browser"
import { Context, Effect, Layer } from "effect"
import { daemon, http } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

const shots = mkdtempSync(Path.join(tmpdir(), "synod-dashboard-"))

/** A browser for the lifetime of the scope. */
const browser = Effect.acquireRelease(Effect.promise(Browser.launch), (b) => Effect.promise(() => b.close()))

const cell = (page: Browser.Page, server: string, field: string) =>
  page.locator(`tr[data-server="${server}"] td[data-field="${field}"]`).textContent()

const view = (id: string, over: Partial<Dashboard.ServerView> = {}): Dashboard.ServerView => ({
  id,
  leader: { active: false, ballot: "⊥", decided: 0, timeoutMs: 300 },
  acceptor: { promised: "⊥", watermark: 1, accepted: 0 },
  replica: {
    slotOut: 1,
    lag: 0,
    pending: 0,
    window: 16,
    watermark: 1,
    durable: 1,
    following: null,
    committed: 0
  },
  ...over
})

describe("dashboard", () => {
  it("percentiles: nearest rank, null without samples", () => {
    assert.isNull(Dashboard.percentiles([]))
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i) // 100..1, unsorted
    assert.deepStrictEqual(Dashboard.percentiles(xs), { count: 100, p50: 50, p90: 90, p99: 99, max: 100 })
    assert.deepStrictEqual(Dashboard.percentiles([7]), { count: 1, p50: 7, p90: 7, p99: 7, max: 7 })
  })

  it.effect("message rates: a send counts by type, through send and through sendUnsafe (a promise's first send)", () =>
    Effect.gen(function* () {
      const bus = yield* Layer.build(InMemoryBus.layer({ encode: false }))
      const traffic = Dashboard.makeTraffic()
      const counted = Dashboard.countSends(traffic, Context.get(bus, Transport.Transport))
      const from = Address.client("c")
      const to = Address.replica("s1")
      const request = Trusted.request(Trusted.command("c", 1, 1, { _tag: "Get", key: "k" }))
      yield* counted.send(to, Trusted.envelope(from, to, request))
      assert.isDefined(counted.sendUnsafe)
      counted.sendUnsafe!(to, Trusted.envelope(from, to, request))
      assert.deepStrictEqual(traffic.sent, { Request: 2 })
    })
  )

  it("leadership events from the metrics: a leader elected, moving on or stepping down, a new promise", () => {
    const reading = (
      active: Record<string, number>,
      round: Record<string, number>,
      promised: Record<string, number>
    ): Dashboard.Leadership => ({
      active: new Map(Object.entries(active)),
      round: new Map(Object.entries(round)),
      promised: new Map(Object.entries(promised))
    })
    const start = reading({ s1: 0, s2: 0 }, { s1: 0, s2: 0 }, { s1: 0, s2: 0 })
    const elected = reading({ s1: 1, s2: 0 }, { s1: 1, s2: 0 }, { s1: 1, s2: 1 })
    assert.deepStrictEqual(
      Dashboard.leadershipEvents(start, elected, 5).map((e) => e.text),
      ["leader s1 became active at ballot 1.s1", "acceptor s1 promised 1.s1", "acceptor s2 promised 1.s1"]
    )
    const taken = reading({ s1: 0, s2: 1 }, { s1: 1, s2: 2 }, { s1: 2, s2: 2 })
    assert.deepStrictEqual(
      Dashboard.leadershipEvents(elected, taken, 6).map((e) => e.text),
      [
        "leader s1 stepped down (ballot 1.s1)",
        "leader s2 became active at ballot 2.s2",
        "acceptor s1 promised 2.s2",
        "acceptor s2 promised 2.s2"
      ]
    )
    const competing = reading({ s1: 0, s2: 1 }, { s1: 3, s2: 2 }, { s1: 2, s2: 2 })
    assert.deepStrictEqual(
      Dashboard.leadershipEvents(taken, competing, 7).map((e) => e.text),
      ["leader s1 moved to ballot 3.s1"]
    )
    assert.deepStrictEqual(Dashboard.leadershipEvents(taken, taken, 8), [])
    // servers not seen before (just started) make no events
    assert.deepStrictEqual(Dashboard.leadershipEvents(reading({}, {}, {}), taken, 9), [])
  })

  it("following events: a replica that switches leaders or loses its leader", () => {
    const before = [view("s1"), view("s2", { replica: { ...view("s2").replica!, following: "s1" } })]
    const after = [
      view("s1", { replica: { ...view("s1").replica!, following: "s2" } }),
      view("s2", { replica: { ...view("s2").replica!, following: null } })
    ]
    assert.deepStrictEqual(
      Dashboard.followingEvents(before, after, 5).map((e) => e.text),
      ["replica s1 follows leader s2", "replica s2 lost its leader"]
    )
    assert.deepStrictEqual(Dashboard.followingEvents([], after, 6), [])
  })

  it.live(
    "in Chromium: synod up's /ui shows its three servers, and commits, latency and message rates move as writes flow",
    () =>
      Effect.gen(function* () {
        const proc = yield* daemon(["up", "--port", "0"])
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        const b = yield* browser
        const { page, errors } = yield* Effect.promise(() => Browser.open(b, `${url}/ui`))
        yield* Effect.promise(() => page.locator("#live", { hasText: "live" }).waitFor({ timeout: 20_000 }))
        yield* Effect.promise(() => page.locator('tr[data-server="s3"]').waitFor({ timeout: 20_000 }))
        const before = Number(yield* Effect.promise(() => cell(page, "s1", "committed")))
        for (let i = 0; i < 40; i++) {
          const r = yield* http("PUT", `${url}/kv/dash${i}`, { value: `v${i}` })
          assert.strictEqual(r.status, 200)
        }
        // the latency of those writes: the page shows the latest second with requests
        yield* Effect.promise(() => Browser.waitForText(page, "#p50", String.raw`/^\d+\.\d$/.test(text)`))
        // every replica performed the 40 writes, and the page says so
        for (const s of ["s1", "s2", "s3"]) {
          yield* Effect.promise(() =>
            Browser.waitForText(
              page,
              `tr[data-server="${s}"] td[data-field="committed"]`,
              `Number(text) >= ${before + 40}`
            )
          )
        }
        const active = yield* Effect.promise(() => page.locator("td.active").count())
        assert.strictEqual(active, 1, "one active leader")
        assert.match(
          (yield* Effect.promise(() => page.locator("#leader").textContent())) ?? "",
          /^s\d at ballot \d+\.s\d/
        )
        assert.match((yield* Effect.promise(() => page.locator("#events").textContent())) ?? "", /became active/)
        // the messages those writes took (followers hear of decisions by `Chosen`)
        for (const tag of ["P2a", "P2b", "Chosen"]) {
          const rate = yield* Effect.promise(() => page.locator(`#rates tr[data-tag="${tag}"]`).count())
          assert.strictEqual(rate, 1, `${tag} in the message rates`)
        }
        assert.isTrue(
          (yield* Effect.promise(() => page.locator('#commits-chart path[data-series="commits"]').count())) > 0
        )
        yield* Effect.promise(() =>
          page.screenshot({ path: Browser.screenshotPath(shots, "dashboard.png"), fullPage: true })
        )
        assert.deepStrictEqual(errors, [])
        // stopping the process with a dashboard open: the stream ends, the process exits at once
        assert.strictEqual(yield* proc.signal("SIGTERM"), 0)
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "in Chromium: after the leader's process is killed, a survivor's /ui shows the new leader",
    () =>
      ServeCluster.run({ name: "dashboard-failover" }, (cluster) =>
        Effect.gen(function* () {
          // the leader, as a replica's page names it; then watch from a server other than the leader
          assert.strictEqual((yield* http("PUT", `${cluster.members[0]!.url}/kv/before`, { value: "x" })).status, 200)
          const b = yield* browser
          const followingCell = (node: string) => `tr[data-server="${node}"] td[data-field="following"]`
          const leaderSeenBy = (m: ServeCluster.Member) =>
            Effect.gen(function* () {
              const opened = yield* Effect.promise(() => Browser.open(b, `${m.url}/ui`))
              yield* Effect.promise(() =>
                Browser.waitForText(opened.page, followingCell(m.node), "/^s\\d$/.test(text)")
              )
              return { ...opened, leader: (yield* Effect.promise(() => cell(opened.page, m.node, "following")))! }
            })
          // a watcher that is not the leader and whose page names it, read again just before
          // the kill: on a loaded machine the leadership may move on its own between two
          // readings (a leader's heartbeats late past the failure detector's timeout)
          let watcher = cluster.members[0]!
          let seen = yield* leaderSeenBy(watcher)
          let old: ServeCluster.Member
          for (let attempt = 0; ; attempt++) {
            const leader = cluster.members.find((m) => m.node === seen.leader)!
            const still = yield* Effect.promise(() => cell(seen.page, watcher.node, "following"))
            if (leader !== watcher && still === leader.node) {
              old = leader
              break
            }
            assert.isBelow(attempt, 5, "the leadership kept moving before any fault")
            if (leader === watcher) watcher = cluster.members.find((m) => m !== leader)!
            seen = yield* leaderSeenBy(watcher)
          }
          const { page, errors } = seen
          const following = () => Effect.promise(() => cell(page, watcher.node, "following"))
          yield* old.proc.signal("SIGKILL")
          yield* Effect.promise(() =>
            Browser.waitForText(
              page,
              followingCell(watcher.node),
              `/^s\\d$/.test(text) && text !== ${JSON.stringify(old.node)}`,
              30_000
            )
          )
          const next = (yield* following()) ?? ""
          assert.notStrictEqual(next, old.node)
          assert.include(
            (yield* Effect.promise(() => page.locator("#events").textContent())) ?? "",
            `follows leader ${next}`
          )
          // and it commits through the new leader
          assert.strictEqual((yield* http("PUT", `${watcher.url}/kv/after-failover`, { value: "x" })).status, 200)
          yield* Effect.promise(() =>
            page.screenshot({ path: Browser.screenshotPath(shots, "dashboard-failover.png"), fullPage: true })
          )
          assert.deepStrictEqual(errors, [])
        })
      ).pipe(Effect.scoped),
    120_000
  )
})
