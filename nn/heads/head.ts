/**
 * The classification head contract: a layer from pooled features x [N, d] to logits [N, K] that
 * also exposes the feature h it multiplies and its classifier matrix (logits = h W), so that
 * feature-space losses (dot regression) and neural-collapse metrics get h and W / M.
 * @module
 */
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { Layer, type LayerOptions, type Shape } from "../layers/layer.ts";
import type { CallOptions } from "../types.ts";

/** What a head computes: logits = features @ classifier (+ bias for a learnable head). */
export interface HeadOutputs {
  /** [N, K]. */
  logits: Tensor;
  /** The feature h the classifier multiplies, [N, d]. */
  features: Tensor;
  /** The classifier matrix, [d, K] (the fixed ETF M, or a learnable W). */
  classifier: Tensor;
}

/** Base of classification heads. `call` returns the logits; {@link Head.forwardHead} all three. */
export abstract class Head extends Layer {
  /** Number of classes K. */
  readonly numClasses: number;

  /** A head over `numClasses` (>= 2) classes. */
  constructor(numClasses: number, options: LayerOptions = {}) {
    super(options);
    if (!Number.isInteger(numClasses) || numClasses < 2) {
      throw new Error(`collapse: ${new.target.name}: numClasses must be >= 2, got ${numClasses}`);
    }
    this.numClasses = numClasses;
  }

  /** Feature dimension d the head was built for (null before build). */
  abstract get inFeatures(): number | null;

  /** Logits, features h and classifier matrix for pooled features x [N, d]. */
  abstract forwardHead(x: Tensor, options: CallOptions): HeadOutputs;

  /** The classifier matrix [d, K] (after build). */
  abstract classifierMatrix(): Tensor;

  /** Checks that `shape` is pooled features [N, d] (d matching a built head) and returns d. */
  protected checkInput(shape: Shape): number {
    if (shape.length !== 2) this.fail(`expects pooled features [N, d], got ${fmtShape(shape)}`);
    const d = this.inFeatures;
    if (d !== null && shape[1] !== d) {
      this.fail(`expects [N, ${d}] features, got ${fmtShape(shape)}`);
    }
    return shape[1];
  }

  /** [N, K] for features [N, d]. */
  override computeOutputShape(inputShape: Shape): Shape {
    this.checkInput(inputShape);
    return [inputShape[0], this.numClasses];
  }

  /**
   * Eager: forwards through {@link Head.forwardHead} after validating (heads are composite, so
   * `apply` does not validate them itself).
   */
  forwardChecked(x: Tensor, options: Partial<CallOptions> = {}): HeadOutputs {
    if (!this.built) {
      this.build(x.shape);
      this.built = true;
      this.inputShape = x.shape;
    }
    this.checkInput(x.shape);
    const out = this.forwardHead(x, { training: options.training ?? false });
    this.outputShape = out.logits.shape;
    return out;
  }

  /** The logits [N, K] of {@link Head.forwardHead}. */
  override call(x: Tensor, options: CallOptions): Tensor {
    return this.forwardChecked(x, options).logits;
  }

  /** The head's configuration, with `numClasses`. */
  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), numClasses: this.numClasses };
  }
}
