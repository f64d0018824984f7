/**
 * Hostile input under load: a nats-server and 3 `synod serve` processes (fsync on), closed-
 * loop writers in this process, and a publisher that sends garbage to every subject the
 * servers listen on — random bytes, broken JSON, JSON that is no envelope, envelopes of the
 * wrong shape, commands with impossible numbers, and now and then a string of half a
 * megabyte — first for `--seconds` without the garbage, then for as long with it. Then it
 * checks what a user would: each writer's key holds its last acknowledged write or a later
 * one, every server still answers, the servers counted what they dropped
 * (`synod_nats_decode_errors_total`, `synod_nats_refused_total`), and their logs stayed
 * short (`LogBudget`: a few lines per kind and subscription in 10 s). Prints the figures,
 * then PASS or FAIL (exit code 1).
 *
 *   pnpm bench hostile
 *   pnpm bench hostile --seconds 20 --clients 64 --junk-rate 10000 --big-every 200
 *
 * Flags: --seconds S (10, each phase), --clients N (32), --junk-rate N (5000 messages a
 * second), --big-every N (500: one message in N is 512 KB), --keep (keep data and logs).
 * With a cluster key (not here) the servers would also drop forged protocol messages that
 * decode; without one, anyone who may publish on the subjects is trusted (README,
 * "Running it securely"), so this sends nothing that decodes.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { connect } from "@nats-io/transport-node"
import { Client } from "@synod/actors"
import { Kv } from "@synod/kv"
import { NatsTransport, Subjects } from "@synod/transport-nats"
import { Effect, Layer, Option, References } from "effect"
import * as Cluster from "./Cluster.ts"
import { BenchError, flag, has, now, print } from "./Cluster.ts"

const seconds = flag("seconds", 10)
const clients = flag("clients", 32)
const junkRate = flag("junk-rate", 5000)
const bigEvery = flag("big-every", 500)

/** Each kind of garbage, made once: building them per message would be this process's CPU, not the servers'. */
const junk: ReadonlyArray<Uint8Array | string> = [
  crypto.getRandomValues(new Uint8Array(700)),
  "{",
  "\u0000".repeat(100),
  JSON.stringify([1, 2, 3]),
  JSON.stringify({ from: "leader/s9", to: "replica/s1", message: { _tag: "Decision", slot: -1, command: null } }),
  JSON.stringify({ from: "acceptor/s2", to: "leader/s1", message: { _tag: "P2b", ballot: { round: 1e300 } } }),
  JSON.stringify({
    from: "client/hostile.0",
    to: "replica/s1",
    message: { _tag: "Request", command: { client: "hostile.0", seq: 1e300, op: { _tag: "Put", key: 1 } } }
  }),
  `${JSON.stringify({ a: "b".repeat(3000) })}}{`
]
const big = "x".repeat(512 * 1024)

/** A counter's total over the servers' `/metrics`. */
const counter = (text: string, name: string): number =>
  text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0)

const metrics = (cluster: Cluster.Cluster) =>
  Effect.forEach(cluster.servers, (s) =>
    Effect.promise(() =>
      fetch(`${s.url}/metrics`)
        .then((r) => r.text())
        .catch(() => "")
    )
  )

