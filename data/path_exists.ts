/**
 * File system probe shared by the shard writer and the recipe runners: whether a path exists.
 * @module
 */

/**
 * Whether `path` exists (`lstat`: a link counts itself, even when its target is missing). Errors
 * other than "not found" (permissions...) are thrown.
 */
export async function pathExists(path: string, opts: { lstat?: boolean } = {}): Promise<boolean> {
  try {
    await (opts.lstat ? Deno.lstat(path) : Deno.stat(path));
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
