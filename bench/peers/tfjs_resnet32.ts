/**
 * TensorFlow.js peer benchmark: ResNet-32 (CIFAR variant) training and
 * inference throughput on tfjs's WebGPU backend, run under Deno on the same
 * `navigator.gpu` adapter collapse uses (DESIGN.md section 5 target: collapse
 * training images/s >= 3x this figure).
 *
 * The network is written with the tfjs-core ops API (tfjs-layers is imported
 * only to register gradients; see below):
 * conv3x3(3->16)+BN+ReLU, 3 stages x 5 basic blocks (16/32/64 wide, stride 2 at
 * the first block of stages 2 and 3, option-A shortcut = stride-2 subsample +
 * zero-padded channels), global average pool, Dense(64->10). 464,154
 * trainable parameters. NHWC input, softmax cross-entropy, SGD momentum 0.9.
 * Batch norm uses batch statistics in training (and updates running stats, as
 * Keras does) and running statistics in inference.
 *
 * No cpu backend is imported (tfjs-backend-webgpu's node bundle does not
 * pull one in), so tfjs has nothing to fall back to; {@link measureTfjsResnet32} still checks `tf.getBackend()` and throws if
 * it is not "webgpu". No DOM shims are needed under Deno 2.x.
 *
 * @module
 */

// Full npm: specifiers by project rule; deno.json has no import-map entries for tfjs.
// deno-lint-ignore no-import-prefix
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
// tfjs-core's node bundle (what Deno loads) registers no gradients, and its ESM
// dist/register_all_gradients.js has extensionless imports Deno cannot load. The
// tfjs-layers node bundle registers all 101 gradient configs into tfjs's global
// registry on import, so it is imported for that side effect only.
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-layers@4.22.0";
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
import { cpuUsage } from "node:process";

/** Options for {@link measureTfjsResnet32}. */
export interface TfjsBenchOptions {
  /** Images per step (default 128). */
  batch?: number;
  /** Timed steps per mode, after one untimed warm-up step (default 1). */
  steps?: number;
  /** Which measurements to take (default "both"). */
  mode?: "train" | "infer" | "both";
  /** Timed inference steps; defaults to `max(steps, 2)`. */
  inferSteps?: number;
  /** Progress sink, called with one line per event (default: none). */
  log?: (line: string) => void;
}

/** Result of {@link measureTfjsResnet32}. Rates are NaN for a mode not run. */
export interface TfjsBenchResult {
  /** Training images/s (forward + backward + SGD-momentum update). */
  trainImagesPerSec: number;
  /** Inference images/s (forward only, running BN statistics). */
  inferImagesPerSec: number;
  /** Adapter description, e.g. "llvmpipe (LLVM 19.1.7, 256 bits) (vendor mesa)". */
  adapter: string;
  /** The tfjs backend actually used; always "webgpu" (otherwise it throws). */
  backend: string;
  /** Per-step wall times in ms, warm-up included (index 0). */
  stepMs: { train: number[]; infer: number[] };
  /**
   * Per-step process CPU time (user + sys, all threads incl. lavapipe's) in ms,
   * same layout as `stepMs`. With a software adapter, CPU ms / wall ms far below
   * the core count means the run was starved by other load.
   */
  stepCpuMs: { train: number[]; infer: number[] };
  /** 1-minute load average when the measurement started. */
  loadAvg1: number;
  /** Batch size used. */
  batch: number;
  /** Trainable parameter count (464,154 for ResNet-32/CIFAR-10). */
  params: number;
}

interface BnParams {
  gamma: tf.Variable<tf.Rank.R1>;
  beta: tf.Variable<tf.Rank.R1>;
  runMean: tf.Tensor1D;
  runVar: tf.Tensor1D;
}

interface ConvBn {
  w: tf.Variable;
  bn: BnParams;
}

interface Block {
  a: ConvBn;
  b: ConvBn;
  stride: number;
  cin: number;
  cout: number;
}

/** ResNet-32 parameters and the forward pass, built from tfjs ops. */
class ResNet32 {
  readonly stem: ConvBn;
  readonly blocks: Block[] = [];
  readonly fcW: tf.Variable;
  readonly fcB: tf.Variable;
  /** BN moments of the last training forward pass, in layer order (kept tensors). */
  private moments: { mean: tf.Tensor; variance: tf.Tensor; bn: BnParams }[] = [];

  constructor(numClasses = 10, blocksPerStage = 5) {
    this.stem = this.convBn(3, 16);
    let cin = 16;
    for (const [stage, cout] of [16, 32, 64].entries()) {
      for (let i = 0; i < blocksPerStage; i++) {
        const stride = stage > 0 && i === 0 ? 2 : 1;
        this.blocks.push({
          a: this.convBn(cin, cout),
          b: this.convBn(cout, cout),
          stride,
          cin,
          cout,
        });
        cin = cout;
      }
    }
    const lim = Math.sqrt(1 / 64);
    this.fcW = tf.variable(tf.randomUniform([64, numClasses], -lim, lim));
    this.fcB = tf.variable(tf.zeros([numClasses]));
  }

