// Half-precision storage (gpu/half_storage.ts): the WGSL rewrite of a kernel's half-stored
// bindings, what it refuses, the round trip through kernels on the device (binary16 values, reads
// as vec4 and as scalars, host readback), and the refusal of copies, views and bindings that
// would mix half and f32 formats.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { type Bindable, engine } from "../gpu/engine.ts";
import { decodeHalf, halfStorageSource } from "../gpu/half_storage.ts";
import {
  empty,
  emptyHalf,
  readAll,
  reshapeView,
  type Tensor,
  tensor,
  viewOf,
} from "../gpu/tensor.ts";

const decl = (access: string, name: string, elem: string, b = 0) =>
  `@group(0) @binding(${b}) var<storage, ${access}> ${name}: array<${elem}>;`;

Deno.test("half storage: reads, vec4 stores, swizzles, nested indices and comments are rewritten", () => {
  const code = `${decl("read_write", "y", "vec4<f32>")}
${decl("read", "x", "f32", 1)}
// y: the output, x[i] the input
fn main() {
  let v = y[idx[2u]] * vec4<f32>(x[3u * (i + 1u)]);
  y[i + 1u] = select(y[i], v, v.y > 0.0);
  let w = v.y;
}`;
  const out = halfStorageSource(code, [0, 1], "k");
  assertStringIncludes(out, "var<storage, read_write> y__h: array<vec2<u32>>;");
  assertStringIncludes(out, "var<storage, read> x__h: array<u32>;");
  assertStringIncludes(out, "fn y__st(i: u32, v: vec4<f32>)");
  assertStringIncludes(out, "let v = y__ld(u32(idx[2u])) * vec4<f32>(x__ld(u32(3u * (i + 1u))));");
  assertStringIncludes(out, "y__st(u32(i + 1u), select(y__ld(u32(i)), v, v.y > 0.0));");
  assertStringIncludes(out, "let w = v.y;");
  assertEquals(out.includes("// y:"), false);
});

Deno.test("half storage: what would race or escape the rewrite is refused with the kernel's name", () => {
  const k = (body: string, elem = "vec4<f32>") => () =>
    halfStorageSource(`${decl("read_write", "y", elem)}\nfn main() { ${body} }`, [0], "kern");
  assertThrows(k("y[0u] = 1.0;", "f32"), Error, "kern: half-stored y takes whole vec4 stores");
  assertThrows(k("y[0u] += vec4<f32>(1.0);"), Error, "whole vec4 stores");
  assertThrows(k("y[0u].x = 1.0;"), Error, "whole vec4 stores");
  assertThrows(k("let p = &y;"), Error, "may only be indexed");
  assertThrows(k("let n = arrayLength(&y);"), Error, "may only be indexed");
  assertThrows(() => halfStorageSource(decl("read", "y", "u32"), [0], "k"), Error, "not declared");
  assertThrows(() => halfStorageSource(decl("read", "y", "f32"), [1], "k"), Error, "binding 1");
});

Deno.test("half storage: a kernel's vec4 stores keep binary16 values; vec4 and scalar reads, readback", async () => {
  await initDevice();
  const vals = [
    1,
    -2.5,
    1 + 2 ** -11, // a tie between 1 and 1 + 2^-10
    1 + 3 * 2 ** -11,
    1 + 2 ** -11 + 2 ** -20,
    65504, // the largest binary16
    6.103515625e-5, // the smallest normal one
    3.14159265,
    -0,
    1024.7,
    0.1,
    -7.77e-3,
  ];
  const src = tensor(Float32Array.from(vals), [vals.length]);
  const h = emptyHalf([vals.length]);
  const n = vals.length;
  // One kernel: out[i] = expr(inp[i]) over `count` elements of `elem`.
  const map = (name: string, elem: string, count: number, expr: string, inp: Tensor, out: Tensor) =>
    engine().dispatch({
      name,
      code: `${decl("read", "inp", elem)}
${decl("read_write", "out", elem, 1)}
@compute @workgroup_size(16) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${count}u) { out[g.x] = ${expr}; }
}`,
      bindings: [inp.binding, out.binding],
      workgroups: [1],
    });
  map("half_store", "vec4<f32>", n / 4, "inp[g.x]", src, h);
  // Scalar reads (array<f32>) of the half tensor into an f32 one, and vec4 reads, negated.
  const back = empty([n]), back4 = empty([n]);
  map("half_load", "f32", n, "inp[g.x] * 2.0", h, back);
  map("half_load4", "vec4<f32>", n / 4, "-inp[g.x]", h, back4);
  const [got, twice, negated] = await readAll([h, back, back4]);
  // WGSL rounds to one of the two nearest binary16 values (lavapipe: to nearest, ties to even).
  vals.forEach((v, i) => {
    const [lo, hi] = halfNeighbours(v);
    assert(got[i] === lo || got[i] === hi, `${v} stored as ${got[i]}, not ${lo} or ${hi}`);
  });
  assertEquals(got[0], 1);
  assertEquals(got[5], 65504);
  assertEquals(Object.is(got[8], -0), true);
  assertEquals([...twice], [...got].map((v) => v * 2));
  assertEquals([...negated], [...got].map((v) => -v));
  assertEquals([...await h.data()], [...got]);
  assertEquals(h.binding.byteLength, vals.length * 2);
});

Deno.test("half storage: host decoding of every binary16 class", () => {
  const bits = [0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
  const got = decodeHalf(new Uint16Array(bits));
  assertEquals([...got.slice(0, 8)], [1, -2, 65504, 2 ** -14, 2 ** -24, -0, Infinity, -Infinity]);
  assert(Number.isNaN(got[8]));
  assertEquals(got[9], 0.333251953125);
});

/** The binary16 values at or just below and above x (equal when x is one). */
function halfNeighbours(x: number): [number, number] {
  if (x === 0) return [x, x];
  const e = Math.max(-14, Math.floor(Math.log2(Math.abs(x))));
  const ulp = 2 ** (e - 10);
  const lo = Math.floor(x / ulp) * ulp, hi = Math.ceil(x / ulp) * ulp;
  return [lo, hi];
}

Deno.test("half storage: copies, views and bindings that would mix formats are refused", async () => {
  await initDevice();
  const h = emptyHalf([8]), f = empty([8]);
  assertThrows(() => engine().copy(h.storage, f.storage), Error, "would mix formats");
  assertThrows(() => engine().copy(f.storage, h.storage), Error, "would mix formats");
  assertThrows(() => viewOf(h.storage, 0, [4]), Error, "half-stored");
  const launch = (b: Bindable) => ({
    name: "probe",
    code: `${decl("read_write", "y", "vec4<f32>")}
@compute @workgroup_size(1) fn main() { y[0] = vec4<f32>(1.0); }`,
    bindings: [b],
    workgroups: [1] as [number],
  });
  assertThrows(
    () => engine().dispatch(launch({ storage: h.storage })),
    Error,
    "probe: binding 0 binds a half-stored buffer without saying so",
  );
  assertThrows(
    () => engine().dispatch(launch({ storage: f.storage, half: true })),
    Error,
    "says half storage for a f32 buffer",
  );
  const v = reshapeView(h, [2, 4]);
  assert(v.half);
  engine().dispatch(launch(v.binding));
  assertEquals([...await h.data()].slice(0, 4), [1, 1, 1, 1]);
});
