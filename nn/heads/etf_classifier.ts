/**
 * ETFClassifier: the paper's fixed head. Pooled feature x [N, d] -> BatchNorm1d(d) (trainable,
 * momentum 0.1, eps 1e-5) -> h = z / max(||z||, 1e-8) (unless `normalize: false`, as for
 * ImageNet-LT) -> logits = h M with M the simplex ETF [d, K] (see ./etf.ts): a non-trainable,
 * non-decayed weight named "etf", saved with checkpoints. `forwardHead` returns h and M for the DR loss.
 * @module
 */
import { matmul } from "../../gpu/ops/matmul.ts";
import { l2Normalize } from "../../gpu/ops/normalize.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { currentInitRng } from "../init.ts";
import { BatchNormalization } from "../layers/batch_normalization.ts";
import { type LayerOptions, type Shape, SymbolicTensor } from "../layers/layer.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight } from "../types.ts";
import { simplexEtf } from "./etf.ts";
import { Head, type HeadOutputs } from "./head.ts";

/** Options of {@link ETFClassifier}. */
export interface ETFClassifierOptions extends LayerOptions {
  /** ETF seed (default: drawn from the init RNG when built, so a seeded model is reproducible). */
  seed?: number;
  /** L2-normalise the BN output (default true; the paper skips it on ImageNet-LT). */
  normalize?: boolean;
  /** BN momentum, PyTorch convention (default 0.1). */
  bnMomentum?: number;
  /** BN epsilon (default 1e-5). */
  bnEpsilon?: number;
  /** Norm floor of the normalisation (default 1e-8). */
  epsilon?: number;
}

/** The fixed simplex-ETF classifier head with its BatchNorm1d and feature normalisation. */
export class ETFClassifier extends Head {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<ETFClassifierOptions>({
    name: true,
    trainable: true,
    seed: true,
    normalize: true,
    bnMomentum: true,
    bnEpsilon: true,
    epsilon: true,
  });
  readonly normalize: boolean;
  readonly epsilon: number;
  readonly bn: BatchNormalization;
  /** The seed M was made from (set when built). */
  etfSeed: number | null;
  /** The fixed M [d, K] (set when built). */
  etf: Weight | null = null;

  constructor(numClasses: number, options: ETFClassifierOptions = {}) {
    super(numClasses, options);
    this.normalize = options.normalize ?? true;
    this.epsilon = options.epsilon ?? 1e-8;
    this.etfSeed = options.seed ?? null;
    this.bn = this.track(
      "bn",
      new BatchNormalization({
        momentum: options.bnMomentum ?? 0.1,
        epsilon: options.bnEpsilon ?? 1e-5,
      }),
    );
  }

  get inFeatures(): number | null {
    return this.etf ? this.etf.value.shape[0] : null;
  }

  override build(inputShape: Shape): void {
    const d = this.checkInput(inputShape);
    if (d < this.numClasses) {
      this.fail(
        `feature dimension d=${d} must be >= the number of classes K=${this.numClasses} ` +
          `for the simplex ETF`,
      );
    }
    this.bn.apply(new SymbolicTensor(inputShape));
    if (this.etfSeed === null) this.etfSeed = currentInitRng().nextU32();
    this.etf = this.addWeight("etf", [d, this.numClasses], "zeros", {
      trainable: false,
      decay: false,
      values: simplexEtf(d, this.numClasses, this.etfSeed),
    });
  }

  override forwardHead(x: Tensor, options: CallOptions): HeadOutputs {
    const z = this.bn.apply(x, options);
    const h = this.normalize ? l2Normalize(z, { axis: -1, eps: this.epsilon }) : z;
    const m = this.etf!.value;
    return { logits: matmul(h, m), features: h, classifier: m };
  }

  override classifierMatrix(): Tensor {
    if (!this.etf) this.fail("not built");
    return this.etf.value;
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      seed: this.etfSeed,
      normalize: this.normalize,
      epsilon: this.epsilon,
      bnMomentum: this.bn.momentum,
      bnEpsilon: this.bn.epsilon,
    };
  }
}
