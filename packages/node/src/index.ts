/**
 * @synod/node — not built yet (see the open issues); this entry point exists so the
 * workspace type-checks as a whole.
 */
export {}
