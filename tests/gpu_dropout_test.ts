import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { dropout } from "../gpu/ops/dropout.ts";
import { readAll, tensor, writeTensor } from "../gpu/tensor.ts";

await initDevice();

Deno.test("dropout: inverted scaling, rate, determinism, same mask in backward", async () => {
  const n = 20000, rate = 0.3;
  const xh = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7));
  const x = tensor(xh, [100, 200]);
  x.requiresGrad = true;
  const seed = tensor(new Uint32Array([42]), [1]);
  const y = dropout(x, rate, seed, true);
  const y2 = dropout(x, rate, seed, true);
  // the caller changes the seed after the forward: the backward must still use the forward's mask.
  writeTensor(seed, new Uint32Array([43]));
  const y3 = dropout(x, rate, seed, true);
  const [dx] = y.node!.backward(tensor(new Float32Array(n).fill(2), [100, 200]));
  const [a, b, c, g] = await readAll([y, y2, y3, dx!]);
  let dropped = 0, differ = 0;
  for (let i = 0; i < n; i++) {
    const kept = a[i] !== 0;
    if (!kept) dropped++;
    else assert(Math.abs(a[i] - xh[i] / (1 - rate)) < 1e-5, `y[${i}] = ${a[i]}`);
    assertEquals(a[i], b[i]);
    if ((a[i] !== 0) !== (c[i] !== 0)) differ++;
    assert(Math.abs(g[i] - (kept ? 2 / (1 - rate) : 0)) < 1e-5, `dx[${i}]`);
  }
  assert(Math.abs(dropped / n - rate) < 0.02, `dropped fraction ${dropped / n}`);
  assert(differ > n * 0.3, `another seed gives another mask (${differ} differ)`);
});

Deno.test("dropout: eval and rate 0 return x; rate 1 zeroes; errors", async () => {
  const x = tensor([1, 2, 3], [3]);
  const seed = tensor(new Uint32Array([1]), [1]);
  assertEquals(dropout(x, 0.5, seed, false), x);
  assertEquals(dropout(x, 0, seed, true), x);
  assertEquals(Array.from(await dropout(x, 1, seed, true).data()), [0, 0, 0]);
  assertThrows(() => dropout(x, 1.5, seed, true), Error, "rate");
  assertThrows(() => dropout(x, 0.5, tensor([1], [1], "i32"), true), Error, "seed");
  assertThrows(() => dropout(tensor([1], [1], "i32"), 0.5, seed, true), Error, "must be f32");
});
