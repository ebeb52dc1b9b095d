/**
 * DenseNet for CIFAR-sized inputs as the official ImbalancedLearning code's `DenseNet3` (Huang et
 * al. 2017; the paper's second backbone is DenseNet-BC-150: depth 150, growth 12, reduction 0.5,
 * bottleneck): conv3x3 (3 -> 2 * growth), three dense blocks of n = (depth - 4) / 6 bottleneck
 * layers (BN-ReLU-conv1x1 to 4 * growth, BN-ReLU-conv3x3 to growth, concatenated to the input;
 * n = (depth - 4) / 3 basic BN-ReLU-conv3x3 layers without the bottleneck), transitions
 * BN-ReLU-conv1x1 to floor(c * reduction) channels + 2x2 average pooling, then BN-ReLU and global
 * average pooling to the feature of dimension d (510 for DenseNet-BC-150), then an optional head
 * (the fixed ETF or the learnable one, as ResNet-32). Every conv is bias-free with weights
 * N(0, 2 / (k * k * out_channels)); BN gamma 1, beta 0. The official code has no dropout at its
 * defaults (dropRate 0), and neither does this. Weight paths are the official state dict's:
 * conv1.weight, block1.layer.0.bn1.weight, block1.layer.0.conv1.weight, ..., trans1.conv1.weight,
 * ..., bn1.running_var, then the head's (fc.*).
 *
 * Dense blocks run on gpu/ops/dense_concat.ts: one feature buffer per block, layers read the
 * channel prefix in place and write their slice, BN-ReLU outputs are recomputed in the backward
 * pass; the activation memory is linear in depth.
 * @module
 */
import { denseBlockBuffer, denseBlockLayer } from "../../gpu/ops/dense_concat.ts";
import { preactConv, preactGlobalPool } from "../../gpu/ops/preact_conv.ts";
import type { BatchNormParams, PreactConvUnit } from "../../gpu/ops/dense_concat.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import type { ETFClassifierOptions } from "../heads/etf_classifier.ts";
import { kaimingNormal } from "../init.ts";
import { BatchNormalization } from "../layers/batch_normalization.ts";
import { Conv2D } from "../layers/conv2d.ts";
import {
  Layer,
  LAYER_OPTION_KEYS,
  type LayerOptions,
  type Shape,
  SymbolicTensor,
} from "../layers/layer.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import { ClassifierModel } from "../model/classifier.ts";
import type { ModelOptions } from "../model/model.ts";
import { Sequential } from "../model/sequential.ts";
import type { CallOptions } from "../types.ts";
import { type HeadSpec, makeHead } from "./heads_option.ts";

/** The official init of every DenseNet conv: N(0, 2 / (k * k * out_channels)) (fan-out). */
function conv(out: number, k: number): Conv2D {
  return new Conv2D(out, k, {
    padding: (k - 1) / 2,
    useBias: false,
    kernelInitializer: kaimingNormal({ mode: "fan_out" }),
  });
}

function checkNhwc(layer: Layer, s: Shape, channels: number): void {
  if (s.length !== 4 || s[3] !== channels) {
    throw new Error(
      `collapse: ${layer.describe()}: expects NHWC input with ${channels} channels, got ${
        fmtShape(s)
      }`,
    );
  }
}

/** Builds a leaf sublayer for an input shape (as its first call would). */
function buildFor(layer: Layer, shape: Shape): void {
  layer.apply(new SymbolicTensor(shape));
}

/** A BatchNormalization's current tensors and settings as the dense-concat ops take them. */
function bnParams(bn: BatchNormalization): BatchNormParams {
  return {
    gamma: bn.gamma!.value,
    beta: bn.beta!.value,
    runningMean: bn.runningMean!.value,
    runningVar: bn.runningVar!.value,
    momentum: bn.momentum,
    eps: bn.epsilon,
  };
}

/** A BN + conv pair as the op's unit (the weights' current tensors: the trainer may repoint them). */
function unitOf(bn: BatchNormalization, c: Conv2D): PreactConvUnit {
  return { bn: bnParams(bn), weight: c.kernel!.value };
}

/**
 * A dense layer (the official BottleneckBlock, or BasicBlock when `bottleneck` is false): maps
 * x [N, H, W, c] to concat(x, f(x)) [N, H, W, c + growth] with f = BN-ReLU-conv1x1(4 * growth)-
 * BN-ReLU-conv3x3(growth) (basic: BN-ReLU-conv3x3(growth)). Inside a {@link DenseBlock} it writes
 * f(x) into the block's buffer instead ({@link DenseLayer.appendTo}).
 */
