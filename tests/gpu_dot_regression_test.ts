import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { dotRegressionLoss } from "../gpu/ops/dot_regression.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, tensor } from "../gpu/tensor.ts";

await initDevice();

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert(
      Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
    );
  }
}

/** Host ETF (DESIGN.md section 3): QR of U[0,1) A by Gram-Schmidt, centred and scaled; [d, K]. */
function etf(d: number, k: number, rng: Rng): Float64Array {
  const cols: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const v = new Float64Array(d).map(() => rng.next());
    for (const q of cols) {
      const p = v.reduce((s, x, i) => s + x * q[i], 0);
      for (let i = 0; i < d; i++) v[i] -= p * q[i];
    }
    const n = Math.hypot(...v);
    cols.push(v.map((x) => x / n));
  }
  const m = new Float64Array(d * k);
  const sc = Math.sqrt(k / (k - 1));
  for (let i = 0; i < d; i++) {
    let mean = 0;
    for (let j = 0; j < k; j++) mean += cols[j][i] / k;
    for (let j = 0; j < k; j++) m[i * k + j] = sc * (cols[j][i] - mean);
  }
  return m;
}

/** Host DR loss (f64); `fixed` holds s_i (norms treated as constants) for finite differences. */
function drHost(
  h: Float64Array,
  m: Float64Array,
  labels: number[],
  countLabels: number[],
  d: number,
  k: number,
  fixed?: Float64Array,
) {
  const b = labels.length;
  const counts = new Array(k).fill(0);
  for (const y of countLabels) counts[y]++;
  const present = counts.filter((c) => c > 0).length;
  const gamma = b / present;
  const ew = counts.map((c) => (c > 0 ? Math.sqrt(gamma / c) : 0));
  const rows = new Float64Array(b), s = new Float64Array(b), grad = new Float64Array(b * d);
  for (let i = 0; i < b; i++) {
    const y = labels[i];
    let ht = 0, hh = 0, tt = 0;
    for (let j = 0; j < d; j++) {
      const t = ew[y] * m[j * k + y];
      ht += h[i * d + j] * t;
      hh += h[i * d + j] ** 2;
      tt += t * t;
    }
    s[i] = fixed ? fixed[i] : Math.max(Math.sqrt(hh), 1e-8);
    const a = Math.sqrt(tt);
    const r = ht - a * s[i];
    rows[i] = r * r / (2 * s[i]);
    for (let j = 0; j < d; j++) grad[i * d + j] = r / (s[i] * b) * ew[y] * m[j * k + y];
  }
  return { rows, mean: rows.reduce((x, y) => x + y, 0) / b, s, ew, grad };
}

const D = 5, K = 4;
const LABELS = [0, 0, 2, 2, 2, 1, 0]; // class 3 missing, classes repeated
const B = LABELS.length;

function setup(seed: number, normalise = false) {
  const rng = new Rng(seed);
  const m = etf(D, K, rng);
  const h = new Float64Array(B * D).map(() => rng.normal() * 2);
  if (normalise) {
    for (let i = 0; i < B; i++) {
      const n = Math.hypot(...h.subarray(i * D, i * D + D));
      for (let j = 0; j < D; j++) h[i * D + j] /= n;
    }
  }
  return { rng, m, h };
}

Deno.test("dotRegressionLoss: value and per-row values match the formula (repeated, missing classes)", async () => {
  const { m, h } = setup(1);
  const ref = drHost(h, m, LABELS, LABELS, D, K);
  // hand check of the weights: B = 7, |U| = 3, gamma = 7/3; counts 3, 1, 3, 0.
  close(ref.ew, [Math.sqrt(7 / 9), Math.sqrt(7 / 3), Math.sqrt(7 / 9), 0], 1e-12, "Ew");
  const ht = tensor(f32(h), [B, D]), mt = tensor(f32(m), [D, K]);
  const lt = tensor(LABELS, [B], "i32");
  const loss = dotRegressionLoss(ht, mt, lt);
  const rows = dotRegressionLoss(ht, mt, lt, { reduction: "none" });
  assertEquals(loss.shape, []);
  assertEquals(rows.shape, [B]);
  const [lv, rv] = await readAll([loss, rows]);
  close(lv, [ref.mean], 1e-5, "loss");
  close(rv, ref.rows, 1e-5, "rows");
});

