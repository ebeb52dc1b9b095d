/**
 * The CIFAR ResNet-32 of He et al. (2016) as in the official ImbalancedLearning code: conv3x3
 * (3 -> 16w) + BN + ReLU, three stages of 5 BasicBlocks with widths 16w/32w/64w (stride 2 at the
 * start of stages 2 and 3, option-A parameter-free shortcuts), global average pooling to the
 * feature of dimension d = 64w, then an optional head. Every conv (and the dense head) is
 * kaiming-normal fan-in initialised. Weight paths: conv1.weight, bn1.*, layer1.0.conv1.weight, ...,
 * fc.* (the head). Other depths 6n+2 (ResNet-20, -56, -110) via `blocksPerStage`.
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
import { GlobalAveragePooling2D } from "../layers/pooling.ts";
import { ShortcutA } from "../layers/shortcut.ts";
import { ClassifierModel } from "../model/classifier.ts";
import type { ModelOptions } from "../model/model.ts";
import { Sequential } from "../model/sequential.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { fusedBlock, fusedStem } from "./fused_resnet.ts";
import { type HeadSpec, makeHead } from "./heads_option.ts";

function conv3x3(out: number, stride: number): Conv2D {
  return new Conv2D(out, 3, {
    strides: stride,
    padding: 1,
    useBias: false,
    kernelInitializer: kaimingNormal(),
  });
}

/** The CIFAR basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
export class BasicBlock extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  /** The first 3x3 convolution (carries the block's stride). */
  readonly conv1: Conv2D;
  /** BatchNorm after conv1. */
  readonly bn1: BatchNormalization;
  /** The second 3x3 convolution. */
  readonly conv2: Conv2D;
  /** BatchNorm after conv2. */
  readonly bn2: BatchNormalization;
  /** The parameter-free option-A shortcut where the shape changes (null: identity). */
  readonly shortcut: ShortcutA | null;
  readonly #add: Add;
  readonly #relu: ReLU;

  /** A block from `inPlanes` to `planes` channels with stride `stride`. */
  constructor(inPlanes: number, planes: number, stride = 1, options: LayerOptions = {}) {
    super(options);
    this.conv1 = this.track("conv1", conv3x3(planes, stride));
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.conv2 = this.track("conv2", conv3x3(planes, 1));
    this.bn2 = this.track("bn2", new BatchNormalization());
    this.shortcut = stride !== 1 || inPlanes !== planes
      ? this.track("shortcut", new ShortcutA(planes, { stride }))
      : null;
    this.#add = this.track("add", new Add());
    this.#relu = this.track("relu", new ReLU());
  }

  /** relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
  override call(x: Tensor, o: CallOptions): Tensor {
    const sc = this.shortcut;
    const fused = fusedBlock(
      x,
      [this.conv1, this.bn1, this.conv2, this.bn2],
      sc
        ? { kind: "optionA", stride: sc.stride, pad: Math.floor((sc.outChannels - x.shape[3]) / 2) }
        : { kind: "identity" },
      o.training,
    );
    if (fused) return fused;
    let y = this.#relu.apply(this.bn1.apply(this.conv1.apply(x, o), o), o);
    y = this.bn2.apply(this.conv2.apply(y, o), o);
    const s = this.shortcut ? this.shortcut.apply(x, o) : x;
    return this.#relu.apply(this.#add.apply([y, s], o), o);
  }
}

/** Options of {@link ResNet32}. */
export interface ResNet32Options extends ModelOptions {
  /** Width multiplier of 16/32/64 (1 for CIFAR-10, 2 for CIFAR-100: d = 128). Default 1. */
  widthMultiplier?: number;
  /** Blocks per stage (5 = ResNet-32; depth = 6n + 2). */
  blocksPerStage?: number;
  /** Number of classes, for a named head. */
  numClasses?: number;
  /** The head: "etf", "dense", a Head, or null (features only). Default "dense" with numClasses. */
  head?: HeadSpec;
  /** Options of a named "etf" head. */
  etf?: ETFClassifierOptions;
  /**
   * Per-example input shape [H, W, C] that `summary()` builds an unbuilt model for (default
   * [32, 32, 3], CIFAR's); the model takes any spatial size.
   */
  inputShape?: readonly number[];
}

/** CIFAR ResNet-32 (NHWC 32x32x3 inputs; any spatial size works). */
export class ResNet32 extends ClassifierModel {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<ResNet32Options>({
    name: true,
    trainable: true,
    seed: true,
    widthMultiplier: true,
    blocksPerStage: true,
    numClasses: true,
    head: true,
    etf: true,
    inputShape: true,
  });
  /** Channels of the three stages (16w, 32w, 64w). */
  readonly widths: [number, number, number];
  /** BasicBlocks per stage (5 for ResNet-32). */
  readonly blocksPerStage: number;
  /** The stem's 3x3 convolution. */
  readonly conv1: Conv2D;
  /** The stem's BatchNorm. */
  readonly bn1: BatchNormalization;
  /** The three stages ("layer1".."layer3"), each a Sequential of blocks. */
  readonly stages: Sequential[];
  readonly #relu: ReLU;
  readonly #pool: GlobalAveragePooling2D;

  /** A ResNet-32 (or 6n+2) with the given width, depth and head. */
  constructor(options: ResNet32Options = {}) {
    super(makeHead(options.head, options.numClasses, options.etf), {
      name: "resnet32",
      ...options,
    });
    const w = options.widthMultiplier ?? 1;
    if (!(w > 0)) throw new Error(`collapse: ResNet32: widthMultiplier must be > 0, got ${w}`);
    this.widths = [16, 32, 64].map((c) => Math.max(1, Math.round(c * w))) as [
      number,
      number,
      number,
    ];
    this.blocksPerStage = options.blocksPerStage ?? 5;
    this.conv1 = this.track("conv1", conv3x3(this.widths[0], 1));
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.#relu = this.track("relu", new ReLU());
    let inPlanes = this.widths[0];
    this.stages = this.widths.map((planes, s) => {
      const blocks: Layer[] = [];
      for (let b = 0; b < this.blocksPerStage; b++) {
        blocks.push(new BasicBlock(inPlanes, planes, b === 0 && s > 0 ? 2 : 1));
        inPlanes = planes;
      }
      return this.track(`layer${s + 1}`, new Sequential(blocks, { childNames: "index" }));
    });
    this.#pool = this.track("avgpool", new GlobalAveragePooling2D());
    this.trackHead("fc");
    this.expectImageShape(options.inputShape ?? [32, 32, 3]);
  }

  /** Dimension of the pooled feature (64 x width multiplier). */
  get featureDim(): number {
    return this.widths[2];
  }

  /** The pooled features [N, d] of NHWC images x. */
  override features(x: Tensor, o: CallOptions): Tensor {
    let y = fusedStem(x, this.conv1, this.bn1, o.training) ??
      this.#relu.apply(this.bn1.apply(this.conv1.apply(x, o), o), o);
    for (const s of this.stages) y = s.apply(y, o);
    return this.#pool.apply(y, o);
  }

  /** The model's configuration: widths, depth and head. */
  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      widths: this.widths,
      blocksPerStage: this.blocksPerStage,
      head: this.head ? { className: this.head.className, config: this.head.getConfig() } : null,
    };
  }
}

/** ResNet-32 for CIFAR: `resnet32({numClasses: 10, head: "etf"})`. */
export function resnet32(options: ResNet32Options = {}): ResNet32 {
  return new ResNet32(options);
}
