/**
 * @synod/actors: the five roles of Multi-Paxos as Effect fibers, the colocated server,
 * the client, and the deterministic simulation harness.
 *
 * @since 0.1.0
 */
export {}