Deno.test("dotRegressionLoss: gradient = finite differences of the formula with s, a constant", async () => {
  const { m, h, rng } = setup(2);
  const ht = tensor(f32(h), [B, D]);
  ht.requiresGrad = true;
  const mt = tensor(f32(m), [D, K]), lt = tensor(LABELS, [B], "i32");
  const loss = dotRegressionLoss(ht, mt, lt);
  const [dh, dm, dl] = loss.node!.backward(tensor([1.5], []));
  assertEquals(dm, null);
  assertEquals(dl, null);
  const s = drHost(h, m, LABELS, LABELS, D, K).s;
  const fd = new Float64Array(h.length);
  const eps = 1e-6;
  for (let i = 0; i < h.length; i++) {
    const o = h[i];
    h[i] = o + eps;
    const a = drHost(h, m, LABELS, LABELS, D, K, s).mean;
    h[i] = o - eps;
    const b = drHost(h, m, LABELS, LABELS, D, K, s).mean;
    h[i] = o;
    fd[i] = 1.5 * (a - b) / (2 * eps);
  }
  close(fd, drHost(h, m, LABELS, LABELS, D, K).grad.map((g) => 1.5 * g), 1e-6, "analytic vs fd");
  close(await dh!.data(), fd, 1e-4, "dh");
  // reduction "none": per-row upstream gradients.
  const rows = dotRegressionLoss(ht, mt, lt, { reduction: "none" });
  const up = new Float64Array(B).map(() => rng.normal());
  const [dh2] = rows.node!.backward(tensor(f32(up), [B]));
  const ref = drHost(h, m, LABELS, LABELS, D, K).grad;
  close(await dh2!.data(), ref.map((g, i) => g * B * up[Math.floor(i / D)]), 1e-4, "dh none");
});

Deno.test("dotRegressionLoss: unit-norm h gives 0.5 * mean Ew^2 (cos - 1)^2", async () => {
  const { m, h } = setup(3, true);
  const ref = drHost(h, m, LABELS, LABELS, D, K);
  let want = 0;
  for (let i = 0; i < B; i++) {
    const y = LABELS[i];
    let hm = 0, mm = 0;
    for (let j = 0; j < D; j++) {
      hm += h[i * D + j] * m[j * K + y];
      mm += m[j * K + y] ** 2;
    }
    const cos = hm / Math.sqrt(mm); // ||h|| = 1
    want += 0.5 * ref.ew[y] ** 2 * (cos - 1) ** 2 / B;
  }
  close([ref.mean], [want], 1e-12, "host identity");
  const loss = dotRegressionLoss(
    tensor(f32(h), [B, D]),
    tensor(f32(m), [D, K]),
    tensor(LABELS, [B], "i32"),
  );
  close([await loss.item()], [want], 1e-5, "gpu");
});

Deno.test("dotRegressionLoss: countLabels (mixup) and a single-row batch", async () => {
  const { m, h } = setup(4);
  const perm = [3, 0, 6, 1, 5, 2, 4].map((i) => LABELS[i]);
  const ref = drHost(h, m, perm, LABELS, D, K);
  const loss = dotRegressionLoss(
    tensor(f32(h), [B, D]),
    tensor(f32(m), [D, K]),
    tensor(perm, [B], "i32"),
    {
      countLabels: tensor(LABELS, [B], "i32"),
    },
  );
  close([await loss.item()], [ref.mean], 1e-5, "mixup");
  const one = dotRegressionLoss(
    tensor(f32(h.subarray(0, D)), [1, D]),
    tensor(f32(m), [D, K]),
    tensor([2], [1], "i32"),
  );
  close([await one.item()], [drHost(h.subarray(0, D), m, [2], [2], D, K).mean], 1e-5, "B = 1");
});

Deno.test("dotRegressionLoss: out-of-range labels throw at readback, bad shapes throw", async () => {
  const h = tensor(new Float32Array(2 * D).fill(1), [2, D]),
    m = tensor(new Float32Array(D * K), [D, K]);
  const rows = dotRegressionLoss(h, m, tensor([1, 7], [2], "i32"), { reduction: "none" });
  await assertRejects(() => rows.data(), Error, "dotRegressionLoss: label 7 (row 1)");
  assertThrows(
    () => dotRegressionLoss(h, tensor(new Float32Array(12), [3, 4]), tensor([0, 1], [2], "i32")),
    Error,
    "M must be f32 [d, K]",
  );
  assertThrows(
    () => dotRegressionLoss(h, m, tensor([0, 1, 2], [3], "i32")),
    Error,
    "labels must be i32 [2]",
  );
  assertThrows(() => dotRegressionLoss(h, m, tensor([0, 1], [2], "f32")), Error, "labels");
  assertThrows(
    () =>
      dotRegressionLoss(h, m, tensor([0, 1], [2], "i32"), { countLabels: tensor([0], [1], "i32") }),
    Error,
    "countLabels",
  );
  assertThrows(
    () => dotRegressionLoss(tensor(new Float32Array(D), [D]), m, tensor([0], [1], "i32")),
    Error,
    "h must be",
  );
});