  private convBn(cin: number, cout: number): ConvBn {
    const std = Math.sqrt(2 / (9 * cin)); // He normal, fan-in
    return {
      w: tf.variable(tf.randomNormal([3, 3, cin, cout], 0, std)),
      bn: {
        gamma: tf.variable(tf.ones([cout]) as tf.Tensor1D),
        beta: tf.variable(tf.zeros([cout]) as tf.Tensor1D),
        runMean: tf.zeros([cout]),
        runVar: tf.ones([cout]),
      },
    };
  }

  /** All trainable variables. */
  variables(): tf.Variable[] {
    const out: tf.Variable[] = [];
    const add = (c: ConvBn) => out.push(c.w, c.bn.gamma, c.bn.beta);
    add(this.stem);
    for (const b of this.blocks) add(b.a), add(b.b);
    out.push(this.fcW, this.fcB);
    return out;
  }

  /** Trainable parameter count. */
  paramCount(): number {
    return this.variables().reduce((s, v) => s + v.size, 0);
  }

  private bn(x: tf.Tensor4D, p: BnParams, training: boolean): tf.Tensor4D {
    if (!training) return tf.batchNorm4d(x, p.runMean, p.runVar, p.beta, p.gamma, 1e-5);
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    this.moments.push({ mean: tf.keep(mean), variance: tf.keep(variance), bn: p });
    return tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, p.beta, p.gamma, 1e-5);
  }

  private convBnFwd(x: tf.Tensor4D, c: ConvBn, stride: number, training: boolean): tf.Tensor4D {
    const y = tf.conv2d(x, c.w as tf.Tensor4D, stride, "same");
    return this.bn(y, c.bn, training);
  }

  /** Option-A shortcut: x[:, ::2, ::2, :] then zero-pad channels cin -> cout. */
  private shortcut(x: tf.Tensor4D, blk: Block): tf.Tensor4D {
    if (blk.stride === 1 && blk.cin === blk.cout) return x;
    const [n, h, w, c] = x.shape;
    // StridedSlice has no tfjs gradient, so subsample via reshape + slice. Kept at rank 4:
    // tfjs-backend-webgpu 4.22's rank-5 pad (the gradient of a rank-5 slice) writes nothing.
    const r = tf.reshape(x, [n * (h / 2), 2, w / 2, 2 * c]);
    const s = tf.reshape(tf.slice(r, [0, 0, 0, 0], [n * (h / 2), 1, w / 2, c]), [
      n,
      h / 2,
      w / 2,
      c,
    ]);
    const p = (blk.cout - blk.cin) / 2;
    return tf.pad(s, [[0, 0], [0, 0], [0, 0], [p, blk.cout - blk.cin - p]]) as tf.Tensor4D;
  }

  /** Forward pass: NHWC images -> logits [n, classes]. */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    let h = tf.relu(this.convBnFwd(x, this.stem, 1, training));
    for (const blk of this.blocks) {
      const a = tf.relu(this.convBnFwd(h, blk.a, blk.stride, training));
      const b = this.convBnFwd(a, blk.b, 1, training);
      h = tf.relu(tf.add(b, this.shortcut(h, blk)));
    }
    const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
    return tf.add(tf.matMul(pooled, this.fcW as tf.Tensor2D), this.fcB);
  }

  /** Frees the running BN statistics (non-variable tensors). */
  disposeRunningStats(): void {
    const all = [this.stem, ...this.blocks.flatMap((b) => [b.a, b.b])];
    for (const c of all) tf.dispose([c.bn.runMean, c.bn.runVar]);
  }

  /** Fold the last training pass's batch moments into the running BN stats (momentum 0.9). */
  updateRunningStats(momentum = 0.9): void {
    for (const { mean, variance, bn } of this.moments) {
      const m = tf.tidy(() => tf.add(tf.mul(bn.runMean, momentum), tf.mul(mean, 1 - momentum)));
      const v = tf.tidy(() => tf.add(tf.mul(bn.runVar, momentum), tf.mul(variance, 1 - momentum)));
      bn.runMean.dispose();
      bn.runVar.dispose();
      bn.runMean = m as tf.Tensor1D;
      bn.runVar = v as tf.Tensor1D;
      mean.dispose();
      variance.dispose();
    }
    this.moments = [];
  }
}

/** Returns a one-line description of the default WebGPU adapter. */
export async function describeAdapter(): Promise<string> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new Error("navigator.gpu is missing: WebGPU not available in this Deno");
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error("navigator.gpu.requestAdapter() returned null");
  const i = adapter.info;
  const parts = [i.description || i.device || "(no description)"];
  if (i.vendor) parts.push(`(vendor ${i.vendor})`);
  if (i.architecture) parts.push(`(arch ${i.architecture})`);
  return parts.join(" ");
}

