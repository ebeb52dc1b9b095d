/**
 * Reverse-mode automatic differentiation over the graph that ops record in `Tensor.node`
 * (a tape of nodes, as in micrograd/teenygrad): {@link backward}, {@link grad}, {@link valueAndGrad},
 * and {@link noGrad} to record nothing.
 * @module
 */
import type { GradNode, Tensor } from "./tensor.ts";

let gradDepth = 0;

/** Whether ops should record graph nodes now. */
export function gradEnabled(): boolean {
  return gradDepth === 0;
}

/** Runs `fn` without recording gradients (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/**
 * Attaches a graph node to `out` when gradients are on and any input requires one. Ops call this
 * after computing `out`; `backward` maps dL/d(out) to dL/d(inputs).
 */
export function record(
  out: Tensor,
  op: string,
  inputs: (Tensor | null)[],
  backward: GradNode["backward"],
): Tensor {
  if (gradDepth === 0 && inputs.some((t) => t !== null && (t.requiresGrad || t.node !== null))) {
    out.node = { op, inputs, backward };
  }
  return out;
}

/** Whether `t` takes part in a gradient computation. */
export function needsGrad(t: Tensor | null | undefined): boolean {
  return !!t && (t.requiresGrad || t.node !== null);
}

/** Pluggable helpers the autograd core needs from the op library (set by ops/mod.ts). */
export const gradHelpers: {
  add: ((a: Tensor, b: Tensor) => Tensor) | null;
  onesLike: ((t: Tensor) => Tensor) | null;
} = { add: null, onesLike: null };

/**
 * Computes dL/dx for every leaf `x` with `requiresGrad` reachable from `loss` (or only `wrt`).
 * `seed` is dL/d(loss); defaults to ones (loss should be a scalar then).
 * Intermediate gradients are disposed as soon as they are consumed.
 */
export function backward(loss: Tensor, wrt?: Tensor[], seed?: Tensor): Map<Tensor, Tensor> {
  const { add, onesLike } = gradHelpers;
  if (!add || !onesLike) throw new Error("collapse: import gpu/ops/mod.ts before backward()");
  if (!needsGrad(loss)) {
    throw new Error(`collapse: backward(): ${loss.describe()} does not depend on any parameter`);
  }
  // Topological order (iterative DFS).
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[loss, 0]];
  seen.add(loss);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c && !seen.has(c) && needsGrad(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const want = wrt ? new Set(wrt) : null;
  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, seed ?? onesLike(loss));
  const result = new Map<Tensor, Tensor>();
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k];
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (!t.node) {
      if (t.requiresGrad && (!want || want.has(t))) result.set(t, g);
      else if (g !== seed) g.dispose();
      continue;
    }
    const gins = t.node.backward(g);
    if (gins.length !== t.node.inputs.length) {
      throw new Error(`collapse: backward of ${t.node.op} returned ${gins.length} gradients`);
    }
    if (g !== seed) g.dispose();
    t.node.inputs.forEach((inp, j) => {
      const gi = gins[j];
      if (!inp || !gi) return;
      if (!needsGrad(inp)) {
        gi.dispose();
        return;
      }
      if (gi.size !== inp.size) {
        throw new Error(
          `collapse: backward of ${
            t.node!.op
          }: gradient ${gi.describe()} for input ${inp.describe()}`,
        );
      }
      const prev = grads.get(inp);
      if (prev) {
        grads.set(inp, add(prev, gi));
        prev.dispose();
        gi.dispose();
      } else grads.set(inp, gi);
    });
  }
  for (const g of grads.values()) g.dispose();
  return result;
}

/** Gradients of `loss` with respect to `params`, in order (zeros are not materialised: null). */
export function grad(loss: Tensor, params: Tensor[]): (Tensor | null)[] {
  const g = backward(loss, params);
  return params.map((p) => g.get(p) ?? null);
}

/** Wraps `f(params) -> scalar loss` into a function returning the loss and its gradients. */
export function valueAndGrad(
  f: (...params: Tensor[]) => Tensor,
): (...params: Tensor[]) => { value: Tensor; grads: (Tensor | null)[] } {
  return (...params) => {
    for (const p of params) {
      if (!p.requiresGrad) {
        throw new Error(`collapse: valueAndGrad: ${p.describe()} does not have requiresGrad set`);
      }
    }
    const value = f(...params);
    return { value, grads: grad(value, params) };
  };
}