export class DenseLayer extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  /** Input channels c. */
  readonly inPlanes: number;
  /** Channels added (k). */
  readonly growthRate: number;
  /** BottleneckBlock (true) or BasicBlock (false). */
  readonly bottleneck: boolean;
  /** BN of the input. */
  readonly bn1: BatchNormalization;
  /** conv1x1 to 4k (bottleneck) or conv3x3 to k (basic). */
  readonly conv1: Conv2D;
  /** BN of the bottleneck output (null for a basic layer). */
  readonly bn2: BatchNormalization | null;
  /** conv3x3 4k -> k (null for a basic layer). */
  readonly conv2: Conv2D | null;

  /** A layer reading `inPlanes` channels and adding `growthRate`. */
  constructor(
    inPlanes: number,
    growthRate: number,
    bottleneck = true,
    options: LayerOptions = {},
  ) {
    super(options);
    this.inPlanes = inPlanes;
    this.growthRate = growthRate;
    this.bottleneck = bottleneck;
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.conv1 = this.track(
      "conv1",
      conv(bottleneck ? 4 * growthRate : growthRate, bottleneck ? 1 : 3),
    );
    this.bn2 = bottleneck ? this.track("bn2", new BatchNormalization()) : null;
    this.conv2 = bottleneck ? this.track("conv2", conv(growthRate, 3)) : null;
  }

  /** Builds the BN and conv sublayers for x [N, H, W, inPlanes]. */
  override build(inputShape: Shape): void {
    checkNhwc(this, inputShape, this.inPlanes);
    const [n, h, w] = inputShape;
    buildFor(this.bn1, inputShape);
    buildFor(this.conv1, inputShape);
    if (this.bn2 && this.conv2) {
      const mid = [n, h, w, 4 * this.growthRate];
      buildFor(this.bn2, mid);
      buildFor(this.conv2, mid);
    }
  }

  /** [N, H, W, inPlanes + growthRate]. */
  override computeOutputShape(s: Shape): Shape {
    checkNhwc(this, s, this.inPlanes);
    return [s[0], s[1], s[2], s[3] + this.growthRate];
  }

  /** The BN-ReLU-conv units of f. */
  units(): PreactConvUnit[] {
    const u = [unitOf(this.bn1, this.conv1)];
    if (this.bn2 && this.conv2) u.push(unitOf(this.bn2, this.conv2));
    return u;
  }

  /**
   * Writes f(state[..., :channels]) into channels [channels, channels + growth) of a dense block
   * buffer (gpu/ops/dense_concat.ts `denseBlockLayer`); returns the buffer.
   */
  appendTo(state: Tensor, channels: number, options: CallOptions): Tensor {
    if (channels !== this.inPlanes) {
      this.fail(`reads ${this.inPlanes} channels, the block has ${channels} filled`);
    }
    return denseBlockLayer(state, channels, this.units(), options.training);
  }

  /** concat(x, f(x)) on its own (a block of one layer). */
  override call(x: Tensor, options: CallOptions): Tensor {
    checkNhwc(this, x.shape, this.inPlanes);
    return this.appendTo(
      denseBlockBuffer(x, this.inPlanes + this.growthRate),
      this.inPlanes,
      options,
    );
  }

  /** The constructor arguments. */
  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      inPlanes: this.inPlanes,
      growthRate: this.growthRate,
      bottleneck: this.bottleneck,
    };
  }
}

/**
 * A dense block (the official DenseBlock): `numLayers` {@link DenseLayer}s registered as
 * `layer.0`, `layer.1`, ..., input c0 channels -> c0 + numLayers * growth, all in one buffer.
 */
export class DenseBlock extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  /** Input channels c0. */
  readonly inPlanes: number;
  /** Channels each layer adds. */
  readonly growthRate: number;
  /** The layers as registered (weight paths `layer.<i>.*`, as the official nn.Sequential). */
  readonly layer: Sequential;
  /** The layers, in order. */
  readonly layers: DenseLayer[];

  /** A block of `numLayers` layers on `inPlanes` input channels. */
  constructor(
    numLayers: number,
    inPlanes: number,
    growthRate: number,
    bottleneck = true,
    options: LayerOptions = {},
  ) {
    super(options);
    if (!Number.isInteger(numLayers) || numLayers < 1) {
      throw new Error(`collapse: DenseBlock: numLayers must be an integer >= 1, got ${numLayers}`);
    }
    this.inPlanes = inPlanes;
    this.growthRate = growthRate;
    this.layers = Array.from(
      { length: numLayers },
      (_, i) => new DenseLayer(inPlanes + i * growthRate, growthRate, bottleneck),
    );
    this.layer = this.track("layer", new Sequential(this.layers, { childNames: "index" }));
  }

  /** Channels of the block's output. */
  get outPlanes(): number {
    return this.inPlanes + this.layers.length * this.growthRate;
  }

  /** Builds every layer for x [N, H, W, inPlanes]. */
  override build(inputShape: Shape): void {
    checkNhwc(this, inputShape, this.inPlanes);
    this.layer.apply(new SymbolicTensor(inputShape));
  }

  /** [N, H, W, outPlanes]. */
  override computeOutputShape(s: Shape): Shape {
    checkNhwc(this, s, this.inPlanes);
    return [s[0], s[1], s[2], this.outPlanes];
  }

  /** One feature buffer: x, then each layer's output appended in place. */
  override call(x: Tensor, options: CallOptions): Tensor {
    checkNhwc(this, x.shape, this.inPlanes);
    let state = denseBlockBuffer(x, this.outPlanes);
    this.layers.forEach((l, i) => {
      state = l.appendTo(state, this.inPlanes + i * this.growthRate, options);
    });
    return state;
  }

  /** The constructor arguments. */
  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      numLayers: this.layers.length,
      inPlanes: this.inPlanes,
      growthRate: this.growthRate,
    };
  }
}

