/**
 * `synod init`: the config files of an N-server cluster over NATS, one per `synod serve`
 * process. Server `sK` hosts an acceptor, a leader and a replica, keeps its state in
 * `<dataRoot>/sK` and serves its HTTP API on `httpPort + K - 1`. Every file is decoded
 * as `synod serve` decodes it before anything is written, so what `init` writes, `serve`
 * accepts.
 *
 * @since 0.2.0
 */
import { join } from "node:path"
import { Result, Schema } from "effect"
import * as Serve from "./Serve.ts"

/** Most servers `init` writes configs for (a majority of 15 is 8 acceptors per decision). */
export const maxServers = 15

export const Servers = Schema.Int.check(
  Schema.isBetween({ minimum: 1, maximum: maxServers }, { message: `a cluster has 1 to ${maxServers} servers` })
)

export interface Options {
  /** How many servers (s1..sN). */
  readonly servers: number
  /** The cluster's name: the NATS subject prefix `synod.<name>`. */
  readonly name: string
  /** NATS URLs every server connects to. */
  readonly nats: ReadonlyArray<string>
  /** Each server's data directory is `<dataRoot>/<id>` (relative: to where `synod serve` runs). */
  readonly dataRoot: string
  /** The first server's HTTP port; the others follow. */
  readonly httpPort: number
  /** Where the HTTP APIs listen (default 127.0.0.1). */
  readonly httpHost?: string
}

export interface File {
  readonly id: string
  /** The file name, `<id>.json`. */
  readonly name: string
  readonly url: string
  readonly config: Record<string, unknown>
}

/** The config of every server, each checked as `synod serve` checks it; or what is wrong. */
export const configs = (options: Options): Result.Result<ReadonlyArray<File>, string> => {
  const { servers, httpPort } = options
  if (!Number.isInteger(servers) || servers < 1 || servers > maxServers)
    return Result.fail(`--servers: a cluster has 1 to ${maxServers} servers`)
  if (!Number.isInteger(httpPort) || httpPort < 1 || httpPort + servers - 1 > 65535)
    return Result.fail(`--http-port: ports ${httpPort}..${httpPort + servers - 1} must lie within 1-65535`)
  if (options.nats.length === 0) return Result.fail("--nats: no NATS URL given")
  const ids = Array.from({ length: servers }, (_, i) => `s${i + 1}`)
  const files: Array<File> = []
  for (const [i, id] of ids.entries()) {
    const port = httpPort + i
    const config = {
      name: options.name,
      node: id,
      dataDir: join(options.dataRoot, id),
      cluster: { acceptors: ids, leaders: ids, replicas: ids },
      transport: { kind: "nats", servers: [...options.nats] },
      http: { port, ...(options.httpHost === undefined ? {} : { host: options.httpHost }) }
    }
    const checked = Serve.decode(config)
    if (Result.isFailure(checked)) return Result.fail(checked.failure.message)
    files.push({ id, name: `${id}.json`, url: `http://${options.httpHost ?? "127.0.0.1"}:${port}`, config })
  }
  return Result.succeed(files)
}

/** Where `file` goes in `dir`. */
export const pathIn = (dir: string, file: File): string => join(dir, file.name)

/** What to do next, printed after the files are written. */
export const nextSteps = (dir: string, files: ReadonlyArray<File>): string => {
  const path = (f: File) => pathIn(dir, f)
  return [
    `Start each server (one process each, on this machine or another):`,
    ...files.map((f) => `  synod serve --config ${path(f)} &`),
    `then:`,
    `  synod kv put greeting hello --url ${files[0]!.url}`,
    `  synod status --url ${files.map((f) => f.url).join(",")}`
  ].join("\n")
}
