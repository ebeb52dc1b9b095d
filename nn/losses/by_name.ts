/**
 * Loss names accepted by `compile({ loss })`, Keras style: "sparse_categorical_crossentropy"
 * (integer labels; also "cross_entropy", "crossentropy", "ce") and "dot_regression" ("dr"). Losses
 * that need the class counts (balanced softmax, logit adjustment, LDAM) are constructed explicitly.
 * @module
 */
import { checkChoice } from "../options.ts";
import { CrossEntropyLoss } from "./cross_entropy.ts";
import { DotRegressionLoss } from "./dot_regression.ts";
import type { Loss } from "./loss.ts";

/** A loss name of {@link lossFromName}. */
export type LossName =
  | "sparse_categorical_crossentropy"
  | "cross_entropy"
  | "crossentropy"
  | "ce"
  | "dot_regression"
  | "dr";

const NAMES: readonly LossName[] = [
  "sparse_categorical_crossentropy",
  "cross_entropy",
  "crossentropy",
  "ce",
  "dot_regression",
  "dr",
];

/**
 * The loss of a name, with default options; throws naming the known names (and, for Keras'
 * one-hot "categorical_crossentropy", that labels here are integers).
 */
export function lossFromName(name: string): Loss {
  if (name === "categorical_crossentropy") {
    throw new Error(
      'collapse: compile(): loss "categorical_crossentropy" takes one-hot targets; labels here ' +
        'are integer classes: use "sparse_categorical_crossentropy"',
    );
  }
  const n = checkChoice("compile()", "loss", name, NAMES);
  return n === "dot_regression" || n === "dr" ? new DotRegressionLoss() : new CrossEntropyLoss();
}
