/**
 * Selecting a watch's events from the store's history: the writes to one key, or to the
 * keys under a prefix, from a revision on, in revision order. Pure: the server runs it
 * over each state its replica applies (`apps/cluster`'s `Watch`), so a watcher sees the
 * log's order of writes for its keys, with no gaps and no duplicates, whichever replica
 * serves it.
 *
 * @since 0.2.0
 */
import type * as History from "./History.ts"
import type { State } from "./Kv.ts"

/** Which keys a watch follows: exactly `key`, or every key starting with `prefix` ("" is all). */
export type Filter = { readonly key: string } | { readonly prefix: string }

export const matches = (filter: Filter, key: string): boolean =>
  "key" in filter ? key === filter.key : key.startsWith(filter.prefix)

export type Selection =
  /** History before `from` is gone: the watch cannot be served from there; `oldest` can. */
  | { readonly _tag: "Compacted"; readonly oldest: number }
  /**
   * The matching events from `from` on, at most `max` of them and about `maxBytes` of keys
   * and values (at least one); `through` is the last revision looked at (the next
   * selection starts after it).
   */
  | { readonly _tag: "Events"; readonly events: ReadonlyArray<History.Event>; readonly through: number }

/** The events of `state` for `filter` from revision `from` on (a revision not reached yet: none). */
export const select = (
  state: State,
  filter: Filter,
  from: number,
  max: number,
  maxBytes = Number.POSITIVE_INFINITY
): Selection => {
  if (from <= state.history.compacted) return { _tag: "Compacted", oldest: state.history.oldest }
  const events: Array<History.Event> = []
  let through = Math.max(from - 1, 0)
  if (from > state.revision) return { _tag: "Events", events, through: from - 1 }
  let bytes = 0
  for (const e of state.history.since(from)) {
    if (matches(filter, e.key)) {
      if (events.length === max || bytes >= maxBytes) break
      events.push(e)
      bytes += e.key.length + (e.value?.length ?? 0)
    }
    through = e.revision
  }
  return { _tag: "Events", events, through }
}
