/**
 * DenseClassifier: the learnable baseline head, logits = x W + b with W [d, K] ("weight") and
 * b [K] ("bias"), kaiming-normal W as the official code's `_weights_init`, trained with
 * cross-entropy. `forwardHead` exposes h = x and W for neural-collapse metrics.
 * @module
 */
import { add } from "../../gpu/ops/elementwise.ts";
import { matmul } from "../../gpu/ops/matmul.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { type InitializerLike, kaimingNormal, torchBias } from "../init.ts";
import type { LayerOptions, Shape } from "../layers/layer.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight } from "../types.ts";
import { Head, type HeadOutputs } from "./head.ts";

/** Options of {@link DenseClassifier}. */
export interface DenseClassifierOptions extends LayerOptions {
  /** Add a bias (default true). */
  useBias?: boolean;
  /** Kernel initializer (default kaiming normal fan-in). */
  kernelInitializer?: InitializerLike;
}

/** A learnable linear classifier head. */
export class DenseClassifier extends Head {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<DenseClassifierOptions>({
    name: true,
    trainable: true,
    useBias: true,
    kernelInitializer: true,
  });
  readonly useBias: boolean;
  readonly #init: InitializerLike;
  kernel: Weight | null = null;
  bias: Weight | null = null;

  constructor(numClasses: number, options: DenseClassifierOptions = {}) {
    super(numClasses, options);
    this.useBias = options.useBias ?? true;
    this.#init = options.kernelInitializer ?? kaimingNormal();
  }

  get inFeatures(): number | null {
    return this.kernel ? this.kernel.value.shape[0] : null;
  }

  override build(inputShape: Shape): void {
    const d = this.checkInput(inputShape);
    this.kernel = this.addWeight("weight", [d, this.numClasses], this.#init, {
      layout: "dense_in_out",
    });
    if (this.useBias) this.bias = this.addWeight("bias", [this.numClasses], torchBias(d));
  }

  override forwardHead(x: Tensor, _options: CallOptions): HeadOutputs {
    const w = this.kernel!.value;
    let logits = matmul(x, w);
    if (this.bias) logits = add(logits, this.bias.value);
    return { logits, features: x, classifier: w };
  }

  override classifierMatrix(): Tensor {
    if (!this.kernel) this.fail("not built");
    return this.kernel.value;
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), useBias: this.useBias };
  }
}
