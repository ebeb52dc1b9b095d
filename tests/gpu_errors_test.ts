// Clear errors, never a crash or a silent wrong value: a missing adapter, no device yet, shape and
// dtype mismatches, out-of-range indices caught on the GPU (eager and inside a captured step),
// NaN propagation through relu & co, disposed tensors and a kernel that fails to compile. After
// each error the device stays usable.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  add,
  argmax,
  clamp,
  conv2d,
  dotRegressionLoss,
  engine,
  exp,
  gather,
  initDevice,
  leakyRelu,
  matmul,
  maximum,
  minimum,
  oneHot,
  relu,
  softmaxCrossEntropy,
  tensor,
  tidy,
  writeTensor,
} from "../gpu/mod.ts";

await initDevice();

/** The device still works: a fresh op computes and reads back correctly. */
async function assertUsable(): Promise<void> {
  const a = tensor([1, 2, 3], [3]);
  const b = add(a, a);
  assertEquals(await b.array(), [2, 4, 6]);
  a.dispose();
  b.dispose();
}

/** Runs a Deno script (its source) in a subprocess; returns exit code and output. */
async function runScript(source: string): Promise<{ code: number; out: string }> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, source);
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: res.code, out: dec.decode(res.stdout) + dec.decode(res.stderr) };
  } finally {
    await Deno.remove(file);
  }
}

const DEVICE_TS = new URL("../gpu/device.ts", import.meta.url).href;
const MOD_TS = new URL("../gpu/mod.ts", import.meta.url).href;

Deno.test("missing WebGPU / missing adapter: clear message with the fix, non-zero exit", async () => {
  const noGpu = await runScript(`
import { initDevice } from "${DEVICE_TS}";
Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
await initDevice();
`);
  assert(noGpu.code !== 0, noGpu.out);
  assertStringIncludes(noGpu.out, "collapse: WebGPU is not available");
  if (Deno.build.os === "linux") assertStringIncludes(noGpu.out, "mesa-vulkan-drivers");
  assert(!/panicked/.test(noGpu.out), noGpu.out);

  const noAdapter = await runScript(`
import { initDevice } from "${DEVICE_TS}";
Object.defineProperty(Object.getPrototypeOf(navigator.gpu), "requestAdapter", {
  value: () => Promise.resolve(null),
  configurable: true,
});
try {
  await initDevice();
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(3);
}
`);
  assertEquals(noAdapter.code, 3, noAdapter.out);
  assertStringIncludes(noAdapter.out, "collapse: no WebGPU adapter found");
  if (Deno.build.os === "linux") assertStringIncludes(noAdapter.out, "mesa-vulkan-drivers");
  assert(!/panicked/.test(noAdapter.out), noAdapter.out);
});

Deno.test("using tensors before initDevice() says to call it", async () => {
  const r = await runScript(`
import { tensor, zeros } from "${MOD_TS}";
for (const f of [() => tensor([1, 2], [2]), () => zeros([2])]) {
  try {
    f();
    console.log("no error");
  } catch (e) {
    console.log((e as Error).message);
  }
}
`);
  assertEquals(r.code, 0, r.out);
  const lines = r.out.trim().split("\n");
  assertEquals(lines.length, 2, r.out);
  for (const l of lines) assertStringIncludes(l, "call `await initDevice()`");
});

Deno.test("shape mismatches name the op and the shapes", async () => {
  tidy(() => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [4, 2]);
    const e1 = assertThrows(() => matmul(a, b), Error, "matmul");
    assertStringIncludes(e1.message, "[2, 3]");
    assertStringIncludes(e1.message, "[4, 2]");
    const e2 = assertThrows(() => add(a, tensor(new Float32Array(2), [2])), Error, "add");
    assertStringIncludes(e2.message, "[2, 3]");
    const x = tensor(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
    const w = tensor(new Float32Array(3 * 3 * 2 * 5), [3, 3, 2, 5]);
    const e3 = assertThrows(() => conv2d(x, w), Error, "conv2d");
    assert(/3/.test(e3.message) && /2/.test(e3.message), e3.message);
  });
  await assertUsable();
});

Deno.test("wrong dtypes name the op", async () => {
  tidy(() => {
    assertThrows(() => oneHot(tensor([0, 1], [2], "f32"), 3), Error, "oneHot");
    assertThrows(() => exp(tensor([0, 1], [2], "i32")), Error, "exp");
  });
  await assertUsable();
});

Deno.test("gather: an out-of-range index throws at the next readback, naming it", async () => {
  const x = tensor([10, 11, 12, 20, 21, 22], [2, 3]);
  const bad = tensor([1, 12, 0], [3], "i32");
  const y = gather(x, bad, 1);
  const e = await assertRejects(() => y.data(), Error);
  assertStringIncludes(e.message, "gather: index 12");
  assertStringIncludes(e.message, "axis 1 of size 3");
  assertStringIncludes(e.message, "detected on the GPU");
  // The flag is cleared once reported: the same (deterministic, zero-filled) output reads now.
  assertEquals(await y.array(), [11, 0, 10, 21, 0, 20]);
  // Also reported by sync(), and negative indices too.
  const y2 = gather(x, tensor([-1], [1], "i32"), 0);
  await assertRejects(() => engine().sync(), Error, "gather: index -1");
  y2.dispose();
  await assertUsable();
  x.dispose();
  bad.dispose();
  y.dispose();
});

