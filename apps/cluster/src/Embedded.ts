/**
 * `synod up`'s cluster: every server of a cluster config (three by default, each a
 * replica, a leader and an acceptor) inside this process, on the in-memory bus (nothing
 * to install) or over NATS, with in-memory storage, and one client the HTTP API submits
 * through.
 *
 * @since 0.1.0
 */
import { Client, Server } from "@synod/actors"
import { ClusterConfig, type StateMachine, Storage, type Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { Host } from "@synod/node"
import { NatsConnection, Presence } from "@synod/transport-nats"
import { Effect, Layer, Option, Random } from "effect"
import { Backend } from "./Backend.ts"
import * as Dashboard from "./Dashboard.ts"
import * as LeaseKeeping from "./LeaseKeeping.ts"

export interface Options {
  /** NATS URLs; without them the servers talk over the in-memory bus. */
  readonly nats?: ReadonlyArray<string>
  /** The cluster's name: the NATS subject prefix `synod.<name>` (default `synod`). */
  readonly name?: string
  readonly config?: ClusterConfig.ClusterConfig
}

/**
 * The servers' transport: the in-memory bus, or a NATS connection once this process has
 * claimed every node id it hosts on the cluster (`Presence`), as `synod serve` does: a
 * cluster of `synod serve` processes already using those ids refuses it, instead of its
 * empty acceptors voting in that cluster's ballots.
 */
const transportLayer = (
  options: Options,
  ids: ReadonlyArray<string>
): Layer.Layer<Transport.Transport, Transport.TransportError | Presence.DuplicateNode> => {
  const name = options.name ?? "synod"
  if (options.nats === undefined) return Host.transport({ name, transport: { kind: "memory" } }, "synod-up")
  const nats = Host.natsTransport({ name, transport: { kind: "nats", servers: options.nats } }, "synod-up", ids)
  const claimed = Layer.effectDiscard(
    Effect.forEach(ids, (node) => Presence.claim({ cluster: name, node }), { concurrency: "unbounded", discard: true })
  )
  return Layer.provideMerge(claimed, nats)
}

/** The servers and the client, as a `Backend`, on the `Transport` and `Storage` in context. */
export const layerNoDeps = (
  config: ClusterConfig.ClusterConfig,
  about: {
    readonly cluster: string
    readonly transport: "memory" | "nats"
    readonly traffic?: Dashboard.Traffic
  },
  machine: StateMachine.StateMachine<Kv.State, Kv.Command, Kv.Result> = Kv.machine
) =>
  Layer.effect(
    Backend,
    Effect.gen(function* () {
      const ids = ClusterConfig.serverIds(config)
      // over NATS, a node of another process may join (`Presence.running`); on the bus, none
      const nats = yield* Effect.serviceOption(NatsConnection.NatsConnection)
      const running = (node: string): Effect.Effect<boolean> =>
        ids.includes(node)
          ? Effect.succeed(true)
          : Option.isNone(nats)
            ? Effect.succeed(false)
            : Presence.running({ cluster: about.cluster, node }).pipe(
                Effect.provideService(NatsConnection.NatsConnection, nats.value)
              )
      const handles = yield* Effect.forEach(ids, (id) => Server.run({ id, config, machine }))
      const id = `up-${(yield* Random.nextIntBetween(0, 2 ** 48)).toString(36)}`
      const client = yield* Client.make(machine, config, { id })
      // a lease keeper next to each leader, expiring leases while it leads
      yield* LeaseKeeping.start(handles, config, client.submit)
      const applied = handles.find((h) => h.applied !== undefined)?.applied
      return Backend.of({
        ...about,
        config,
        running,
        submit: client.submit,
        read: client.read,
        submitPromise: client.submitPromise,
        readPromise: client.readPromise,
        servers: Effect.forEach(handles, (h) => h.status),
        handles,
        ...(applied === undefined ? {} : { applied })
      })
    })
  )

/** The servers and the client, as a `Backend`; they run as long as the layer. */
export const layer = (options: Options = {}) => {
  // what the servers send, by type, for the dashboard
  const traffic = Dashboard.makeTraffic()
  const config = options.config ?? ClusterConfig.servers(3)
  const ids = ClusterConfig.serverIds(config)
  const transport = transportLayer(options, ids)
  return layerNoDeps(
    config,
    options.nats === undefined
      ? { cluster: "embedded", transport: "memory", traffic }
      : { cluster: options.name ?? "synod", transport: "nats", traffic }
  ).pipe(
    Layer.provide(Layer.merge(Storage.layerMemory(), Dashboard.countingLayer(traffic, transport))),
    // the connection itself too, over NATS, to ask whether another process hosts a node
    Layer.provide(transport)
  )
}
