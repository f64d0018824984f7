/**
 * The entry point through which the shared yardstick (`../shared/peers`, its
 * `targets/synod.mjs`) drives synod's own client: `create(opts)` answers
 * `{ put(key, value), get(key), close() }` over NATS (`get`: a linearizable read by read
 * index, no slot), against the servers its `synod.sh` starts
 * (`synod serve` processes of cluster `bench`, servers `s1,s2,s3`).
 *
 * One NATS connection and one client (`SYNOD_LOADGEN_CLIENTS` to use more, taken in
 * turn): a client keeps any number of commands in flight, and what it sends to one
 * replica in one run leaves as one NATS message, so one client is how an application
 * would use it. Environment: `SYNOD_CLUSTER` (default `bench`), `SYNOD_SERVERS`
 * (default `s1,s2,s3`).
 *
 * Kept at `bench/loadgen-target.ts` (a re-export) so the yardstick finds it; keep it
 * working through every refactor.
 */
import { Client } from "@synod/actors"
import { ClusterConfig } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsTransport } from "@synod/transport-nats"
import { Exit, ManagedRuntime, Scope } from "effect"

export interface Options {
  /** NATS URLs. */
  readonly endpoints: ReadonlyArray<string>
}

export interface Target {
  readonly info: { readonly system: string; readonly servers: number; readonly transport: string }
  put(key: string, value: Uint8Array): Promise<unknown>
  /** A linearizable read of `key` (read index, docs/protocol.md#reads). */
  get(key: string): Promise<unknown>
  close(): Promise<void>
}

export const create = async (opts: Options): Promise<Target> => {
  const ids = (process.env.SYNOD_SERVERS ?? "s1,s2,s3").split(",")
  const config = ClusterConfig.make({ acceptors: ids, leaders: ids, replicas: ids })
  const runtime = ManagedRuntime.make(
    NatsTransport.layer({
      servers: opts.endpoints.length > 0 ? [...opts.endpoints] : ["nats://127.0.0.1:14222"],
      name: "loadgen",
      cluster: process.env.SYNOD_CLUSTER ?? "bench"
    })
  )
  const scope = await runtime.runPromise(Scope.make())
  const text = new TextDecoder()
  const count = Math.max(1, Number(process.env.SYNOD_LOADGEN_CLIENTS ?? 1) || 1)
  const clients: Array<Client.Client<Kv.Command, Kv.Result>> = []
  // one client scope (ids `<scope>.<i>`): their requests to a replica share a subject, so the
  // transport coalesces them as it did before requests had subjects of their own
  for (let i = 0; i < count; i++) {
    clients.push(
      await runtime.runPromise(
        Client.make(Kv.machine, config, { id: `lg${process.pid}.${i}` }).pipe(Scope.provide(scope))
      )
    )
  }
  let next = 0
  return {
    info: { system: "synod", servers: ids.length, transport: "nats" },
    // the load generator's loops are async functions, not fibers: `submitPromise` sends
    // without a fiber per write (a fiber each, through `runPromise`, took about a third of
    // this process's CPU per write: docs/benchmark-log.md)
    put: (key, value) => clients[next++ % count]!.submitPromise({ _tag: "Put", key, value: text.decode(value) }),
    get: (key) => clients[next++ % count]!.readPromise({ _tag: "Get", key }),
    close: async () => {
      await runtime.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}
