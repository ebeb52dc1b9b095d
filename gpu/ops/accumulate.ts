/**
 * In-place, non-differentiable accumulation ops for training statistics kept on the GPU between
 * (rare) readbacks: {@link accumulate_} and {@link watchFinite_}. Both are single small dispatches
 * with constant uniforms, so they replay inside captured steps.
 * @module
 */
import { engine } from "../engine.ts";
import { accumulateLaunch, watchFiniteLaunch } from "../kernels/accumulate.ts";
import type { Tensor } from "../tensor.ts";

/** `acc[offset + i] += x[i]` for every element of `x` (both f32), in place; returns `acc`. */
export function accumulate_(acc: Tensor, x: Tensor, offset = 0): Tensor {
  if (acc.dtype !== "f32" || x.dtype !== "f32") {
    throw new Error(
      `collapse: accumulate_: needs f32 tensors, got ${acc.describe()} and ${x.describe()}`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + x.size > acc.size) {
    throw new Error(
      `collapse: accumulate_: ${x.describe()} at offset ${offset} does not fit in ${acc.describe()}`,
    );
  }
  if (x.size) engine().dispatch(accumulateLaunch(acc, x, offset));
  return acc;
}

/**
 * Step monitor: `state` is u32[2] = [steps seen, 1-based step of the first non-finite `x` or 0].
 * Each call counts one step and records it if any element of `x` (f32) is NaN or infinite and no
 * earlier step was recorded. Zero `state` to restart.
 */
export function watchFinite_(x: Tensor, state: Tensor): Tensor {
  if (x.dtype !== "f32" || state.dtype !== "u32" || state.size !== 2) {
    throw new Error(
      `collapse: watchFinite_: needs f32 values and a u32[2] state, got ${x.describe()} and ${state.describe()}`,
    );
  }
  engine().dispatch(watchFiniteLaunch(x, state));
  return state;
}
