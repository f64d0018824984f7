/**
 * Switches that re-introduce known Paxos bugs (docs/protocol.md#planted-bugs), so tests can prove the
 * simulator catches each one. All off by default; outside this package reachable only
 * through `@synod/actors/Hooks` (the simulator's scenarios set them).
 */
import { Context } from "effect"

export interface PlantedBugs {
  /** B1: the leader keeps its round only in memory and starts again at round 1 after a restart. */
  readonly ballotReuse: boolean
  /** B2: the acceptor replies before its state is durable. */
  readonly replyBeforeDurable: boolean
  /** B3: P2b routed and counted by slot only, ignoring the ballot it answers. */
  readonly p2bBySlotOnly: boolean
  /** B4: commanders outlive preemption and resend under the leader's current ballot, never the one they were spawned with. */
  readonly staleChildren: boolean
  /** B5: acceptor accepts only b == promise; commanders give up on any other ballot. */
  readonly strictAccept: boolean
  /** B6: a duplicate reply from an already counted acceptor ends the scout/commander as preempted. */
  readonly duplicatePreempts: boolean
  /** B8: the update operator reversed: the leader's own proposals override the acceptors' pvalues. */
  readonly updateReversed: boolean
  /** B9: the replica performs duplicates and keeps no client table. */
  readonly noClientTable: boolean
  /** B10: no no-op hole filling on adoption and no recovery of missing slots. */
  readonly noHoleFilling: boolean
  /** B11: acceptors garbage-collect old slots but keep no watermark: they never report it nor refuse below it. */
  readonly gcWithoutWatermark: boolean
  /** B18: acceptors answer a P1a with every pvalue in one P1b, however large: past the transport's limit it is dropped, and no leader is ever adopted again. */
  readonly unpagedP1b: boolean
  /** B13: the leader answers a read index at once, without a confirmation round: a deposed leader that has not noticed serves stale reads. */
  readonly staleRead: boolean
  /** B21: the leader's read lease never runs out: a deposed leader that has not noticed serves stale reads at once. */
  readonly readLeaseForever: boolean
  /** B23: an acceptor's answer to a `Confirm` grants no read lease: only new work holds other leaders off, and a leader serving reads with none coming in is deposed under its lease. */
  readonly confirmGrantsNothing: boolean
  /** B24: an acceptor that restarts with a promise on disk holds no leader off: a read lease it granted before, kept in memory only, is forgotten. */
  readonly restartHoldsNothing: boolean
  /** L1: the lease keeper keeps the deadlines it noted before its leader became active (from each lease's grant) instead of starting every lease afresh: leases expire early across a leader change. */
  readonly leaseEarlyExpiry: boolean
  /** B19: replicas exchange state digests but never compare them: a corrupted replica goes on answering from its state. */
  readonly ignoreDivergence: boolean
  /** B12: a configuration change decided in slot s governs from s + 1 instead of s + window: slots already in flight change configuration. */
  readonly immediateReconfig: boolean
  /** B20: a leader whose phase 1 began at the slot every replica had performed commands a slot below it without running phase 1 for it. */
  readonly commandBelowFloor: boolean
  /** B22: at adoption the leader takes every reported pvalue of the highest ballot as decided, not only in slots a replica performed: a value a minority accepted becomes a decision. */
  readonly learnUnperformed: boolean
}

export const none: PlantedBugs = {
  ballotReuse: false,
  replyBeforeDurable: false,
  p2bBySlotOnly: false,
  staleChildren: false,
  strictAccept: false,
  duplicatePreempts: false,
  updateReversed: false,
  noClientTable: false,
  noHoleFilling: false,
  gcWithoutWatermark: false,
  unpagedP1b: false,
  staleRead: false,
  readLeaseForever: false,
  confirmGrantsNothing: false,
  restartHoldsNothing: false,
  leaseEarlyExpiry: false,
  ignoreDivergence: false,
  immediateReconfig: false,
  commandBelowFloor: false,
  learnUnperformed: false
}

export type Name = keyof PlantedBugs
export const names = Object.keys(none) as ReadonlyArray<Name>

export const PlantedBugs = Context.Reference<PlantedBugs>("@synod/actors/internal/PlantedBugs", {
  defaultValue: () => none
})
