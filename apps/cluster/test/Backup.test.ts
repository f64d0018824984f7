/**
 * Backup and restore: `synod snapshot save` from one cluster, `synod snapshot restore`
 * into a new one, and the restored store equals the saved one and goes on from its
 * revision; a damaged file is refused naming what is wrong, and changes nothing; a
 * cluster that is not new refuses a restore.
 */
import { execFileSync } from "node:child_process"
import { lstatSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { type ClientRequest, type IncomingMessage, request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Kv } from "@synod/kv"
import { Effect, Result, Stream } from "effect"
import * as Backup from "@synod/cluster/Backup"
import * as BackupHandlers from "@synod/cluster/BackupHandlers"
import { startApi } from "./InProcess.ts"
import { http, run } from "./Process.ts"

describe("backup and restore", () => {
  it.live(
    "a backup restored into a new cluster is the same store at the same revision",
    () =>
      Effect.gen(function* () {
        const source = yield* startApi
        const target = yield* startApi
        // values of 8 KB on 24 keys: more than one restore chunk
        for (let i = 0; i < 30; i++) {
          yield* http("PUT", `${source}/kv/k${i % 24}`, { value: `v${i}\u00e9${"x".repeat(8000)}` })
        }
        yield* http("DELETE", `${source}/kv/k3`)
        yield* http("POST", `${source}/txn`, { success: [{ op: "put", key: "a/b", value: "x" }] })
        const dir = mkdtempSync(join(tmpdir(), "synod-backup-"))
        const file = join(dir, "backup.json")
        const saved = yield* run(["snapshot", "save", file, "--url", source])
        assert.strictEqual(saved.code, 0, saved.stderr)
        const summary = JSON.parse(saved.stdout)
        assert.deepStrictEqual({ revision: summary.revision, keys: summary.keys }, { revision: 32, keys: 24 })
        assert.isAbove(Backup.chunks(JSON.parse(readFileSync(file, "utf8")).entries).length, 1)
        const restored = yield* run(["snapshot", "restore", file, "--url", target])
        assert.strictEqual(restored.code, 0, restored.stderr)
        assert.deepStrictEqual(JSON.parse(restored.stdout), { restored: file, revision: 32, keys: 24 })
        const before = yield* http("GET", `${source}/kv?prefix=`)
        const after = yield* http("GET", `${target}/kv?prefix=`)
        assert.deepStrictEqual(after.body, before.body)
        // the restored store goes on from the backup's revision
        assert.deepStrictEqual((yield* http("PUT", `${target}/kv/new`, { value: "1" })).body, {
          key: "new",
          version: 33
        })
        // a cluster that has been written to refuses a restore, and is unchanged
        const again = yield* run(["snapshot", "restore", file, "--url", target])
        assert.strictEqual(again.code, 1)
        assert.include(again.stderr, "not new")
        assert.strictEqual((yield* http("GET", `${target}/kv/new`)).body.version, 33)
      }),
    90_000
  )

  it.live(
    "a damaged backup is refused whole, saying what is wrong, and nothing is restored",
    () =>
      Effect.gen(function* () {
        const source = yield* startApi
        const target = yield* startApi
        yield* http("PUT", `${source}/kv/a`, { value: "1" })
        yield* http("PUT", `${source}/kv/b`, { value: "2" })
        const dir = mkdtempSync(join(tmpdir(), "synod-backup-"))
        const good = join(dir, "good.json")
        assert.strictEqual((yield* run(["snapshot", "save", good, "--url", source])).code, 0)
        const text = readFileSync(good, "utf8")
        const b = JSON.parse(text) as Backup.Backup
        const resum = (x: Omit<Backup.Backup, "sha256">) => ({ ...x, sha256: Backup.checksum(x.revision, x.entries) })
        const cases: ReadonlyArray<readonly [string, string, string]> = [
          ["truncated", text.slice(0, text.length / 2), "not JSON"],
          ["a changed value", text.replace('"2"', '"3"'), "checksum mismatch"],
          ["another format", JSON.stringify({ ...b, format: "etcd" }), 'not a synod backup: its "format"'],
          ["a field missing", JSON.stringify({ ...b, revision: undefined }), "revision"],
          [
            "keys out of order",
            JSON.stringify(resum({ ...b, entries: [...b.entries].reverse() })),
            "not after the one before it"
          ],
          [
            "a version past the revision",
            JSON.stringify(
              resum({
                ...b,
                entries: [
                  ["a", "1", 1],
                  ["b", "2", 9]
                ]
              })
            ),
            "outside 1..2"
          ],
          ["a wrong count", JSON.stringify({ ...b, keys: 5 }), "says 5 keys but holds 2"],
          [
            "two keys with one version",
            JSON.stringify(
              resum({
                ...b,
                entries: [
                  ["a", "1", 2],
                  ["b", "2", 2]
                ]
              })
            ),
            "as an entry before it has"
          ],
          [
            "a revision with no room left",
            JSON.stringify(resum({ ...b, revision: Number.MAX_SAFE_INTEGER - 1 })),
            "the most a restore may set"
          ]
        ]
        for (const [what, content, message] of cases) {
          const file = join(dir, `${what.replace(/ /g, "-")}.json`)
          writeFileSync(file, content)
          const r = yield* run(["snapshot", "restore", file, "--url", target])
          assert.strictEqual(r.code, 2, `${what}: ${r.stderr}`)
          assert.include(r.stderr, "damaged backup", what)
          assert.include(r.stderr, message, what)
          assert.isTrue(Result.isFailure(Backup.parse(content)), what)
        }
        // nothing reached the target: it is still new, and takes the good file
        assert.deepStrictEqual((yield* http("GET", `${target}/kv?prefix=`)).body.revision, 0)
        assert.strictEqual((yield* run(["snapshot", "restore", good, "--url", target])).code, 0)
        assert.deepStrictEqual((yield* http("GET", `${target}/kv/b`)).body, { key: "b", value: "2", version: 2 })
      }),
    90_000
  )

  it("chunks a large backup by entries and bytes, every chunk holding at least one entry", () => {
    const entries = Array.from({ length: 25_000 }, (_, i): Backup.Entry => [`k${i}`, "v", 1])
    const parts = Backup.chunks(entries)
    assert.deepStrictEqual(parts.flat(), entries)
    assert.isTrue(parts.every((p) => p.length >= 1 && p.length <= 10_000))
    const big = Backup.chunks([
      ["a", "x".repeat(200_000), 1],
      ["b", "y", 1],
      ["c", "z".repeat(100_000), 1]
    ])
    assert.deepStrictEqual(
      big.map((p) => p.map((e) => e[0])),
      [["a"], ["b", "c"]]
    )
  })

  it.effect("a streamed backup is the document fromState builds, and a file parse accepts", () =>
    Effect.gen(function* () {
      const text = (state: Kv.State) =>
        Effect.gen(function* () {
          const s = yield* Backup.stream(state)
          const parts = yield* Stream.runCollect(s.body)
          const body = Buffer.concat(parts).toString("utf8")
          assert.strictEqual(s.sha256, JSON.parse(body).sha256)
          return body
        })
      let state = Kv.initial
      // more entries than one turn encodes, keys and values JSON must escape
      for (let i = 0; i < 5000; i++) {
        ;[state] = Kv.apply(state, { _tag: "Put", key: `k"${i}\u00e9/\n`, value: `v\\${i}\u2028` })
      }
      ;[state] = Kv.apply(state, { _tag: "Del", key: 'k"7\u00e9/\n' })
      for (const s of [Kv.initial, state]) {
        const body = yield* text(s)
        assert.deepStrictEqual(JSON.parse(body), Backup.fromState(s))
        const parsed = Backup.parse(body)
        assert.isTrue(Result.isSuccess(parsed), Result.isFailure(parsed) ? parsed.failure.message : "")
      }
    })
  )

  it.live(
    `GET /snapshot sends at most ${BackupHandlers.maxConcurrentBackups} backups at once; a reader that leaves frees its place`,
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        // 15 MB: more than a loopback connection holds for a reader that reads nothing (the
        // sender's buffer grows to 4 MB here, the receiver's stays small), so it keeps its place
        for (let i = 0; i < 250; i++) yield* http("PUT", `${url}/kv/k${i}`, { value: "x".repeat(60_000) })
        const open = (): Effect.Effect<{ readonly req: ClientRequest; readonly res: IncomingMessage }> =>
          Effect.callback((resume) => {
            const req = request(`${url}/snapshot`, (res) => {
              res.pause()
              resume(Effect.succeed({ req, res }))
            })
            req.end()
          })
        const readers = []
        for (let i = 0; i < BackupHandlers.maxConcurrentBackups; i++) {
          const r = yield* open()
          assert.strictEqual(r.res.statusCode, 200)
          readers.push(r)
        }
        const refused = yield* http("GET", `${url}/snapshot`)
        assert.strictEqual(refused.status, 503)
        assert.include((refused.body as { message: string }).message, "backups are being sent already")
        // readers that leave free their places
        for (const r of readers) r.req.destroy()
        yield* Effect.sleep("200 millis")
        const saved = yield* http("GET", `${url}/snapshot`)
        assert.strictEqual(saved.status, 200)
        assert.strictEqual((saved.body as { keys: number }).keys, 250)
      }),
    60_000
  )

  it.live(
    "save writes through a symbolic link and refuses a device or a pipe; the CLI refuses input files past their bound",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        yield* http("PUT", `${url}/kv/a`, { value: "1" })
        const dir = mkdtempSync(join(tmpdir(), "synod-backup-"))
        const real = join(dir, "real.json")
        writeFileSync(real, "old")
        symlinkSync(real, join(dir, "link.json"))
        const viaLink = yield* run(["snapshot", "save", join(dir, "link.json"), "--url", url])
        assert.strictEqual(viaLink.code, 0, viaLink.stderr)
        assert.isTrue(lstatSync(join(dir, "link.json")).isSymbolicLink())
        assert.strictEqual(JSON.parse(readFileSync(real, "utf8")).keys, 1)
        execFileSync("mkfifo", [join(dir, "pipe")])
        for (const target of [join(dir, "pipe"), "/dev/null"]) {
          const refused = yield* run(["snapshot", "save", target, "--url", url])
          assert.strictEqual(refused.code, 2, refused.stderr)
          assert.include(refused.stderr, "not a regular file")
        }
        assert.isTrue(lstatSync(join(dir, "pipe")).isFIFO())
        // endless or huge inputs: refused with the usage code, naming the bound
        const restore = yield* run(["snapshot", "restore", "/dev/zero", "--url", url])
        assert.strictEqual(restore.code, 2)
        assert.include(restore.stderr, "not a regular file")
        const token = yield* run(["kv", "get", "a", "--token-file", "/dev/zero", "--url", url])
        assert.strictEqual(token.code, 2)
        assert.include(token.stderr, "is over 1048576 bytes")
        const txn = yield* run(["kv", "txn", "/dev/zero", "--url", url])
        assert.strictEqual(txn.code, 2)
        assert.include(txn.stderr, "is over 1048576 bytes")
      }),
    60_000
  )

  it.live("a restore under way shows in /status, and a restore with another id from chunk 0 replaces it", () =>
    Effect.gen(function* () {
      const url = yield* startApi
      const staged = () =>
        Effect.gen(function* () {
          // the replica behind this API may still be applying the chunk
          for (let i = 0; i < 100; i++) {
            const s = (yield* http("GET", `${url}/status`)).body.servers[0].replica
            if (s.restoring !== undefined) return s.restoring
            yield* Effect.sleep(20)
          }
          return undefined
        })
      const chunk = (id: string, entries: ReadonlyArray<Backup.Entry>) =>
        http("POST", `${url}/snapshot/restore`, { id, index: 0, entries })
      assert.strictEqual(
        (yield* chunk("first", [
          ["a", "1", 1],
          ["b", "2", 2]
        ])).status,
        200
      )
      const first = yield* staged()
      assert.deepStrictEqual({ id: first?.id, keys: first?.keys }, { id: "first", keys: 2 })
      assert.isAbove(first?.bytes ?? 0, 0)
      // out of sight meanwhile
      assert.strictEqual((yield* http("GET", `${url}/status`)).body.servers[0].replica.keys, 0)
      assert.strictEqual((yield* chunk("second", [["c", "3", 1]])).status, 200)
      let second = yield* staged()
      for (let i = 0; i < 100 && second?.id !== "second"; i++) {
        yield* Effect.sleep(20)
        second = yield* staged()
      }
      assert.deepStrictEqual({ id: second?.id, keys: second?.keys }, { id: "second", keys: 1 })
    })
  )
})
