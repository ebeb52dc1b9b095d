/**
 * CUB-200-2011 with ResNet-50, the fixed ETF classifier and the DR loss (--pretrained FILE to fine-tune), with the paper's settings as defaults (see `lib/recipe_specs.ts`).
 *
 *     deno run -A recipes/cub.ts [--help] [--data-dir DIR] [--out DIR] [--epochs N] ...
 *
 * @module
 */
import { RECIPES } from "./lib/recipe_specs.ts";
import { main } from "./lib/run_recipe.ts";

if (import.meta.main) await main(RECIPES.cub);