/**
 * Selects tfjs's WebGPU backend and throws unless it is really in use.
 *
 * @returns the backend name ("webgpu")
 */
export async function initTfjsWebgpu(): Promise<string> {
  const ok = await tf.setBackend("webgpu");
  await tf.ready();
  const backend = tf.getBackend();
  if (!ok || backend !== "webgpu") {
    throw new Error(
      `tfjs did not initialise the webgpu backend (setBackend=${ok}, got "${backend}")`,
    );
  }
  return backend;
}

/**
 * Measures ResNet-32 (CIFAR) training and inference throughput with
 * TensorFlow.js 4.22's WebGPU backend on the default `navigator.gpu` adapter.
 *
 * Each mode runs one untimed warm-up step (shader compilation), then `steps`
 * timed steps; every step ends with `await data()` on its output so GPU work
 * is complete before the clock stops. Inputs are random N(0,1) images with
 * random labels, created once.
 *
 * @param opts batch (default 128), steps (default 1), mode (default "both")
 * @returns images/s per mode, adapter description, backend, per-step ms
 * @throws if WebGPU is unavailable or tfjs does not run on "webgpu"
 */
export async function measureTfjsResnet32(opts: TfjsBenchOptions = {}): Promise<TfjsBenchResult> {
  const batch = opts.batch ?? 128;
  const steps = opts.steps ?? 1;
  const mode = opts.mode ?? "both";
  const inferSteps = opts.inferSteps ?? Math.max(steps, 2);
  const log = opts.log ?? (() => {});
  if (!(batch > 0 && steps > 0 && inferSteps > 0)) throw new Error("batch and steps must be > 0");

  const adapter = await describeAdapter();
  const backend = await initTfjsWebgpu();
  const loadAvg1 = Deno.loadavg()[0];
  log(`tfjs ${tf.version_core} backend=${backend} adapter=${adapter} loadavg=${loadAvg1}`);

  const model = new ResNet32();
  const params = model.paramCount();
  const x = tf.randomNormal([batch, 32, 32, 3]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([batch], 0, 10, "int32") as tf.Tensor1D, 10);
  const opt = tf.train.momentum(0.1, 0.9);
  const vars = model.variables();
  log(`ResNet-32: ${params} params, batch ${batch}`);

  const stepMs = { train: [] as number[], infer: [] as number[] };
  const stepCpuMs = { train: [] as number[], infer: [] as number[] };
  const cpuNow = () => {
    const u = cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let trainImagesPerSec = NaN;
  let inferImagesPerSec = NaN;

  if (mode === "train" || mode === "both") {
    for (let s = 0; s <= steps; s++) {
      const t0 = performance.now(), c0 = cpuNow();
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, true)) as tf.Scalar,
        vars,
      );
      opt.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
      model.updateRunningStats();
      const loss = (await value.data())[0];
      const ms = performance.now() - t0, cpu = cpuNow() - c0;
      tf.dispose([value, ...Object.values(grads)]);
      stepMs.train.push(ms);
      stepCpuMs.train.push(cpu);
      log(
        `train ${s === 0 ? "warm-up" : `step ${s}/${steps}`}: ${ms.toFixed(0)} ms, ` +
          `cpu ${cpu.toFixed(0)} ms, loss ${loss.toFixed(4)}, ${
            (batch / ms * 1000).toFixed(2)
          } img/s`,
      );
    }
    const timed = stepMs.train.slice(1);
    trainImagesPerSec = batch * timed.length / (timed.reduce((a, b) => a + b, 0) / 1000);
  }

  if (mode === "infer" || mode === "both") {
    for (let s = 0; s <= inferSteps; s++) {
      const t0 = performance.now(), c0 = cpuNow();
      const logits = tf.tidy(() => model.forward(x, false));
      await logits.data();
      const ms = performance.now() - t0, cpu = cpuNow() - c0;
      logits.dispose();
      stepMs.infer.push(ms);
      stepCpuMs.infer.push(cpu);
      log(
        `infer ${s === 0 ? "warm-up" : `step ${s}/${inferSteps}`}: ${ms.toFixed(0)} ms, ` +
          `cpu ${cpu.toFixed(0)} ms, ${(batch / ms * 1000).toFixed(2)} img/s`,
      );
    }
    const timed = stepMs.infer.slice(1);
    inferImagesPerSec = batch * timed.length / (timed.reduce((a, b) => a + b, 0) / 1000);
  }

  if (tf.getBackend() !== "webgpu") throw new Error(`tfjs backend changed to ${tf.getBackend()}`);
  tf.dispose([x, labels, ...vars]);
  model.disposeRunningStats();
  opt.dispose();
  return {
    trainImagesPerSec,
    inferImagesPerSec,
    adapter,
    backend,
    stepMs,
    stepCpuMs,
    loadAvg1,
    batch,
    params,
  };
}
