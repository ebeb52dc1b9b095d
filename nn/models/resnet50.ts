/**
 * torchvision's ResNet-50 (v1.5: stride on the 3x3 conv of the bottleneck) for 224x224 NHWC
 * inputs: conv 7x7/2 (64) + BN + ReLU + max-pool 3x3/2, bottleneck stages [3, 4, 6, 3] with planes
 * 64/128/256/512 (expansion 4), global average pooling, optional head. `layer4Planes: 1024` widens
 * the last stage as the paper does for ImageNet-LT (feature dimension 4096 instead of 2048).
 *
 * Weight paths are torchvision's state-dict names (conv1.weight, bn1.running_mean,
 * layer1.0.conv2.weight, layer1.0.downsample.0.weight, layer1.0.downsample.1.bias, fc.weight, ...),
 * so a converted torchvision checkpoint loads by name with ./torch_layout.ts (which transposes
 * conv kernels OIHW -> HWIO and linear weights [out, in] -> [in, out]). Convs are initialised as
 * torchvision does (kaiming normal, mode fan_out), BN gamma 1 / beta 0.
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import type { ETFClassifierOptions } from "../heads/etf_classifier.ts";
import { kaimingNormal } from "../init.ts";
import { ReLU } from "../layers/activation.ts";
import { Add } from "../layers/add.ts";
import { BatchNormalization } from "../layers/batch_normalization.ts";
import { Conv2D } from "../layers/conv2d.ts";
import { Layer, LAYER_OPTION_KEYS, type LayerOptions } from "../layers/layer.ts";
import { GlobalAveragePooling2D, MaxPooling2D } from "../layers/pooling.ts";
import { ClassifierModel } from "../model/classifier.ts";
import type { ModelOptions } from "../model/model.ts";
import { Sequential } from "../model/sequential.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { type HeadSpec, makeHead } from "./heads_option.ts";

function conv(out: number, k: number, stride = 1): Conv2D {
  return new Conv2D(out, k, {
    strides: stride,
    padding: (k - 1) / 2,
    useBias: false,
    kernelInitializer: kaimingNormal({ mode: "fan_out" }),
  });
}

/** The bottleneck block: 1x1 -> 3x3 (stride) -> 1x1 (x4), BN after each, projection shortcut. */
export class Bottleneck extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  static readonly expansion = 4;
  readonly conv1: Conv2D;
  readonly bn1: BatchNormalization;
  readonly conv2: Conv2D;
  readonly bn2: BatchNormalization;
  readonly conv3: Conv2D;
  readonly bn3: BatchNormalization;
  readonly downsample: Sequential | null;
  readonly #relu: ReLU;
  readonly #add: Add;

  constructor(inPlanes: number, planes: number, stride = 1, options: LayerOptions = {}) {
    super(options);
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.track("conv1", conv(planes, 1));
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.conv2 = this.track("conv2", conv(planes, 3, stride));
    this.bn2 = this.track("bn2", new BatchNormalization());
    this.conv3 = this.track("conv3", conv(out, 1));
    this.bn3 = this.track("bn3", new BatchNormalization());
    this.#relu = this.track("relu", new ReLU());
    this.downsample = stride !== 1 || inPlanes !== out
      ? this.track(
        "downsample",
        new Sequential([conv(out, 1, stride), new BatchNormalization()], { childNames: "index" }),
      )
      : null;
    this.#add = this.track("add", new Add());
  }

  override call(x: Tensor, o: CallOptions): Tensor {
    let y = this.#relu.apply(this.bn1.apply(this.conv1.apply(x, o), o), o);
    y = this.#relu.apply(this.bn2.apply(this.conv2.apply(y, o), o), o);
    y = this.bn3.apply(this.conv3.apply(y, o), o);
    const s = this.downsample ? this.downsample.apply(x, o) : x;
    return this.#relu.apply(this.#add.apply([y, s], o), o);
  }
}

/** Options of {@link ResNet50}. */
export interface ResNet50Options extends ModelOptions {
  /** Planes of layer4 (default 512 -> d = 2048; the paper's ImageNet-LT uses 1024 -> d = 4096). */
  layer4Planes?: number;
  /** Blocks per stage (default [3, 4, 6, 3]). */
  layers?: readonly [number, number, number, number];
  /** Number of classes, for a named head. */
  numClasses?: number;
  /** The head: "dense" (torchvision's fc, default with numClasses), "etf", a Head, or null. */
  head?: HeadSpec;
  /** Options of a named "etf" head (the paper sets `normalize: false` on ImageNet-LT). */
  etf?: ETFClassifierOptions;
}

/** torchvision-layout ResNet-50 (NHWC). */
export class ResNet50 extends ClassifierModel {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<ResNet50Options>({
    name: true,
    trainable: true,
    seed: true,
    layer4Planes: true,
    layers: true,
    numClasses: true,
    head: true,
    etf: true,
  });
  readonly planes: [number, number, number, number];
  readonly conv1: Conv2D;
  readonly bn1: BatchNormalization;
  readonly stages: Sequential[];
  readonly #relu: ReLU;
  readonly #maxpool: MaxPooling2D;
  readonly #pool: GlobalAveragePooling2D;

  constructor(options: ResNet50Options = {}) {
    super(makeHead(options.head, options.numClasses, options.etf), {
      name: "resnet50",
      ...options,
    });
    const counts = options.layers ?? [3, 4, 6, 3];
    this.planes = [64, 128, 256, options.layer4Planes ?? 512];
    this.conv1 = this.track("conv1", conv(64, 7, 2));
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.#relu = this.track("relu", new ReLU());
    this.#maxpool = this.track("maxpool", new MaxPooling2D(3, { strides: 2, padding: 1 }));
    let inPlanes = 64;
    this.stages = this.planes.map((planes, s) => {
      const blocks: Layer[] = [];
      for (let b = 0; b < counts[s]; b++) {
        blocks.push(new Bottleneck(inPlanes, planes, b === 0 && s > 0 ? 2 : 1));
        inPlanes = planes * Bottleneck.expansion;
      }
      return this.track(`layer${s + 1}`, new Sequential(blocks, { childNames: "index" }));
    });
    this.#pool = this.track("avgpool", new GlobalAveragePooling2D());
    this.trackHead("fc");
  }

  /** Dimension of the pooled feature (4 x layer4 planes). */
  get featureDim(): number {
    return this.planes[3] * Bottleneck.expansion;
  }

  override features(x: Tensor, o: CallOptions): Tensor {
    let y = this.#relu.apply(this.bn1.apply(this.conv1.apply(x, o), o), o);
    y = this.#maxpool.apply(y, o);
    for (const s of this.stages) y = s.apply(y, o);
    return this.#pool.apply(y, o);
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      planes: this.planes,
      head: this.head ? { className: this.head.className, config: this.head.getConfig() } : null,
    };
  }
}

/** ResNet-50: `resnet50({numClasses: 1000})` (25.6M params), `resnet50({layer4Planes: 1024, head: "etf", numClasses: 1000})`. */
export function resnet50(options: ResNet50Options = {}): ResNet50 {
  return new ResNet50(options);
}
