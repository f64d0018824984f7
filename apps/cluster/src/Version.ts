/**
 * synod's version: the one the CLI's `--version` prints and the OpenAPI document states.
 * Every package.json of the repository carries the same one (a test holds them equal).
 *
 * @since 0.2.0
 */
export const version = "0.2.0"