/** A transition (the official TransitionBlock): BN-ReLU-conv1x1(c -> outPlanes), 2x2 average pooling. */
export class DenseTransition extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  /** Input channels. */
  readonly inPlanes: number;
  /** Output channels (floor(inPlanes * reduction) in DenseNet3). */
  readonly outPlanes: number;
  /** BN of the input. */
  readonly bn1: BatchNormalization;
  /** conv1x1 inPlanes -> outPlanes. */
  readonly conv1: Conv2D;

  /** A transition from `inPlanes` to `outPlanes` channels. */
  constructor(inPlanes: number, outPlanes: number, options: LayerOptions = {}) {
    super(options);
    this.inPlanes = inPlanes;
    this.outPlanes = outPlanes;
    this.bn1 = this.track("bn1", new BatchNormalization());
    this.conv1 = this.track("conv1", conv(outPlanes, 1));
  }

  /** Builds the BN and conv for x [N, H, W, inPlanes]. */
  override build(inputShape: Shape): void {
    checkNhwc(this, inputShape, this.inPlanes);
    buildFor(this.bn1, inputShape);
    buildFor(this.conv1, inputShape);
  }

  /** [N, floor(H / 2), floor(W / 2), outPlanes]. */
  override computeOutputShape(s: Shape): Shape {
    checkNhwc(this, s, this.inPlanes);
    if ((s[1] >= 0 && s[1] < 2) || (s[2] >= 0 && s[2] < 2)) {
      this.fail(`cannot pool ${fmtShape(s)} by 2`);
    }
    const half = (d: number) => (d < 0 ? -1 : Math.floor(d / 2));
    return [s[0], half(s[1]), half(s[2]), this.outPlanes];
  }

  /** avgpool2(conv1x1(relu(bn(x)))), the BN-ReLU output recomputed in the backward pass. */
  override call(x: Tensor, options: CallOptions): Tensor {
    return preactConv(x, [unitOf(this.bn1, this.conv1)], options.training, { avgPool2: true });
  }

  /** The constructor arguments. */
  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), inPlanes: this.inPlanes, outPlanes: this.outPlanes };
  }
}

/**
 * DenseNet's head after the last block: BatchNorm (weights as {@link BatchNormalization}: the
 * official `bn1`), ReLU and global average pooling, [N, H, W, C] -> [N, C], fused (the BN-ReLU
 * output is recomputed in the backward pass rather than kept).
 */
export class BatchNormReluPool extends BatchNormalization {
  /** The option names the constructor accepts (BatchNormalization's). */
  static override readonly optionKeys: OptionKeys = BatchNormalization.optionKeys;
  /** [N, C]. */
  override computeOutputShape(s: Shape): Shape {
    if (s.length !== 4) this.fail(`expects NHWC input [N, H, W, C], got ${fmtShape(s)}`);
    super.computeOutputShape(s);
    return [s[0], s[3]];
  }

  /** mean over H, W of relu(bn(x)). */
  override call(x: Tensor, options: CallOptions): Tensor {
    return preactGlobalPool(x, bnParams(this), options.training);
  }
}

/** Options of {@link DenseNet3}. */
export interface DenseNetOptions extends ModelOptions {
  /** Depth (default 150); (depth - 4) / 6 bottleneck layers per block ((depth - 4) / 3 without). */
  depth?: number;
  /** Growth rate k (default 12). */
  growthRate?: number;
  /** Transition compression: floor(c * reduction) output channels (default 0.5). */
  reduction?: number;
  /** Bottleneck layers (DenseNet-B; default true). */
  bottleneck?: boolean;
  /** Layers per dense block, overriding the count derived from `depth` (tiny test models). */
  layersPerBlock?: number;
  /** Number of classes, for a named head. */
  numClasses?: number;
  /** The head: "etf", "dense", a Head, or null (features only). Default "dense" with numClasses. */
  head?: HeadSpec;
  /** Options of a named "etf" head. */
  etf?: ETFClassifierOptions;
}

