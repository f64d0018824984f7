import { assert, describe, it } from "@effect/vitest"
import { HostConfig } from "@synod/node"
import { Result } from "effect"

const base = {
  name: "prod",
  cluster: { acceptors: ["s1", "s2", "s3"], leaders: ["s1", "s2", "s3"], replicas: ["s1", "s2", "s3"] },
  node: "s1",
  dataDir: "/var/lib/synod",
  transport: { kind: "nats", servers: ["nats://127.0.0.1:4222"] }
}

const error = (raw: unknown, overrides: HostConfig.Overrides = {}): string => {
  const r = HostConfig.decode(raw, overrides)
  assert.isTrue(Result.isFailure(r), "expected the config to be rejected")
  return Result.isFailure(r) ? r.failure.message : ""
}

describe("host config", () => {
  it("decodes a full config and applies environment and flag overrides", () => {
    const c = Result.getOrThrow(HostConfig.decode(base))
    assert.strictEqual(c.cluster.window, 16)
    const env = HostConfig.overridesFromEnv({ SYNOD_NODE: "s2", SYNOD_NATS: "nats://a:1, nats://b:2" })
    const o = Result.getOrThrow(HostConfig.decode(base, { ...env, dataDir: "/tmp/x" }))
    assert.strictEqual(o.node, "s2")
    assert.strictEqual(o.dataDir, "/tmp/x")
    assert.deepStrictEqual(o.transport, { kind: "nats", servers: ["nats://a:1", "nats://b:2"] })
  })

  it("log levels: any case and 'warning' from the file, SYNOD_LOG_LEVEL or --log-level; anything else named", () => {
    assert.strictEqual(HostConfig.parseLogLevel("debug"), "Debug")
    assert.strictEqual(HostConfig.parseLogLevel(" INFO "), "Info")
    assert.strictEqual(HostConfig.parseLogLevel("warning"), "Warn")
    assert.strictEqual(HostConfig.parseLogLevel("Error"), "Error")
    assert.isUndefined(HostConfig.parseLogLevel("verbose"))
    const fromEnv = HostConfig.overridesFromEnv({ SYNOD_LOG_LEVEL: "debug" })
    assert.strictEqual(Result.getOrThrow(HostConfig.decode(base, fromEnv)).logLevel, "Debug")
    assert.strictEqual(Result.getOrThrow(HostConfig.decode({ ...base, logLevel: "warn" })).logLevel, "Warn")
    assert.include(error({ ...base, logLevel: "loud" }), "logLevel")
  })

  it("names the field that is wrong", () => {
    assert.include(error({ ...base, node: "s9" }), 'node "s9" is not in cluster')
    assert.include(error({ ...base, name: "has.dots" }), "name")
    assert.include(error({ ...base, cluster: { ...base.cluster, acceptors: [] } }), "acceptors")
    assert.include(error({ ...base, transport: { kind: "nats", servers: [] } }), "servers")
    assert.include(error({ ...base, transport: { kind: "carrier-pigeon" } }), "transport")
    assert.include(error({ ...base, metricsPort: 70000 }), "metricsPort")
    assert.include(error({ ...base, roles: ["judge"] }), "roles")
    assert.include(error(base, { metricsPort: "abc" }), "metricsPort")
    assert.include(error([1, 2]), "expected a JSON object")
  })

  it("refuses keys it does not know, at any depth, naming them; an empty dataDir too", () => {
    assert.include(error({ ...base, dataDirectory: "/x" }), "dataDirectory")
    assert.include(
      error({ ...base, transport: { ...base.transport, clusterkey: { current: "x".repeat(40) } } }),
      "clusterkey"
    )
    assert.include(error({ ...base, cluster: { ...base.cluster, timeouts: { leaderTimeout: 5 } } }), "leaderTimeout")
    assert.include(error({ ...base, dataDir: "" }), "dataDir may not be empty")
    // `synod serve`'s own keys are its to check (Serve.decode)
    assert.isTrue(Result.isSuccess(HostConfig.decode({ ...base, http: { port: 8081 }, tracing: {} })))
  })

  it("requires dataDir over NATS for a node hosting an acceptor or a leader", () => {
    const { dataDir: _, ...noDir } = base
    assert.include(error(noDir), "dataDir is required")
    assert.include(error(noDir), "acceptor and leader")
    const leaderOnly = { ...noDir, cluster: { ...base.cluster, acceptors: ["s2", "s3", "s4"] } }
    assert.include(error(leaderOnly), "hosts leader over NATS")
    assert.include(error({ ...noDir, node: "r9", roles: ["acceptor"] }), "hosts acceptor over NATS")
    // what may start without one: a replica alone (it copies its state from a peer), a
    // whole cluster in one process on the in-memory bus, or a data dir from the flags
    assert.isTrue(Result.isSuccess(HostConfig.decode({ ...noDir, roles: ["replica"] })))
    assert.isTrue(Result.isSuccess(HostConfig.decode({ ...noDir, transport: { kind: "memory" } })))
    assert.isTrue(Result.isSuccess(HostConfig.decode(noDir, { dataDir: "/tmp/s1" })))
  })

  it("binds metrics to what metricsHost or SYNOD_METRICS_HOST says", () => {
    assert.isUndefined(Result.getOrThrow(HostConfig.decode(base)).metricsHost)
    const env = HostConfig.overridesFromEnv({ SYNOD_METRICS_PORT: "9100", SYNOD_METRICS_HOST: "0.0.0.0" })
    const c = Result.getOrThrow(HostConfig.decode({ ...base, metricsHost: "10.0.0.1" }, env))
    assert.deepStrictEqual([c.metricsPort, c.metricsHost], [9100, "0.0.0.0"])
  })

  it("takes a cluster key from the file or the environment, and names a short one", () => {
    const key = "k".repeat(32)
    const fromFile = Result.getOrThrow(
      HostConfig.decode({ ...base, transport: { ...base.transport, clusterKey: { current: key } } })
    )
    assert.deepStrictEqual(fromFile.transport.kind === "nats" && fromFile.transport.clusterKey, { current: key })
    const env = HostConfig.overridesFromEnv({ SYNOD_CLUSTER_KEY: "n".repeat(40), SYNOD_CLUSTER_KEY_PREVIOUS: key })
    const fromEnv = Result.getOrThrow(HostConfig.decode(base, env))
    assert.deepStrictEqual(fromEnv.transport.kind === "nats" && fromEnv.transport.clusterKey, {
      current: "n".repeat(40),
      previous: key
    })
    const short = error({ ...base, transport: { ...base.transport, clusterKey: { current: "short" } } })
    assert.include(short, "clusterKey")
    assert.include(short, "32 to 1024")
    assert.notInclude(short, '"short"')
  })
})
