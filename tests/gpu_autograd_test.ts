import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  add,
  backward,
  detach,
  exp,
  grad,
  initDevice,
  mean,
  mul,
  noGrad,
  record,
  sigmoid,
  sum,
  tensor,
  tidy,
  tidyAsync,
  valueAndGrad,
} from "../gpu/mod.ts";
import { assertClose } from "./gpu_op_helpers.ts";

await initDevice();

function param(v: number[], shape?: number[]) {
  const t = tensor(v, shape);
  t.requiresGrad = true;
  return t;
}

Deno.test("shared subexpressions accumulate their gradients", async () => {
  await tidyAsync(async () => {
    const x = param([0.5, -1, 2]);
    // y = a*a + a with a = exp(x): dy/dx = (2a + 1) a
    const a = exp(x);
    const y = sum(add(mul(a, a), a));
    const [g] = grad(y, [x]);
    const av = [0.5, -1, 2].map(Math.exp);
    assertClose(await g!.array(), av.map((v) => (2 * v + 1) * v), "diamond");
    // the same tensor used twice in one op
    const [g2] = grad(sum(mul(x, x)), [x]);
    assertClose(await g2!.array(), [1, -2, 4], "x*x");
  });
});

Deno.test("grad over several parameters; unreached ones give null", async () => {
  await tidyAsync(async () => {
    const w = param([1, 2]);
    const b = param([0.5]);
    const unused = param([3]);
    const x = tensor([3, 4]);
    const loss = sum(add(mul(w, x), b));
    const [gw, gb, gu] = grad(loss, [w, b, unused]);
    assertEquals(await gw!.array(), [3, 4]);
    assertEquals(await gb!.array(), [2]);
    assertEquals(gu, null);
  });
});

Deno.test("detach and noGrad stop gradients", async () => {
  await tidyAsync(async () => {
    const x = param([1, 2, 3]);
    const y = mul(x, detach(x));
    const [g] = grad(sum(y), [x]);
    assertEquals(await g!.array(), [1, 2, 3]);
    const z = noGrad(() => mul(x, x));
    assertEquals(z.node, null);
    assertThrows(() => backward(sum(z)), Error, "does not depend on any parameter");
    assertThrows(() => backward(sum(detach(x))), Error, "does not depend on any parameter");
  });
});

Deno.test("valueAndGrad, seeds and backward errors", async () => {
  await tidyAsync(async () => {
    const w = param([0.25, -0.5]);
    const f = valueAndGrad((p) => mean(sigmoid(p)));
    const { value, grads } = f(w);
    const s = [0.25, -0.5].map((v) => 1 / (1 + Math.exp(-v)));
    assertClose([await value.item()], [(s[0] + s[1]) / 2], "value");
    assertClose(await grads[0]!.array(), s.map((v) => (v * (1 - v)) / 2), "grad");
    assertThrows(() => f(tensor([1])), Error, "does not have requiresGrad set");
    // explicit seed for a non-scalar output
    const y = mul(w, tensor([2, 3]));
    const res = backward(y, [w], tensor([1, 10]));
    assertEquals(await res.get(w)!.array(), [2, 30]);
    // a backward that returns a gradient of the wrong size is reported with the op's name
    const bad = record(tensor([1, 2]), "bad_op", [w], () => [tensor([1, 2, 3])]);
    assertThrows(() => backward(sum(bad)), Error, "backward of bad_op");
    const bad2 = record(tensor([1, 2]), "bad_op2", [w], () => []);
    assertThrows(() => backward(sum(bad2)), Error, "bad_op2 returned 0 gradients");
  });
});

Deno.test("intermediate gradients are freed during backward", () => {
  tidy(() => {
    const x = param([1, 2, 3, 4]);
    let y = x;
    for (let i = 0; i < 10; i++) y = mul(add(y, x), tensor([0.5]));
    const loss = sum(y);
    const g = backward(loss, [x]);
    assert(g.get(x));
    assertEquals(g.size, 1);
  });
});
