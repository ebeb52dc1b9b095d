/**
 * Weight initializers: host-side functions that fill a Float32Array for a shape from the seeded
 * {@link Rng}, with PyTorch/Keras fan conventions, and the "current init RNG" that layers draw from
 * when they build (so that a model built under one seed always gets the same weights).
 *
 * Fans follow Keras' `compute_fans` for our layouts: conv kernels HWIO [KH, KW, Cin, Cout] and dense
 * kernels [in, out] give fanIn = Cin*KH*KW (= in) and fanOut = Cout*KH*KW (= out), which are the
 * same numbers PyTorch computes for its OIHW / [out, in] layouts.
 * @module
 */
import { Rng } from "../gpu/rng.ts";
import { fmtShape, sizeOf } from "../gpu/tensor.ts";
import { checkChoice, checkOptions, type OptionKeys, optionKeys } from "./options.ts";

/** Fills a host array for a weight shape, drawing from `rng`. */
export type Initializer = (shape: readonly number[], rng: Rng) => Float32Array;

/** The fans of a weight shape: rank 1 -> (n, n); rank 2 -> (in, out); rank > 2 -> receptive field x channels. */
export function computeFans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  const receptive = sizeOf(shape.slice(0, -2));
  return {
    fanIn: shape[shape.length - 2] * receptive,
    fanOut: shape[shape.length - 1] * receptive,
  };
}

/** Every element `value`. */
export function constant(value: number): Initializer {
  return (shape) => new Float32Array(sizeOf(shape)).fill(value);
}

/** Zeros. */
export function zeros(): Initializer {
  return constant(0);
}

/** Ones. */
export function ones(): Initializer {
  return constant(1);
}

/** Normal(mean, std). */
export function normal(mean = 0, std = 1): Initializer {
  return (shape, rng) => {
    const a = new Float32Array(sizeOf(shape));
    for (let i = 0; i < a.length; i++) a[i] = mean + std * rng.normal();
    return a;
  };
}

/** Uniform [lo, hi). */
export function uniform(lo: number, hi: number): Initializer {
  return (shape, rng) => {
    const a = new Float32Array(sizeOf(shape));
    for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.next();
    return a;
  };
}

/** Options of {@link kaimingNormal} / {@link kaimingUniform}, as PyTorch's `kaiming_normal_`. */
export interface KaimingOptions {
  /** Negative slope of the rectifier after the layer (0 for ReLU). Default 0. */
  a?: number;
  /** Which fan keeps the variance: "fan_in" (forward, PyTorch's default) or "fan_out". */
  mode?: "fan_in" | "fan_out";
  /** Overrides the fan computed from the shape. */
  fan?: number;
}

const KAIMING_KEYS: OptionKeys = optionKeys<KaimingOptions>({ a: true, mode: true, fan: true });

function checkKaiming(where: string, o: KaimingOptions): KaimingOptions {
  checkOptions(where, o, KAIMING_KEYS);
  if (o?.mode !== undefined) checkChoice(where, "mode", o.mode, ["fan_in", "fan_out"] as const);
  return o ?? {};
}

function kaimingStd(shape: readonly number[], o: KaimingOptions): number {
  const fans = computeFans(shape);
  const fan = o.fan ?? (o.mode === "fan_out" ? fans.fanOut : fans.fanIn);
  const a = o.a ?? 0;
  const gain = Math.sqrt(2 / (1 + a * a));
  return gain / Math.sqrt(fan);
}

/**
 * He/Kaiming normal: N(0, gain^2 / fan) with gain = sqrt(2 / (1 + a^2)); with the defaults this is
 * PyTorch's `init.kaiming_normal_(w)` (mode fan_in, a = 0: std = sqrt(2 / fan_in)), which the official
 * ImbalancedLearning ResNet-32 applies to every conv and linear weight.
 */
export function kaimingNormal(options: KaimingOptions = {}): Initializer {
  options = checkKaiming("kaimingNormal()", options);
  return (shape, rng) => normal(0, kaimingStd(shape, options))(shape, rng);
}

/** He/Kaiming uniform: U(-b, b) with b = gain * sqrt(3 / fan). */
export function kaimingUniform(options: KaimingOptions = {}): Initializer {
  options = checkKaiming("kaimingUniform()", options);
  return (shape, rng) => {
    const b = kaimingStd(shape, options) * Math.sqrt(3);
    return uniform(-b, b)(shape, rng);
  };
}

/** Glorot/Xavier uniform: U(-b, b) with b = sqrt(6 / (fanIn + fanOut)) (Keras' default kernel init). */
export function glorotUniform(): Initializer {
  return (shape, rng) => {
    const { fanIn, fanOut } = computeFans(shape);
    const b = Math.sqrt(6 / (fanIn + fanOut));
    return uniform(-b, b)(shape, rng);
  };
}

/** PyTorch's default Linear/Conv bias init: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) of the layer's kernel. */
export function torchBias(fanIn: number): Initializer {
  const b = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(-b, b);
}

/** Initializer names accepted where an {@link Initializer} is expected. */
export type InitializerName =
  | "zeros"
  | "ones"
  | "kaiming_normal"
  | "he_normal"
  | "kaiming_uniform"
  | "he_uniform"
  | "glorot_uniform"
  | "xavier_uniform";

/** An initializer or its name. */
export type InitializerLike = Initializer | InitializerName;

/** Resolves an initializer name (Keras or PyTorch spelling) to its function. */
export function getInitializer(init: InitializerLike): Initializer {
  if (typeof init === "function") return init;
  switch (init) {
    case "zeros":
      return zeros();
    case "ones":
      return ones();
    case "kaiming_normal":
    case "he_normal":
      return kaimingNormal();
    case "kaiming_uniform":
    case "he_uniform":
      return kaimingUniform();
    case "glorot_uniform":
    case "xavier_uniform":
      return glorotUniform();
    default:
      throw new Error(`collapse: unknown initializer '${init as string}'`);
  }
}

/** Runs an initializer and checks that it produced `sizeOf(shape)` values. */
export function initialize(
  init: InitializerLike,
  shape: readonly number[],
  rng: Rng,
): Float32Array {
  const a = getInitializer(init)(shape, rng);
  if (a.length !== sizeOf(shape)) {
    throw new Error(
      `collapse: initializer returned ${a.length} values for shape ${fmtShape(shape)}`,
    );
  }
  return a;
}

const rngStack: Rng[] = [];
let defaultRng = new Rng(0);

/** The RNG layers draw initial weights from now (innermost {@link withInitRng}, else the global one). */
export function currentInitRng(): Rng {
  return rngStack.length ? rngStack[rngStack.length - 1] : defaultRng;
}

/** Reseeds the global init RNG (like `torch.manual_seed` for weight init). */
export function setInitSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

/** Runs `fn` with `rng` as the init RNG (models built under a seed use this). */
export function withInitRng<T>(rng: Rng, fn: () => T): T {
  rngStack.push(rng);
  try {
    return fn();
  } finally {
    rngStack.pop();
  }
}
