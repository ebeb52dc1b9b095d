/**
 * Memory ownership without `dispose` calls: {@link tidy} runs a function and frees every tensor it
 * created except those it returns or {@link keep}s, like tf.tidy.
 * @module
 */

/** Anything that can be freed and tracked by a scope. */
export interface Disposable {
  /** Frees the object's resources (a second call does nothing). */
  dispose(): void;
  /** Whether {@link Disposable.dispose} has run. */
  readonly disposed: boolean;
}

const stack: Set<Disposable>[] = [];
const kept = new WeakSet<Disposable>();

/** Registers a new tensor with the innermost scope (called by the Tensor constructor). */
export function track(t: Disposable): void {
  if (stack.length) stack[stack.length - 1].add(t);
}

/** Excludes a tensor from every enclosing scope's cleanup; returns it. */
export function keep<T extends Disposable>(t: T): T {
  kept.add(t);
  for (const s of stack) s.delete(t);
  return t;
}

/** Removes a tensor from scope tracking so the caller owns it (used for long-lived state). */
export function untrack<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (!value || typeof value !== "object" || depth > 4) return;
  if (typeof (value as Disposable).dispose === "function" && "disposed" in (value as object)) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) { for (const v of value) collect(v, out, depth + 1); }
  else if (value instanceof Map) { for (const v of value.values()) collect(v, out, depth + 1); }
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn`; tensors it created are disposed when it returns, except those in its result (tensors,
 * or arrays/maps/plain objects of them) and kept ones, which move to the enclosing scope.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { add, initDevice, mul, tensor, tidy } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor([1, 2, 3], [3]);
 * const y = tidy(() => add(mul(x, x), x)); // the temporary x * x is freed on return, y is kept
 * assertEquals(await y.array(), [2, 6, 12]);
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    stack.pop();
  }
  const survivors = new Set<Disposable>();
  collect(result!, survivors);
  for (const t of scope) {
    if (survivors.has(t) || kept.has(t)) continue;
    if (!t.disposed) t.dispose();
  }
  const parent = stack[stack.length - 1];
  if (parent) { for (const t of survivors) if (scope.has(t)) parent.add(t); }
  return result!;
}

/** Async variant of {@link tidy}: the scope stays open across awaits (do not interleave two). */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = await fn();
  } finally {
    const i = stack.lastIndexOf(scope);
    if (i >= 0) stack.splice(i, 1);
  }
  const survivors = new Set<Disposable>();
  collect(result!, survivors);
  for (const t of scope) if (!survivors.has(t) && !kept.has(t) && !t.disposed) t.dispose();
  const parent = stack[stack.length - 1];
  if (parent) { for (const t of survivors) if (scope.has(t)) parent.add(t); }
  return result!;
}
