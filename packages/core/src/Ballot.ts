/**
 * Ballots `(round, leader)`, totally ordered by round, then by leader id. Round 0 with the
 * empty leader id is ⊥, smaller than every ballot a leader can use (leaders start at
 * round 1), so an acceptor that promised nothing holds ⊥.
 *
 * @since 0.1.0
 */
import { type Order, Schema } from "effect"

export class Ballot extends Schema.Class<Ballot>("@synod/core/Ballot")({
  round: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  leader: Schema.String
}) {
  override toString(): string {
    return `${this.round}.${this.leader}`
  }
}

export const bottom: Ballot = new Ballot({ round: 0, leader: "" })

export const make = (round: number, leader: string): Ballot => new Ballot({ round, leader })

export const compare = (a: Ballot, b: Ballot): -1 | 0 | 1 =>
  a.round < b.round ? -1 : a.round > b.round ? 1 : a.leader < b.leader ? -1 : a.leader > b.leader ? 1 : 0

export const order: Order.Order<Ballot> = compare

export const equals = (a: Ballot, b: Ballot): boolean => a.round === b.round && a.leader === b.leader
export const lessThan = (a: Ballot, b: Ballot): boolean => compare(a, b) < 0
export const greaterThan = (a: Ballot, b: Ballot): boolean => compare(a, b) > 0
export const max = (a: Ballot, b: Ballot): Ballot => (compare(a, b) >= 0 ? a : b)
export const isBottom = (b: Ballot): boolean => b.round === 0

/** The smallest ballot owned by `leader` that is higher than `than`. */
export const next = (than: Ballot, leader: string): Ballot =>
  new Ballot({ round: leader > than.leader ? Math.max(1, than.round) : than.round + 1, leader })
