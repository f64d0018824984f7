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
})