Deno.test("oneHot: an out-of-range label throws at the next readback", async () => {
  const oh = oneHot(tensor([2, 0, 3], [3], "i32"), 3);
  await assertRejects(() => oh.data(), Error, "oneHot: label 3 (row 2) out of range for depth 3");
  oh.dispose();
  const ok = oneHot(tensor([2, 0], [2], "i32"), 3);
  assertEquals(await ok.array(), [0, 0, 1, 1, 0, 0]);
  await assertUsable();
});

Deno.test("softmaxCrossEntropy: an out-of-range label throws at the next readback", async () => {
  const z = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const loss = softmaxCrossEntropy(z, tensor([0, -1], [2], "i32"));
  await assertRejects(
    () => loss.item(),
    Error,
    "softmaxCrossEntropy: label -1 (row 1) out of range for 3 classes",
  );
  const ok = softmaxCrossEntropy(z, tensor([0, 2], [2], "i32"), { reduction: "none" });
  const v = await ok.data();
  assert(Math.abs(v[1] - Math.log(1 + Math.exp(-1) + Math.exp(-2))) < 1e-5, `${v}`);
  await assertUsable();
});

Deno.test("dotRegressionLoss: out-of-range labels / count labels throw at the next readback", async () => {
  const D = 3, K = 4;
  const h = tensor(new Float32Array(2 * D).fill(1), [2, D]);
  const m = tensor(new Float32Array(D * K).fill(0.5), [D, K]);
  const l1 = dotRegressionLoss(h, m, tensor([1, 7], [2], "i32"));
  await assertRejects(() => l1.item(), Error, "dotRegressionLoss: label 7 (row 1)");
  const l2 = dotRegressionLoss(h, m, tensor([1, 2], [2], "i32"), {
    countLabels: tensor([1, -3], [2], "i32"),
  });
  await assertRejects(() => l2.item(), Error, "dotRegressionLoss: countLabels value -3 (row 1)");
  const ok = dotRegressionLoss(h, m, tensor([1, 2], [2], "i32"));
  assert(Number.isFinite(await ok.item()));
  await assertUsable();
});

Deno.test("an out-of-range index inside a captured step is reported after run()", async () => {
  const x = tensor([1, 2, 3, 4], [4]);
  const idx = tensor([0, 1], [2], "i32");
  const { step, result } = engine().capture(() => gather(x, idx));
  step.run();
  assertEquals(await result.array(), [1, 2]);
  writeTensor(idx, new Int32Array([3, 9]));
  step.run();
  await assertRejects(() => result.data(), Error, "gather: index 9 (at position 1");
  writeTensor(idx, new Int32Array([3, 2]));
  step.run();
  assertEquals(await result.array(), [4, 3]);
  step.dispose();
  x.dispose();
  idx.dispose();
  await assertUsable();
});

Deno.test("relu, leakyRelu, maximum, minimum and clamp propagate NaN", async () => {
  const x = tensor([NaN, -1, 2, 0], [4]);
  const r = await relu(x).data();
  assert(Number.isNaN(r[0]), `${r}`);
  assertEquals([...r.slice(1)], [0, 2, 0]);
  assert(Number.isNaN((await leakyRelu(x, 0.1).data())[0]));
  const o = tensor([0, 0, 0, 0], [4]);
  for (const t of [maximum(x, o), maximum(o, x), minimum(x, o), minimum(o, x)]) {
    const v = await t.data();
    assert(Number.isNaN(v[0]), `${v}`);
  }
  assertEquals([...(await maximum(x, o).data()).slice(1)], [0, 2, 0]);
  assertEquals([...(await minimum(x, o).data()).slice(1)], [-1, 0, 0]);
  const c = await clamp(x, -0.5, 1).data();
  assert(Number.isNaN(c[0]));
  assertEquals([...c.slice(1)], [-0.5, 1, 0]);
  // argmax skips NaN (first finite maximum)
  assertEquals(await argmax(tensor([NaN, 1, 2, 5, NaN, 3], [2, 3])).array(), [2, 0]);
  // integer max/min still work
  const ia = tensor([1, -5], [2], "i32"), ib = tensor([0, 3], [2], "i32");
  assertEquals(await maximum(ia, ib).array(), [1, 3]);
  assertEquals(await minimum(ia, ib).array(), [0, -5]);
});

Deno.test("using a disposed tensor is a clear error", async () => {
  const a = tensor([1, 2], [2]);
  a.dispose();
  assertThrows(() => add(a, a), Error, "use of a disposed tensor");
  await assertRejects(() => a.data(), Error, "disposed");
  await assertUsable();
});

Deno.test("a kernel that fails to compile is named in the error", async () => {
  const out = tensor([0], [1]);
  engine().dispatch({
    name: "broken_test_kernel",
    code: "@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }",
    bindings: [],
    workgroups: [1],
  });
  out.dispose();
  await assertRejects(() => engine().sync(), Error, "broken_test_kernel");
  await assertUsable();
});
