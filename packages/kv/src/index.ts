/**
 * @synod/kv: the product's replicated key-value state machine (`Kv`): get, put, delete,
 * compare-and-set on a version, and list by prefix. `apps/cluster` serves it; the
 * simulator, the tests and the benchmarks run it.
 *
 * @since 0.1.0
 */
export * as Kv from "./Kv.ts"
export * as KvHistory from "./History.ts"
export * as KvWatch from "./Watch.ts"
export * as KvLease from "./Lease.ts"
export * as LeaseKeeper from "./LeaseKeeper.ts"
export { SortedMap } from "./SortedMap.ts"
