/**
 * The lock and election recipes' queue (`Lock.ts`), replayed from the log for the tests
 * that check it with real processes: every write under `prefix` from revision 1 through
 * `last`, read by a watch; at each revision, the key first in line (the lowest creation
 * revision present), and the revision each key was deleted at. Checked from the log's
 * revisions, never from wall clocks.
 */
import { Effect, Stream } from "effect"
import * as WatchClient from "@synod/cluster/WatchClient"

export interface Queue {
  /** The key first in line just after each revision (undefined: the queue was empty). */
  readonly firstAt: ReadonlyMap<number, string | undefined>
  /** The revision each key was deleted at. */
  readonly deletedAt: ReadonlyMap<string, number>
}

export const replay = (urls: ReadonlyArray<string>, prefix: string, last: number) =>
  Effect.gen(function* () {
    const events = yield* WatchClient.messages({ urls, prefix, fromRevision: 1 }).pipe(
      Stream.takeUntil((m) => (m._tag === "Event" ? m.event.revision : m.revision) >= last),
      Stream.runCollect,
      Effect.map((ms) => ms.flatMap((m) => (m._tag === "Event" ? [m.event] : [])))
    )
    const present = new Map<string, number>()
    const deletedAt = new Map<string, number>()
    const firstAt = new Map<number, string | undefined>()
    let e = 0
    for (let revision = 1; revision <= last; revision++) {
      for (; e < events.length && events[e]!.revision === revision; e++) {
        const ev = events[e]!
        if (ev.type === "put") present.set(ev.key, revision)
        else {
          present.delete(ev.key)
          deletedAt.set(ev.key, revision)
        }
      }
      let lowest: [string, number] | undefined
      for (const [k, v] of present) if (lowest === undefined || v < lowest[1]) lowest = [k, v]
      firstAt.set(revision, lowest?.[0])
    }
    return { firstAt, deletedAt } satisfies Queue
  })
