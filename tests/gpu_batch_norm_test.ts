import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { dot64 } from "./gpu_op_helpers.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
import { batchNorm } from "../gpu/ops/batch_norm.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";

await initDevice();

function rand(rng: Rng, n: number, scale = 1, offset = 0): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = offset + scale * rng.normal();
  return a;
}
const f32 = (a: Float64Array) => Float32Array.from(a);

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert(d <= tol * (1 + scale), `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Host BatchNorm (f64): output, batch mean and biased variance. */
function bnHost(
  x: Float64Array,
  c: number,
  g: Float64Array,
  b: Float64Array,
  eps: number,
  stats?: { mean: Float64Array; var: Float64Array },
) {
  const rows = x.length / c;
  const mean = new Float64Array(c), v = new Float64Array(c);
  if (stats) {
    mean.set(stats.mean);
    v.set(stats.var);
  } else {
    for (let r = 0; r < rows; r++) for (let k = 0; k < c; k++) mean[k] += x[r * c + k] / rows;
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < c; k++) v[k] += (x[r * c + k] - mean[k]) ** 2 / rows;
    }
  }
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    y[i] = (x[i] - mean[k]) / Math.sqrt(v[k] + eps) * g[k] + b[k];
  }
  return { y, mean, var: v };
}

/** Central differences of f at p (f64). */
function numGrad(p: Float64Array, f: () => number, h = 1e-5): Float64Array {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const o = p[i];
    p[i] = o + h;
    const a = f();
    p[i] = o - h;
    const b = f();
    p[i] = o;
    g[i] = (a - b) / (2 * h);
  }
  return g;
}

function backwardOf(y: Tensor, dy: Tensor): (Tensor | null)[] {
  assert(y.node, "output has a graph node");
  return y.node.backward(dy);
}

const CASES: number[][] = [[5, 3], [1, 2], [2, 3, 4, 5], [2, 9, 9, 17], [3, 4, 4, 1]];

for (const shape of CASES) {
  for (const [training, small] of [[true, true], [true, false], [false, false]]) {
    if (training && shape.slice(0, -1).reduce((a, b) => a * b, 1) < 2) continue;
    const path = training ? (small ? " (one dispatch)" : " (two-level)") : "";
    Deno.test(`batchNorm ${training ? "training" : "eval"}${path} ${JSON.stringify(shape)}: forward, running stats, gradients`, async () => {
      const keep = TUNING.bnSmallRows;
      TUNING.bnSmallRows = small ? keep : 0;
      try {
        const rng = new Rng(shape.reduce((a, b) => a * 31 + b, 7) + (training ? 1 : 0));
        const c = shape[shape.length - 1];
        const n = shape.reduce((a, b) => a * b, 1);
        const xh = rand(rng, n, 2, 3); // offset mean: exercises the shifted sums
        const gh = rand(rng, c, 0.5, 1), bh = rand(rng, c, 0.5);
        const rmh = rand(rng, c, 0.3), rvh = rand(rng, c, 0.2, 1).map(Math.abs);
        const R = rand(rng, n);
        const eps = 1e-5, momentum = 0.1;
        const x = tensor(f32(xh), shape), gamma = tensor(f32(gh), [c]), beta = tensor(f32(bh), [c]);
        x.requiresGrad = gamma.requiresGrad = beta.requiresGrad = true;
        const runningMean = tensor(f32(rmh), [c]), runningVar = tensor(f32(rvh), [c]);
        const y = batchNorm(x, gamma, beta, { training, runningMean, runningVar, momentum, eps });
        const [dx, dg, db] = backwardOf(y, tensor(f32(R), shape));
        const [yv, rm, rv, dxv, dgv, dbv] = await readAll([
          y,
          runningMean,
          runningVar,
          dx!,
          dg!,
          db!,
        ]);
        const stats = training ? undefined : { mean: rmh, var: rvh };
        const ref = bnHost(xh, c, gh, bh, eps, stats);
        close(yv, ref.y, 1e-4, "y");
        const rows = n / c;
        if (training) {
          close(rm, rmh.map((r, k) => 0.9 * r + 0.1 * ref.mean[k]), 1e-5, "running mean");
          close(
            rv,
            rvh.map((r, k) => 0.9 * r + 0.1 * ref.var[k] * rows / (rows - 1)),
            1e-5,
            "running var",
          );
        } else {
          close(rm, f32(rmh), 0, "running mean untouched");
          close(rv, f32(rvh), 0, "running var untouched");
        }
        const loss = () => dot64(bnHost(xh, c, gh, bh, eps, stats).y, R);
        close(dxv, numGrad(xh, loss), 2e-3, "dx");
        close(dgv, numGrad(gh, loss), 2e-3, "dgamma");
        close(dbv, numGrad(bh, loss), 2e-3, "dbeta");
      } finally {
        TUNING.bnSmallRows = keep;
      }
    });
  }
}

Deno.test("batchNorm: large-mean data keeps its variance (shifted sums)", async () => {
  const rng = new Rng(3);
  const c = 4, rows = 300;
  const xh = rand(rng, rows * c, 0.01, 1000);
  const x = tensor(f32(xh), [rows, c]);
  const ones = tensor(new Float32Array(c).fill(1), [c]), zerosT = tensor(new Float32Array(c), [c]);
  const rm = tensor(new Float32Array(c), [c]), rv = tensor(new Float32Array(c).fill(1), [c]);
  const y = batchNorm(x, ones, zerosT, { training: true, runningMean: rm, runningVar: rv });
  const ref = bnHost(
    Float64Array.from(f32(xh)),
    c,
    new Float64Array(c).fill(1),
    new Float64Array(c),
    1e-5,
  );
  close(await y.data(), ref.y, 2e-2, "y");
});

Deno.test("batchNorm: errors name the op and shapes", () => {
  const x = tensor(new Float32Array(12), [4, 3]);
  const v3 = tensor(new Float32Array(3), [3]), v2 = tensor(new Float32Array(2), [2]);
  const o = { training: true, runningMean: v3, runningVar: v3 };
  assertThrows(() => batchNorm(x, v2, v3, o), Error, "batchNorm: gamma f32[2]");
  assertThrows(() => batchNorm(x, v3, v3, { ...o, runningVar: v2 }), Error, "runningVar");
  assertThrows(
    () => batchNorm(tensor(new Float32Array(3), [3]), v3, v3, o),
    Error,
    "rank >= 2",
  );
  assertThrows(
    () => batchNorm(tensor(new Int32Array(12), [4, 3]), v3, v3, o),
    Error,
    "must be f32",
  );
  assertThrows(
    () => batchNorm(tensor(new Float32Array(3), [1, 3]), v3, v3, o),
    Error,
    "more than one value per channel",
  );
});
