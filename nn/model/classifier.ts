/**
 * Classifier models: a backbone producing pooled features [N, d] followed by an optional
 * {@link Head}. `call` returns the logits (or the features without a head); `forward` returns
 * logits, features h and the classifier matrix, which the DR loss and the NC metrics need.
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import type { Head } from "../heads/head.ts";
import type { Layer } from "../layers/layer.ts";
import type { OptionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Model, MODEL_OPTION_KEYS, type ModelOptions, type ModelOutputs } from "./model.ts";

/**
 * Base of backbone models with an optional head registered as `headName` (e.g. "fc", so ResNet-50
 * weight paths match torchvision's). Subclasses implement {@link ClassifierModel.features}.
 */
export abstract class ClassifierModel extends Model {
  /** The head (null: the model outputs the pooled features). */
  readonly head: Head | null;

  constructor(head: Head | null, options: ModelOptions = {}) {
    super(options);
    this.head = head;
  }

  /** Registers the head; subclasses call this after their own sublayers (weight order). */
  protected trackHead(name = "fc"): void {
    if (this.head) this.track(name, this.head);
  }

  /** The pooled backbone features [N, d], built from sublayer applications. */
  abstract features(x: Tensor, options: CallOptions): Tensor;

  override call(x: Tensor, options: CallOptions): Tensor {
    const f = this.features(x, options);
    return this.head ? this.head.apply(f, options) : f;
  }

  override forward(x: Tensor, options: Partial<CallOptions> = {}): ModelOutputs {
    if (!this.built) this.build(x.shape);
    const opts: CallOptions = { training: options.training ?? false };
    const f = this.features(x, opts);
    if (!this.head) return { logits: f, features: f };
    const out = this.head.forwardChecked(f, opts);
    this.outputShape = out.logits.shape;
    return out;
  }
}

/** A generic backbone (any layer/model giving [N, d]) followed by a head. */
export class Classifier extends ClassifierModel {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = MODEL_OPTION_KEYS;
  readonly backbone: Layer;

  constructor(backbone: Layer, head: Head, options: ModelOptions = {}) {
    super(head, options);
    this.backbone = this.track("backbone", backbone);
    this.trackHead("head");
  }

  override features(x: Tensor, options: CallOptions): Tensor {
    return this.backbone.apply(x, options);
  }
}
