// Owns reading a stream to its end even when its consumer stops early, so the checks that only run
// at the end of a stream (gzip CRC-32 and length, zlib Adler-32, trailing structure) always run
// before the consumer's loop exits.

/**
 * Iterates `inner` for the consumer. When the consumer leaves its loop early (`break`, `return`,
 * an exception), the rest of `inner` is still read, without yielding, before the loop exits: an
 * error found there (a bad gzip CRC after the members that were wanted) is thrown from the
 * consumer's loop, so nothing read from a corrupt stream is trusted.
 *
 * @example
 * ```ts
 * import { readToEnd } from "./read_to_end.ts";
 * async function* numbers() {
 *   yield 1;
 *   yield 2;
 *   throw new Error("checksum mismatch at the end");
 * }
 * let caught = "";
 * try {
 *   for await (const n of readToEnd(numbers())) if (n === 1) break;
 * } catch (e) {
 *   caught = (e as Error).message;
 * }
 * console.log(caught); // "checksum mismatch at the end"
 * ```
 */
export async function* readToEnd<T>(inner: AsyncGenerator<T>): AsyncGenerator<T> {
  let finished = false;
  try {
    while (true) {
      let r: IteratorResult<T>;
      try {
        r = await inner.next();
      } catch (e) {
        finished = true; // a generator that threw is done
        throw e;
      }
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) {
      while (!(await inner.next()).done) {
        /* read on: the checks run at the end */
      }
    }
  }
}
