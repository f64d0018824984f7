/**
 * A debug log line that a busy role may write thousands of times a second (one per batch
 * of decided slots): at most `perSecond` lines a second are written, and the lines left
 * out are counted into the next one (`skipped`).
 *
 * @since 0.2.0
 */
import { Effect } from "effect"

export const make = (
  perSecond: number,
  now: () => number
): ((message: string, fields: Record<string, unknown>) => Effect.Effect<void>) => {
  let windowStart = Number.NEGATIVE_INFINITY
  let written = 0
  let skipped = 0
  return (message, fields) => {
    const t = now()
    if (t - windowStart >= 1000) {
      windowStart = t
      written = 0
    }
    if (written >= perSecond) {
      skipped++
      return Effect.void
    }
    written++
    const line = skipped > 0 ? { ...fields, skipped } : fields
    skipped = 0
    return Effect.logDebug(message, line)
  }
}
