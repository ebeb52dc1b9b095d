/**
 * Elementwise ops with numpy broadcasting and their gradients: binary arithmetic, unary math,
 * activations, scalar ops, clamp, cast, where and comparisons. Every op is one strided-map dispatch
 * (../kernels/strided_map.ts); broadcast gradients are summed back to each operand's shape.
 * @module
 */
import { record } from "../autograd.ts";
import type { DType } from "../dtype.ts";
import type { MapKernel } from "../kernels/strided_map.ts";
import { reshapeView, type Tensor } from "../tensor.ts";
import { broadcastShapes, checkDtype, gradFn, mapOp } from "./op_util.ts";
import { sumTo } from "./reduce.ts";

const K = (name: string, expr: string, prelude?: string): MapKernel => ({ name, expr, prelude });

// ---------------------------------------------------------------- binary

const INT_OK: DType[] = ["f32", "i32", "u32"];

function binaryCheck(op: string, a: Tensor, b: Tensor, allowed: DType[]): number[] {
  checkDtype(op, [a, b], allowed);
  if (a.dtype !== b.dtype) {
    throw new Error(`collapse: ${op}: dtypes differ: ${a.describe()} and ${b.describe()}`);
  }
  return broadcastShapes(op, a.shape, b.shape);
}

/** dy summed to the shape of `t` (a view of dy when no broadcasting happened). */
function reduceTo(dy: Tensor, t: Tensor): Tensor {
  return dy.size === t.size ? reshapeView(dy, t.shape) : sumTo(dy, t.shape);
}

const ADD = K("add", "a + b");
const SUB = K("sub", "a - b");
const MUL = K("mul", "a * b");
const DIV = K("div", "a / b");
// WGSL max/min/clamp may drop a NaN operand, and `v != v` is not a reliable NaN test (it is false
// for NaN on lavapipe), so f32 kernels test the bits: like PyTorch, a NaN operand gives NaN (the
// training loop's NaN guard relies on it). Integer max/min use the builtins.
const NAN_PRELUDE = `
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }`;
const MAX_F32 = K("maximum", "select(select(max(a, b), b, is_nan(b)), a, is_nan(a))", NAN_PRELUDE);
const MIN_F32 = K("minimum", "select(select(min(a, b), b, is_nan(b)), a, is_nan(a))", NAN_PRELUDE);
const MAX_INT = K("maximum_int", "max(a, b)");
const MIN_INT = K("minimum_int", "min(a, b)");
const NEG = K("neg", "-a");

/** a + b (broadcasting; f32, i32 or u32). */
export function add(a: Tensor, b: Tensor): Tensor {
  binaryCheck("add", a, b, INT_OK);
  const out = mapOp(ADD, [a, b], a.dtype);
  return record(out, "add", [a, b], gradFn((dy) => [reduceTo(dy, a), reduceTo(dy, b)]));
}

/** a - b (broadcasting; f32, i32 or u32). */
export function sub(a: Tensor, b: Tensor): Tensor {
  binaryCheck("sub", a, b, INT_OK);
  const out = mapOp(SUB, [a, b], a.dtype);
  return record(
    out,
    "sub",
    [a, b],
    gradFn((dy) => [reduceTo(dy, a), sumTo(mapOp(NEG, [dy]), b.shape)]),
  );
}

/** a * b (broadcasting; f32, i32 or u32). */
export function mul(a: Tensor, b: Tensor): Tensor {
  binaryCheck("mul", a, b, INT_OK);
  const out = mapOp(MUL, [a, b], a.dtype);
  return record(
    out,
    "mul",
    [a, b],
    gradFn((dy) => [
      sumTo(mapOp(MUL, [dy, b]), a.shape),
      sumTo(mapOp(MUL, [dy, a]), b.shape),
    ]),
  );
}

/** a / b (broadcasting; f32). */
export function div(a: Tensor, b: Tensor): Tensor {
  binaryCheck("div", a, b, ["f32"]);
  const out = mapOp(DIV, [a, b]);
  return record(
    out,
    "div",
    [a, b],
    gradFn((dy) => [
      sumTo(mapOp(DIV, [dy, b]), a.shape),
      sumTo(mapOp(K("div_grad_b", "-a * b / (c * c)"), [dy, a, b]), b.shape),
    ]),
  );
}

