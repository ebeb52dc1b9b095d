/**
 * ImageNet-LT with ResNet-50 (layer4 1024 planes), the fixed ETF classifier and the DR loss, with the paper's settings as defaults (see `lib/recipe_specs.ts`).
 *
 *     deno run -A recipes/imagenet_lt.ts [--help] [--data-dir DIR] [--out DIR] [--epochs N] ...
 *
 * @module
 */
import { RECIPES } from "./lib/recipe_specs.ts";
import { main } from "./lib/run_recipe.ts";

if (import.meta.main) await main(RECIPES.imagenet_lt);
