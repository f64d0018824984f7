/**
 * Observation hooks for the simulator's invariant checker. Roles report what they do at
 * the moment they do it (an acceptor when it replies, a commander when it sends P2a, a
 * replica when it performs), so the checker sees every event in order, including those
 * of fibers that are interrupted a moment later. Outside the simulator the probe is
 * absent and each hook costs one `undefined` check.
 *
 * Outside this package reachable only through `@synod/actors/Hooks`.
 */
import { Context } from "effect"
import type { Ballot, Command } from "@synod/core"

export interface Probe {
  /** An acceptor started (or restarted) with this durable state. */
  acceptorLoaded(
    acceptor: string,
    promised: Ballot.Ballot,
    accepted: ReadonlyMap<number, Command.PValue>,
    watermark: number
  ): void
  /** An acceptor forgets every slot below `watermark` (garbage collection). */
  acceptorForgot(acceptor: string, watermark: number): void
  /** An acceptor is about to reply with `promised` (its state is durable). */
  acceptorPromised(acceptor: string, promised: Ballot.Ballot): void
  /** An acceptor is about to report that it accepted `pvalue` (durable). */
  acceptorAccepted(acceptor: string, pvalue: Command.PValue): void
  /** A leader starts phase 1 with `ballot`. */
  leaderBallot(leader: string, ballot: Ballot.Ballot): void
  /**
   * An active leader's slots that have a proposal but neither a decision it knows of nor a
   * running commander (reported on each heartbeat tick; should always be empty).
   */
  leaderOrphans(leader: string, slots: ReadonlyArray<number>): void
  /** A commander sends P2a. */
  p2aSent(leader: string, ballot: Ballot.Ballot, slot: number, value: Command.SlotValue): void
  /** A commander counts `acceptor`'s reply as a vote for (ballot, slot). */
  voteCounted(leader: string, acceptor: string, ballot: Ballot.Ballot, slot: number): void
  /** A commander saw a majority and sends the decision. */
  decided(leader: string, ballot: Ballot.Ballot, slot: number, value: Command.SlotValue): void
  /** A replica learned a decision. */
  decisionLearned(replica: string, slot: number, value: Command.SlotValue): void
  /** A replica performed slot `slot` (`performed` = the commands that changed its state). */
  performed(replica: string, slot: number, performed: ReadonlyArray<string>): void
  /** A replica (re)started from a snapshot covering the slots below `slotOut`. */
  replicaLoaded(replica: string, slotOut: number): void
  /** A replica's snapshot covering the slots below `slotOut` is durable. */
  replicaSaved(replica: string, slotOut: number): void
  /** A replica installed a peer's snapshot covering the slots below `slotOut` (state transfer). */
  replicaInstalled(replica: string, slotOut: number): void
  /** A replica computed the digest of its state at digest slot `slot` (docs/protocol.md#divergence-detection). */
  replicaDigest(replica: string, slot: number, digest: string): void
  /** A replica found its state contradicted at `slot` (or no majority for any digest there) and stops answering clients. */
  replicaDiverged(replica: string, slot: number): void
  /**
   * A diverged replica answers clients again: it installed a snapshot of a majority peer
   * covering the slots below `slotOut` (`installed`, possibly not ahead of its own slotOut),
   * or its digest at a later slot agreed with a majority (`installed` false).
   */
  replicaRecovered(replica: string, slotOut: number, installed: boolean): void
  /** A replica sends a client the outcome of (client, seq). */
  replicaAnswered(replica: string, client: string, seq: number): void
  /** A replica sends a client the answer to its read `id` (docs/protocol.md#reads). */
  replicaReadAnswered(replica: string, client: string, id: number): void
}

export const Probe = Context.Reference<Probe | undefined>("@synod/actors/internal/Probe", {
  defaultValue: () => undefined
})
