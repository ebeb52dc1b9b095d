/**
 * The errors {@linkcode loadDataset} throws where the cause is outside the code: data that is
 * missing or cannot be downloaded, a file that is not the official release, an option that
 * cannot work. Their messages say what to do; no stack trace is needed to act on them.
 *
 * @module
 */

/** Data that cannot be found or downloaded; the message says what to fetch and where to put it. */
export class DataUnavailableError extends Error {
  /** The error's name. */
  override name = "DataUnavailableError";
}

/**
 * A local file in the official format that is not the official release (its MD5 differs from
 * the published one): re-encoded, truncated, corrupted or custom. The message names the file and
 * `--no-verify` (the `verify: false` option), which accepts it with a warning.
 */
export class DataVerificationError extends DataUnavailableError {
  /** The error's name. */
  override name = "DataVerificationError";
  /** The file that failed. */
  readonly path: string;
  /** An error about the file at `path`. */
  constructor(message: string, path: string) {
    super(message);
    this.path = path;
  }
}

/** An option of {@linkcode loadDataset} that is unknown, malformed or cannot work with the data. */
export class DatasetOptionsError extends Error {
  /** The error's name. */
  override name = "DatasetOptionsError";
  /** The option at fault, e.g. `"batchSize"`. */
  readonly option: string;
  /** An error about `option`. */
  constructor(message: string, option: string) {
    super(message);
    this.option = option;
  }
}
