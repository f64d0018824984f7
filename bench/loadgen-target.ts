/**
 * The stable entry point the shared yardstick (`../shared/peers`) loads to drive synod's
 * own client: see apps/cluster/bench/LoadgenTarget.ts.
 */
export { create } from "../apps/cluster/bench/LoadgenTarget.ts"
