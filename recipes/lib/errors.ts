/**
 * The error a recipe run throws for a problem with how it was invoked (a flag, a folder that
 * holds another run, a folder locked by a live run): reported as `error: <message>`, exit code 2.
 *
 * @module
 */

/** A usage problem: the run prints `error: <message>` and exits with code 2. */
export class UsageError extends Error {
  /** Builds the error from its message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