/**
 * Elementwise max(a, b) (broadcasting; NaN if either is NaN); the gradient goes to a where a >= b,
 * else to b.
 */
export function maximum(a: Tensor, b: Tensor): Tensor {
  binaryCheck("maximum", a, b, INT_OK);
  const out = mapOp(a.dtype === "f32" ? MAX_F32 : MAX_INT, [a, b], a.dtype);
  return record(
    out,
    "maximum",
    [a, b],
    gradFn((dy) => [
      sumTo(mapOp(K("max_grad_a", "select(0.0, a, b >= c)"), [dy, a, b]), a.shape),
      sumTo(mapOp(K("max_grad_b", "select(0.0, a, b < c)"), [dy, a, b]), b.shape),
    ]),
  );
}

/**
 * Elementwise min(a, b) (broadcasting; NaN if either is NaN); the gradient goes to a where a <= b,
 * else to b.
 */
export function minimum(a: Tensor, b: Tensor): Tensor {
  binaryCheck("minimum", a, b, INT_OK);
  const out = mapOp(a.dtype === "f32" ? MIN_F32 : MIN_INT, [a, b], a.dtype);
  return record(
    out,
    "minimum",
    [a, b],
    gradFn((dy) => [
      sumTo(mapOp(K("min_grad_a", "select(0.0, a, b <= c)"), [dy, a, b]), a.shape),
      sumTo(mapOp(K("min_grad_b", "select(0.0, a, b > c)"), [dy, a, b]), b.shape),
    ]),
  );
}

/** 1 where a == b else 0, as f32 (broadcasting; any dtype; no gradient). */
export function equal(a: Tensor, b: Tensor): Tensor {
  binaryCheck("equal", a, b, INT_OK);
  return mapOp(K("equal", "select(0.0, 1.0, a == b)"), [a, b]);
}

/** 1 where a > b else 0, as f32 (broadcasting; any dtype; no gradient). */
export function greater(a: Tensor, b: Tensor): Tensor {
  binaryCheck("greater", a, b, INT_OK);
  return mapOp(K("greater", "select(0.0, 1.0, a > b)"), [a, b]);
}

/**
 * `cond ? a : b` elementwise with broadcasting (cond: any dtype, nonzero = true; a, b: f32).
 * Gradients flow to a where cond holds and to b elsewhere.
 */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  binaryCheck("where", a, b, ["f32"]);
  broadcastShapes("where", cond.shape, a.shape, b.shape);
  const zero = `${cond.dtype}(0)`;
  const out = mapOp(K(`where_${cond.dtype}`, `select(c, b, a != ${zero})`), [cond, a, b]);
  return record(
    out,
    "where",
    [null, a, b],
    gradFn((dy) => [
      null,
      sumTo(
        mapOp(K(`where_ga_${cond.dtype}`, `select(0.0, b, a != ${zero})`), [cond, dy]),
        a.shape,
      ),
      sumTo(
        mapOp(K(`where_gb_${cond.dtype}`, `select(b, 0.0, a != ${zero})`), [cond, dy]),
        b.shape,
      ),
    ]),
  );
}

// ---------------------------------------------------------------- unary

type UnaryGrad = (dy: Tensor, x: Tensor, y: Tensor) => Tensor;

function unary(
  op: string,
  x: Tensor,
  kernel: MapKernel,
  grad: UnaryGrad,
  scalars: number[] = [],
  allowed: DType[] = ["f32"],
): Tensor {
  checkDtype(op, [x], allowed);
  const y = mapOp(kernel, [x], x.dtype, scalars);
  return record(y, op, [x], gradFn((dy) => [grad(dy, x, y)]));
}

/** Gradient `expr(dy = a, x = b, y = c)` as one map. */
function g(name: string, expr: string, scalars: number[] = []): UnaryGrad {
  const k = K(name, expr);
  return (dy, x, y) => mapOp(k, [dy, x, y], "f32", scalars);
}

/** -x (f32, i32). */
export function neg(x: Tensor): Tensor {
  return unary("neg", x, NEG, (dy) => mapOp(NEG, [dy]), [], ["f32", "i32"]);
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  return unary("exp", x, K("exp", "exp(a)"), g("exp_grad", "a * c"));
}

