/**
 * Memory stays flat over many training steps: each step runs forward, loss, backward and a
 * parameter update (new tensors, old ones disposed) inside `tidy`; live buffers and bytes must not
 * grow after warm-up.
 */
import { assertEquals } from "@std/assert";
import {
  add,
  engine,
  grad,
  initDevice,
  keep,
  mulScalar,
  noGrad,
  relu,
  softmaxCrossEntropy,
  sub,
  type Tensor,
  tensor,
  tidy,
} from "../gpu/mod.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { rand, rng } from "./gpu_op_helpers.ts";

await initDevice();

Deno.test("200 training steps of a 2-layer MLP keep memory flat", async () => {
  const r = rng(51);
  const [B, D, H, K] = [8, 6, 5, 3];
  const x = tensor(rand(r, B * D), [B, D]);
  const y = tensor(Array.from({ length: B }, (_, i) => i % K), [B], "i32");
  const mk = (n: number, shape: number[]) => {
    const t = tensor(rand(r, n, -0.5, 0.5), shape);
    t.requiresGrad = true;
    return t;
  };
  let params: Tensor[] = [mk(D * H, [D, H]), mk(H, [H]), mk(H * K, [H, K]), mk(K, [K])];
  const losses: Tensor[] = [];
  const stats: { liveBuffers: number; liveBytes: number }[] = [];
  for (let step = 1; step <= 200; step++) {
    const { next, loss } = tidy(() => {
      const [w1, b1, w2, b2] = params;
      const h = relu(add(matmul(x, w1), b1));
      const logits = add(matmul(h, w2), b2);
      const loss = softmaxCrossEntropy(logits, y);
      const gs = grad(loss, params);
      const next = noGrad(() => params.map((p, i) => sub(p, mulScalar(gs[i]!, 0.5))));
      return { next, loss };
    });
    for (const p of params) p.dispose();
    for (const p of next) p.requiresGrad = true;
    params = next;
    if (step === 10 || step === 200) {
      // measured with this step's loss alive in both cases
      const s = engine().stats();
      stats.push({ liveBuffers: s.liveBuffers, liveBytes: s.liveBytes });
    }
    if (step === 1 || step === 200) losses.push(keep(loss));
    else loss.dispose();
    if (step % 50 === 0) await engine().sync();
  }
  assertEquals(stats[1], stats[0]);
  // pooled buffers are flat too: each step reuses the same buffers
  const pooled = engine().stats().pooledBuffers;
  if (pooled > 200) throw new Error(`pool grew to ${pooled} buffers`);
  const [l1, l200] = await Promise.all(losses.map((l) => l.item()));
  if (!(l200 < l1 * 0.5)) throw new Error(`loss did not fall: ${l1} -> ${l200}`);
  for (const t of [...params, ...losses, x, y]) t.dispose();
});
