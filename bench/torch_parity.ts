/**
 * Checks that collapse's ResNet-50 computes what torchvision's computes with the same weights:
 * loads a torchvision state dict saved as safetensors (as `recipes/cub.ts --pretrained FILE` does),
 * runs an NHWC input batch through the model in inference mode, and compares the logits with
 * torchvision's, saved as raw little-endian f32 files next to it. Where PyTorch is installed:
 *
 *     python3 bench/torch_reference.py 224 4 /tmp/p   # torchvision weights, input, logits
 *     deno run -A bench/torch_parity.ts --state /tmp/p/r50.safetensors --input /tmp/p/x.bin \
 *       --expect /tmp/p/y.bin --size 224 --batch 4
 * @module
 */
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { tensor } from "../gpu/tensor.ts";
import { readSafetensorsFile } from "../nn/io/safetensors.ts";
import { resnet50 } from "../nn/models/resnet50.ts";
import { type HostTensor, loadTorchState } from "../nn/models/torch_layout.ts";

const args = parseArgs(Deno.args, {
  string: ["state", "input", "expect", "size", "batch", "classes"],
  default: { size: "64", batch: "2", classes: "1000" },
});
const size = Number(args.size), batch = Number(args.batch), classes = Number(args.classes);
await initDevice();
const file = await readSafetensorsFile(args.state!);
const state = new Map<string, HostTensor>();
for (const [name, t] of Object.entries(file.tensors)) {
  if (name.endsWith("num_batches_tracked")) continue;
  state.set(name, { shape: t.shape, data: Float32Array.from(t.data as ArrayLike<number>) });
}
const model = resnet50({ numClasses: classes, head: "dense" });
model.build([batch, size, size, 3]);
const report = loadTorchState(model, state, { strict: true });
const readF32 = async (path: string) => {
  const b = await Deno.readFile(path);
  return new Float32Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength / 4);
};
const x = await readF32(args.input!);
const want = await readF32(args.expect!);
const got = await model.predict(tensor(x, [batch, size, size, 3])).data() as Float32Array;
let maxAbs = 0, maxRef = 0, agree = 0;
for (let i = 0; i < want.length; i++) {
  maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
  maxRef = Math.max(maxRef, Math.abs(want[i]));
}
for (let n = 0; n < batch; n++) {
  const row = (a: Float32Array) => a.subarray(n * classes, (n + 1) * classes);
  const am = (a: Float32Array) => row(a).indexOf(Math.max(...row(a)));
  if (am(got) === am(want)) agree++;
}
const out = {
  adapter: gpu().adapter.description,
  loaded: report.loaded.length,
  maxAbsDiff: maxAbs,
  maxAbsLogit: maxRef,
  relative: maxAbs / maxRef,
  argmaxAgree: `${agree}/${batch}`,
};
console.log(JSON.stringify(out));
if (!(maxAbs / maxRef < 1e-3) || agree !== batch) Deno.exit(1);
