/**
 * Functional models: a graph of layers applied to symbolic tensors from {@link input}, as the Keras
 * functional API (residual graphs, several inputs). Layers are registered under their names.
 *
 * @example
 * ```ts ignore
 * const x = input([32, 32, 3]);
 * const y = new Conv2D(16, 3, { padding: 1 }).apply(x);
 * const z = new Add().apply([y, new Conv2D(16, 3, { padding: 1 }).apply(y)]);
 * const m = new Functional({ inputs: x, outputs: new GlobalAveragePooling2D().apply(z) });
 * ```
 * @module
 */
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { type Layer, shapeString, type SymbolicNode, SymbolicTensor } from "../layers/layer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Model, type ModelOptions } from "./model.ts";

/** Options of {@link Functional}. */
export interface FunctionalOptions extends ModelOptions {
  inputs: SymbolicTensor | SymbolicTensor[];
  outputs: SymbolicTensor;
}

/** A model defined by a graph of symbolic layer applications. */
export class Functional extends Model {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<FunctionalOptions>({
    name: true,
    trainable: true,
    seed: true,
    inputs: true,
    outputs: true,
  });
  readonly inputs: SymbolicTensor[];
  readonly output: SymbolicTensor;
  /** Graph nodes in evaluation order, with the tensor each produces. */
  readonly #order: { node: SymbolicNode; out: SymbolicTensor }[] = [];
  readonly #multi: boolean;

  constructor(options: FunctionalOptions) {
    super(options);
    checkOptions("new Functional()", options, Functional.optionKeys, {
      required: ["inputs", "outputs"],
    });
    this.#multi = Array.isArray(options.inputs);
    this.inputs = Array.isArray(options.inputs) ? options.inputs : [options.inputs];
    this.output = options.outputs;
    for (const i of this.inputs) {
      if (i.node) this.fail("inputs must be placeholders made by input()");
    }
    // Topological order by DFS from the output.
    const seen = new Set<SymbolicTensor>(this.inputs);
    const visit = (t: SymbolicTensor) => {
      if (seen.has(t)) return;
      seen.add(t);
      if (!t.node) {
        this.fail(`output depends on an input ${shapeString(t.shape)} not listed in inputs`);
      }
      for (const i of t.node.inputs) visit(i);
      this.#order.push({ node: t.node, out: t });
    };
    visit(this.output);
    // Distinct layers in evaluation order; given names first, then auto-named layers take the
    // first free "conv2d", "conv2d_1", ... (the same names for identically built models).
    const distinct: Layer[] = [];
    for (const { node } of this.#order) {
      if (!distinct.includes(node.layer)) distinct.push(node.layer);
    }
    const taken = new Set(distinct.filter((l) => !l.autoNamed).map((l) => l.name));
    const layers = new Map<string, Layer>();
    for (const layer of distinct) {
      const name = layer.autoNamed ? layer.claimName(taken) : layer.name;
      const prev = layers.get(name);
      if (prev && prev !== layer) this.fail(`two different layers are named '${name}'`);
      taken.add(name);
      layers.set(name, layer);
      this.track(name, layer);
    }
    this.built = true;
    this.inputShape = this.#multi ? this.inputs.map((i) => i.shape) : this.inputs[0].shape;
    this.outputShape = this.output.shape;
  }

  /** The distinct layers in evaluation order. */
  get layers(): Layer[] {
    return [...this.sublayers.values()];
  }

  override call(x: Tensor | Tensor[], options: CallOptions): Tensor {
    const xs = Array.isArray(x) ? x : [x];
    if (xs.length !== this.inputs.length) {
      this.fail(`expects ${this.inputs.length} input(s), got ${xs.length}`);
    }
    const values = new Map<SymbolicTensor, Tensor | SymbolicTensor>();
    this.inputs.forEach((inp, i) => {
      const s = xs[i].shape;
      const ok = s.length === inp.shape.length &&
        s.every((d, k) => inp.shape[k] < 0 || d < 0 || d === inp.shape[k]);
      if (!ok) {
        this.fail(`input ${i} should be ${shapeString(inp.shape)}, got ${fmtShape(s)}`);
      }
      values.set(inp, xs[i]);
    });
    for (const { node, out } of this.#order) {
      const args = node.inputs.map((t) => values.get(t)!);
      // deno-lint-ignore no-explicit-any
      const y = node.layer.apply((node.layer.multiInput ? args : args[0]) as any, options);
      values.set(out, y);
    }
    // Symbolic when traced (the graph is layer applications only).
    return values.get(this.output)! as Tensor;
  }
}

/** Shorthand for `new Functional({inputs, outputs})`, as `keras.Model(inputs, outputs)`. */
export function functionalModel(options: FunctionalOptions): Functional {
  return new Functional(options);
}

export { SymbolicTensor };
