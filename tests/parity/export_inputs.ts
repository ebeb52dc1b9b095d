/**
 * Writes the parity guard's inputs for `torch_reference.py`: per variant, `<name>.inputs.safetensors`
 * (initial weights in torch layout, the ETF matrix, every batch and mixup permutation, the
 * evaluation images) and `<name>.inputs.json` (the configuration, batch sizes, mixup lambdas and
 * the inputs' digest). Usage: `deno run -A tests/parity/export_inputs.ts DIR` (see README.md).
 * @module
 */
import { initDevice } from "../../gpu/device.ts";
import "../../gpu/ops/mod.ts";
import { writeSafetensorsFile } from "../../nn/io/safetensors.ts";
import { buildModel, inputsDigest, parityConfig, parityInputs, VARIANTS } from "./parity_setup.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: deno run -A tests/parity/export_inputs.ts DIR");
  Deno.exit(2);
}
await initDevice();
await Deno.mkdir(dir, { recursive: true });
for (const v of VARIANTS) {
  const tensors = await parityInputs(v, buildModel(v));
  const digest = await inputsDigest(tensors);
  await writeSafetensorsFile(`${dir}/${v.name}.inputs.safetensors`, tensors);
  await Deno.writeTextFile(
    `${dir}/${v.name}.inputs.json`,
    JSON.stringify({ config: parityConfig(v), inputsSha256: digest }, null, 1) + "\n",
  );
  console.log(`${v.name}: ${Object.keys(tensors).length} tensors, sha256 ${digest}`);
}
