/**
 * Dropout (inverted: survivors scaled by 1 / (1 - rate), identity at inference). The mask comes
 * from a GPU hash of a per-layer u32[1] seed tensor. Eagerly, the layer draws a fresh seed from
 * its own seeded {@link Rng} before every training call; inside a captured step (where host
 * writes are forbidden) the trainer calls {@link Dropout.reseedAll} before each replay.
 * @module
 */
import { dropout } from "../../gpu/ops/dropout.ts";
import { engine } from "../../gpu/engine.ts";
import { Rng } from "../../gpu/rng.ts";
import { untrack } from "../../gpu/scope.ts";
import { type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import { currentInitRng } from "../init.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, type LayerOptions } from "./layer.ts";

/** Options of {@link Dropout}. */
export interface DropoutOptions extends LayerOptions {
  /** Seed of the layer's mask RNG (default: drawn from the init RNG at construction). */
  seed?: number;
}

/** Randomly zeroes a fraction `rate` of the inputs in training. */
export class Dropout extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<DropoutOptions>({
    name: true,
    trainable: true,
    seed: true,
  });
  readonly rate: number;
  readonly #rng: Rng;
  #seed: Tensor | null = null;

  constructor(rate: number, options: DropoutOptions = {}) {
    super(options);
    if (!(rate >= 0 && rate < 1)) {
      throw new Error(`collapse: Dropout: rate must be in [0, 1), got ${rate}`);
    }
    this.rate = rate;
    this.#rng = new Rng(options.seed ?? currentInitRng().nextU32());
  }

  /** The u32[1] seed tensor the mask reads. */
  get seedTensor(): Tensor {
    if (!this.#seed) {
      this.#seed = untrack(tensor(new Uint32Array([this.#rng.nextU32()]), [1], "u32"));
    }
    return this.#seed;
  }

  /** Writes a fresh seed (host -> GPU; not allowed inside a captured step). */
  reseed(): void {
    writeTensor(this.seedTensor, new Uint32Array([this.#rng.nextU32()]));
  }

  /** Reseeds every Dropout layer in a layer tree (call before replaying a captured step). */
  static reseedAll(root: Layer): void {
    const visit = (l: Layer) => {
      if (l instanceof Dropout) l.reseed();
      for (const c of l.sublayers.values()) visit(c);
    };
    visit(root);
  }

  override build(): void {
    void this.seedTensor; // allocate before any step capture
  }

  override call(x: Tensor, options: CallOptions): Tensor {
    if (!options.training || this.rate === 0) return x;
    if (!engine().capturing) this.reseed();
    return dropout(x, this.rate, this.seedTensor, true);
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), rate: this.rate };
  }

  override dispose(): void {
    super.dispose();
    this.#seed?.dispose();
    this.#seed = null;
  }
}