const main = Effect.gen(function* () {
  print(
    `hostile input: 3 servers over NATS (fsync on), ${clients} writers, ${seconds} s without garbage then ${seconds} s ` +
      `with ${junkRate} garbage messages a second on every server subject (one in ${bigEvery} of 512 KB)`
  )
  const cluster = yield* Cluster.start({
    servers: 3,
    name: "hostile",
    clientTimeoutMs: 10_000,
    keep: () => has("keep")
  })
  /** Each writer's key and the sequence number of its last acknowledged write. */
  const acked = new Map<string, number>()
  const sequence = (value: string) => Number(value.split(".")[1])
  const load = yield* Cluster.load(cluster, {
    clients,
    valueBytes: 100,
    onCommit: (_start, _end, { key, value }) => acked.set(key, sequence(value))
  })
  yield* Effect.sleep("2 seconds")
  const clean0 = load.committed()
  yield* Effect.sleep(`${seconds} seconds`)
  const clean = (load.committed() - clean0) / seconds

  // the garbage, from a connection of its own, paced every 10 ms
  const subjects = cluster.servers.flatMap((s) => [
    ...["acceptor", "leader", "replica"].flatMap((role) =>
      Option.toArray(Subjects.subject(cluster.name, `${role}/${s.id}`))
    ),
    ...Option.toArray(Subjects.requestSubject(cluster.name, s.id, "hostile.0"))
  ])
  const nc = yield* Effect.promise(() => connect({ servers: cluster.natsUrl, name: "hostile" }))
  const before = yield* metrics(cluster)
  const linesFrom = now()
  let sent = 0
  const timer = setInterval(() => {
    for (let i = 0; i < junkRate / 100; i++, sent++) {
      nc.publish(subjects[sent % subjects.length]!, sent % bigEvery === bigEvery - 1 ? big : junk[sent % junk.length]!)
    }
  }, 10)
  const dirty0 = load.committed()
  yield* Effect.sleep(`${seconds} seconds`)
  const dirty = (load.committed() - dirty0) / seconds
  clearInterval(timer)
  yield* Effect.promise(() => nc.flush().then(() => nc.close()))
  yield* load.stop
  yield* Effect.sleep("2 seconds")
  const after = yield* metrics(cluster)
  const lines = cluster.servers.map((s) => s.lines(linesFrom, 1_000_000).length)

  // each key holds its writer's last acknowledged write or a later one (one in flight when stopped)
  const ctx = yield* Layer.build(
    NatsTransport.layer({ servers: [cluster.natsUrl], name: "checker", cluster: cluster.name })
  )
  const checker = yield* Client.make(Kv.machine, cluster.config, { id: "checker.0" }).pipe(Effect.provideContext(ctx))
  const lost: Array<string> = []
  for (const [key, n] of acked) {
    const got = yield* checker.submit({ _tag: "Get", key })
    const read = got._tag === "Value" && got.value !== null ? sequence(got.value) : -1
    if (!(read >= n)) lost.push(`${key}: acknowledged write ${n}, read ${read}`)
  }
  const up = yield* Effect.forEach(cluster.servers, (s) => s.status(2000))
  const down = cluster.servers.filter((_, i) => up[i] === undefined).map((s) => s.id)

  const dropped = (name: string) => after.reduce((sum, t, i) => sum + counter(t, name) - counter(before[i]!, name), 0)
  const decodeErrors = dropped("synod_nats_decode_errors_total")
  const refused = dropped("synod_nats_refused_total")
  print(`writes/s: ${clean.toFixed(0)} without garbage, ${dirty.toFixed(0)} with it`)
  print(`garbage sent: ${sent} messages; the servers counted ${decodeErrors} undecodable and ${refused} refused`)
  print(`log lines written while it came: ${cluster.servers.map((s, i) => `${s.id} ${lines[i]}`).join(", ")}`)
  print(
    `keys checked: ${acked.size}, each holding its last acknowledged write or a later one: ${acked.size - lost.length}`
  )
  for (const l of lost.slice(0, 10)) print(`  lost: ${l}`)
  // a line per kind per listener per 10 s and a summary: far below one per message
  const lineBound = Math.max(200, 40 * seconds)
  const failures = [
    ...(lost.length > 0 ? [`${lost.length} acknowledged writes lost`] : []),
    ...(down.length > 0 ? [`servers not answering: ${down.join(", ")}`] : []),
    ...(decodeErrors + refused < sent / 2 ? [`the servers counted ${decodeErrors + refused} of ${sent} dropped`] : []),
    ...lines.flatMap((n, i) => (n > lineBound ? [`${cluster.servers[i]!.id} wrote ${n} log lines`] : [])),
    ...(dirty === 0 ? ["no write committed under the garbage"] : [])
  ]
  if (failures.length === 0) print("PASS")
  else {
    print(`FAIL: ${failures.join("; ")}`)
    return yield* new BenchError({ reason: "hostile input" })
  }
})

NodeRuntime.runMain(
  main.pipe(
    Effect.scoped,
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.catchTag("BenchError", (e) =>
      Effect.sync(() => {
        print(e.reason)
        process.exitCode = 1
      })
    )
  )
)