/** Natural log. */
export function log(x: Tensor): Tensor {
  return unary("log", x, K("log", "log(a)"), g("log_grad", "a / b"));
}

/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x, K("sqrt", "sqrt(a)"), g("sqrt_grad", "0.5 * a / c"));
}

/** 1 / sqrt(x). */
export function rsqrt(x: Tensor): Tensor {
  return unary("rsqrt", x, K("rsqrt", "inverseSqrt(a)"), g("rsqrt_grad", "-0.5 * a * c * c * c"));
}

/** |x| (gradient sign(x), 0 at 0). */
export function abs(x: Tensor): Tensor {
  return unary("abs", x, K("abs", "abs(a)"), g("abs_grad", "a * sign(b)"));
}

/** x * x. */
export function square(x: Tensor): Tensor {
  return unary("square", x, K("square", "a * a"), g("square_grad", "2.0 * a * b"));
}

/** max(x, 0) (gradient 0 at 0; NaN stays NaN, as in PyTorch, where WGSL's max would give 0). */
export function relu(x: Tensor): Tensor {
  return unary(
    "relu",
    x,
    K("relu", "select(max(a, 0.0), a, is_nan(a))", NAN_PRELUDE),
    g("relu_grad", "select(0.0, a, b > 0.0)"),
  );
}

/** 1 / (1 + e^-x). */
export function sigmoid(x: Tensor): Tensor {
  return unary(
    "sigmoid",
    x,
    K("sigmoid", "1.0 / (1.0 + exp(-a))"),
    g("sigmoid_grad", "a * c * (1.0 - c)"),
  );
}

/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unary(
    "tanh",
    x,
    K("tanh", "tanh(clamp(a, -20.0, 20.0))"),
    g("tanh_grad", "a * (1.0 - c * c)"),
  );
}

/** x where x > 0, alpha * x elsewhere (NaN stays NaN). */
export function leakyRelu(x: Tensor, alpha = 0.01): Tensor {
  return unary(
    "leakyRelu",
    x,
    K("leaky_relu", "select(a * s0, a, a > 0.0)"),
    g("leaky_relu_grad", "select(a * s0, a, b > 0.0)", [alpha]),
    [alpha],
  );
}

/** x + s (a constant; per-step values belong in 1-element tensors with {@link add}). */
export function addScalar(x: Tensor, s: number): Tensor {
  return unary("addScalar", x, K("add_scalar", "a + s0"), (dy) => reshapeView(dy, x.shape), [s]);
}

/** x * s (a constant). */
export function mulScalar(x: Tensor, s: number): Tensor {
  const k = K("mul_scalar", "a * s0");
  return unary("mulScalar", x, k, (dy) => mapOp(k, [dy], "f32", [s]), [s]);
}

const POW_PRELUDE = `
fn pw(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (x >= 0.0 || fract(e) != 0.0) { return pow(x, e); }
  let r = pow(-x, e);
  return select(r, -r, fract(e * 0.5) != 0.0);
}`;

/** x^p for a constant p (integer p works for negative x). */
export function powScalar(x: Tensor, p: number): Tensor {
  return unary(
    "powScalar",
    x,
    K("pow_scalar", "pw(a, s0)", POW_PRELUDE),
    (dy) =>
      mapOp(K("pow_scalar_grad", "a * s0 * pw(b, s0 - 1.0)", POW_PRELUDE), [dy, x], "f32", [p]),
    [p],
  );
}

/** min(max(x, lo), hi) (NaN stays NaN); the gradient passes where lo <= x <= hi. */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new Error(`collapse: clamp: lo ${lo} > hi ${hi}`);
  return unary(
    "clamp",
    x,
    K("clamp", "select(clamp(a, s0, s1), a, is_nan(a))", NAN_PRELUDE),
    g("clamp_grad", "select(0.0, a, b >= s0 && b <= s1)", [lo, hi]),
    [lo, hi],
  );
}

/** Converts to another dtype (f32 -> int truncates toward zero); no gradient. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (!["f32", "i32", "u32"].includes(dtype)) {
    throw new Error(`collapse: cast: unknown dtype ${dtype}`);
  }
  return mapOp(K(`cast_${dtype}`, `${dtype}(a)`), [x], dtype);
}
