/**
 * Majority counting, in one place. A scout or commander succeeds when strictly more than
 * half of the configuration's acceptors answered; duplicates (at-least-once delivery) and
 * answers from outside the configuration never count (docs/protocol.md#terms, B6, B7).
 *
 * @since 0.1.0
 */

export const isMajority = (distinctResponders: number, n: number): boolean => 2 * distinctResponders > n

/** Mutable tally of distinct responders among a fixed member set. */
export class Tally {
  private readonly members: ReadonlySet<string>
  private readonly responded = new Set<string>()
  constructor(members: Iterable<string>) {
    this.members = new Set(members)
  }
  /** Records a response; answers whether a majority has now responded. */
  add(member: string): boolean {
    if (this.members.has(member)) this.responded.add(member)
    return this.reached
  }
  has(member: string): boolean {
    return this.responded.has(member)
  }
  /** Is `member` one of the configuration's? Answers from others never count. */
  isMember(member: string): boolean {
    return this.members.has(member)
  }
  get reached(): boolean {
    return isMajority(this.responded.size, this.members.size)
  }
  get size(): number {
    return this.responded.size
  }
  /** Members that have not answered yet: where a retransmission should go. */
  missing(): Array<string> {
    const out: Array<string> = []
    for (const m of this.members) if (!this.responded.has(m)) out.push(m)
    return out
  }
}

export const make = (members: Iterable<string>): Tally => new Tally(members)