/** DenseNet(-BC) for CIFAR (NHWC inputs, any square size that survives two 2x2 poolings). */
export class DenseNet3 extends ClassifierModel {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<DenseNetOptions>({
    name: true,
    trainable: true,
    seed: true,
    depth: true,
    growthRate: true,
    reduction: true,
    bottleneck: true,
    layersPerBlock: true,
    numClasses: true,
    head: true,
    etf: true,
  });
  /** Nominal depth (150 for DenseNet-BC-150). */
  readonly depth: number;
  /** Growth rate k. */
  readonly growthRate: number;
  /** Transition compression. */
  readonly reduction: number;
  /** Bottleneck layers (DenseNet-B). */
  readonly bottleneck: boolean;
  /** Layers per dense block (24 for DenseNet-BC-150). */
  readonly layersPerBlock: number;
  /** The stem conv3x3 (3 -> 2k). */
  readonly conv1: Conv2D;
  /** block1, block2, block3. */
  readonly blocks: [DenseBlock, DenseBlock, DenseBlock];
  /** trans1, trans2. */
  readonly transitions: [DenseTransition, DenseTransition];
  /** The BN after block 3, with the ReLU and global average pooling. */
  readonly bn1: BatchNormReluPool;

  /** DenseNet-BC-150 for CIFAR with the defaults; see {@link DenseNetOptions}. */
  constructor(options: DenseNetOptions = {}) {
    super(makeHead(options.head, options.numClasses, options.etf), {
      name: "densenet",
      ...options,
    });
    this.depth = options.depth ?? 150;
    this.growthRate = options.growthRate ?? 12;
    this.reduction = options.reduction ?? 0.5;
    this.bottleneck = options.bottleneck ?? true;
    const derived = Math.floor((this.depth - 4) / (this.bottleneck ? 6 : 3));
    this.layersPerBlock = options.layersPerBlock ?? derived;
    const k = this.growthRate;
    if (!Number.isInteger(k) || k < 1) this.fail(`growthRate must be an integer >= 1, got ${k}`);
    if (!(this.reduction > 0 && this.reduction <= 1)) {
      this.fail(`reduction must be in (0, 1], got ${this.reduction}`);
    }
    if (!Number.isInteger(this.layersPerBlock) || this.layersPerBlock < 1) {
      this.fail(`depth ${this.depth} gives ${this.layersPerBlock} layers per block (need >= 1)`);
    }
    let c = 2 * k;
    this.conv1 = this.track("conv1", conv(c, 3));
    const blocks: DenseBlock[] = [];
    const transitions: DenseTransition[] = [];
    for (let b = 0; b < 3; b++) {
      const block = new DenseBlock(this.layersPerBlock, c, k, this.bottleneck);
      blocks.push(this.track(`block${b + 1}`, block));
      c = block.outPlanes;
      if (b < 2) {
        const out = Math.floor(c * this.reduction);
        transitions.push(this.track(`trans${b + 1}`, new DenseTransition(c, out)));
        c = out;
      }
    }
    this.blocks = blocks as [DenseBlock, DenseBlock, DenseBlock];
    this.transitions = transitions as [DenseTransition, DenseTransition];
    this.bn1 = this.track("bn1", new BatchNormReluPool());
    this.trackHead("fc");
  }

  /** Dimension of the pooled feature (510 for DenseNet-BC-150). */
  get featureDim(): number {
    return this.blocks[2].outPlanes;
  }

  /** The pooled feature [N, d]. */
  override features(x: Tensor, o: CallOptions): Tensor {
    let y = this.conv1.apply(x, o);
    y = this.transitions[0].apply(this.blocks[0].apply(y, o), o);
    y = this.transitions[1].apply(this.blocks[1].apply(y, o), o);
    return this.bn1.apply(this.blocks[2].apply(y, o), o);
  }

  /** The constructor arguments. */
  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      depth: this.depth,
      growthRate: this.growthRate,
      reduction: this.reduction,
      bottleneck: this.bottleneck,
      layersPerBlock: this.layersPerBlock,
      head: this.head ? { className: this.head.className, config: this.head.getConfig() } : null,
    };
  }
}

/**
 * DenseNet-BC-150 (growth 12, reduction 0.5, d = 510) for CIFAR by default:
 * `densenet3({numClasses: 10, head: "etf"})`.
 */
export function densenet3(options: DenseNetOptions = {}): DenseNet3 {
  return new DenseNet3(options);
}
