// Checkpoints (nn/checkpoint.ts): save -> load into a differently seeded model reproduces the
// predictions exactly (weights, BN running statistics, the fixed ETF M), metadata round-trips,
// optimizer state is saved per parameter, mismatched files fail with errors naming every
// missing, unexpected and mis-shaped tensor, and a changed float is refused by its checksum.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import type { Batch } from "../data/types.ts";
import {
  loadCheckpoint,
  OPTIMIZER_PREFIX,
  readCheckpointInfo,
  saveCheckpoint,
} from "../nn/checkpoint.ts";
import { CHECKSUM_KEY, parseSafetensorsHeader, readSafetensorsFile } from "../nn/io/safetensors.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { BatchNormalization } from "../nn/layers/batch_normalization.ts";
import { Dense } from "../nn/layers/dense.ts";
import { Flatten } from "../nn/layers/flatten.ts";
import { DotRegressionLoss } from "../nn/losses/mod.ts";
import { Classifier } from "../nn/model/classifier.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { AdamW, SGD } from "../nn/optimizers/mod.ts";
import { compile, type DataSource, fit, predict } from "../nn/training/mod.ts";

await initDevice();

const K = 3, H = 4, C = 2, PIX = H * H * C, N = 24;

function model(seed: number, width = 8, extra = false) {
  const layers = [new Flatten(), new Dense(width), new BatchNormalization(), new Dense(6)];
  if (extra) layers.push(new Dense(6));
  return new Classifier(new Sequential(layers, { childNames: "index" }), new ETFClassifier(K), {
    seed,
  });
}

const rng = new Rng(3);
const images = Float32Array.from({ length: N * PIX }, () => rng.normal());
const labels = Int32Array.from({ length: N }, (_, i) => i % K);
const data: DataSource = {
  batches(): Batch[] {
    const out: Batch[] = [];
    for (let b = 0; b < N; b += 8) {
      out.push({
        images: images.slice(b * PIX, (b + 8) * PIX),
        labels: labels.slice(b, b + 8),
        shape: [8, H, H, C],
      });
    }
    return out;
  },
};

async function trained(dir: string) {
  const m = model(1);
  const optimizer = new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  compile(m, { optimizer, loss: new DotRegressionLoss() });
  await fit(m, data, { epochs: 2, verbose: 0 });
  const path = `${dir}/a.safetensors`;
  await saveCheckpoint(path, m, {
    optimizer,
    epoch: 2,
    seed: 42,
    rngState: new Rng(5).getState(),
    config: { lr: 0.05, tags: ["x"] },
    extra: { best: 0.5 },
  });
  return { m, optimizer, path };
}

Deno.test("save -> load reproduces predictions exactly; metadata and optimizer state", async () => {
  const dir = await Deno.makeTempDir();
  const { m, path } = await trained(dir);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a.safetensors"]); // no temp file
  const file = await readSafetensorsFile(path);
  const names = Object.keys(file.tensors);
  assert(names.includes("head.etf"), names.join(", "));
  assert(names.includes("backbone.2.running_mean"));
  assert(names.includes(`${OPTIMIZER_PREFIX}momentum_buffer.backbone.1.weight`));
  assertEquals(
    names.filter((n) => !n.startsWith(OPTIMIZER_PREFIX)).sort(),
    m.weights().map((w) => w.name).sort(),
  );

  const info = await readCheckpointInfo(path);
  assertEquals(info.epoch, 2);
  assertEquals(info.seed, 42);
  assertEquals(info.rngState, new Rng(5).getState());
  assertEquals(info.config, { lr: 0.05, tags: ["x"] });
  assertEquals(info.extra, { best: 0.5 });
  assertEquals(info.inputShape, [8, H, H, C]);
  assertEquals(info.optimizer?.kind, "sgd");

  const want = await predict(m, data);
  const fresh = model(99); // other seed: other weights and another ETF M until loaded
  const before = await predict(fresh, data);
  assert(before.logits.some((v, i) => v !== want.logits[i]));
  const opt2 = new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  await loadCheckpoint(path, fresh, { optimizer: opt2 });
  const got = await predict(fresh, data);
  assertEquals(Array.from(got.logits), Array.from(want.logits));
  // The optimizer state is applied when the optimizer is attached (at the next fit).
  compile(fresh, { optimizer: opt2, loss: new DotRegressionLoss() });
  await fit(fresh, data, { epochs: 1, initialEpoch: 0, verbose: 0 });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("load names every missing, unexpected and mis-shaped tensor", async () => {
  const dir = await Deno.makeTempDir();
  const { path } = await trained(dir);
  const e1 = await assertRejects(() => loadCheckpoint(path, model(1, 5)), Error);
  assert(/shape \[32, 8\] in the file, \[32, 5\] in the model/.test(e1.message), e1.message);
  assert(/'backbone\.2\.running_var' has shape \[8\] in the file, \[5\]/.test(e1.message));
  const e2 = await assertRejects(() => loadCheckpoint(path, model(1, 8, true)), Error);
  assert(
    /missing in the file: backbone\.4\.weight, backbone\.4\.bias/.test(e2.message),
    e2.message,
  );
  // Not strict: the common tensors load, missing ones keep their values.
  await loadCheckpoint(path, model(1, 8, true), { strict: false });
  const small = model(1);
  small.build([1, H, H, C]);
  await saveCheckpoint(`${dir}/b.safetensors`, small);
  const e3 = await assertRejects(
    () => loadCheckpoint(`${dir}/b.safetensors`, model(1, 8, true)),
    Error,
  );
  assert(/missing in the file: backbone\.4\.weight/.test(e3.message), e3.message);
  const e4 = await assertRejects(
    () => loadCheckpoint(path, model(1, 8), { optimizer: new AdamW({ learningRate: 1 }) }),
    Error,
  );
  assert(/sgd optimizer state, not adamw/.test(e4.message), e4.message);
  const e5 = await assertRejects(
    () =>
      loadCheckpoint(`${dir}/b.safetensors`, model(1), { optimizer: new SGD({ learningRate: 1 }) }),
    Error,
  );
  assert(/no optimizer state/.test(e5.message), e5.message);
  await Deno.writeFile(`${dir}/c.safetensors`, new Uint8Array([1, 2, 3]));
  const e6 = await assertRejects(() => loadCheckpoint(`${dir}/c.safetensors`, model(1)), Error);
  assert(e6.message.includes(`${dir}/c.safetensors`) && /too short/.test(e6.message), e6.message);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint with one changed float is refused, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const { path } = await trained(dir);
  const bytes = await Deno.readFile(path);
  const header = parseSafetensorsHeader(bytes);
  assert(/^[0-9a-f]{8}$/.test(header.metadata[CHECKSUM_KEY]), "the checksum is stored");
  const w = header.entries["backbone.1.weight"];
  const view = new DataView(bytes.buffer);
  const at = header.dataStart + w.data_offsets[0] + 8;
  view.setFloat32(at, view.getFloat32(at, true) * 1.0001 + 1e-6, true);
  await Deno.writeFile(path, bytes);
  for (
    const load of [
      () => loadCheckpoint(path, model(1)),
      () => readCheckpointInfo(path),
    ]
  ) {
    const e = await assertRejects(load, Error);
    assert(e.message.startsWith(`collapse: checkpoint ${path}: `), e.message);
    assert(/does not match its checksum .* the file is damaged/.test(e.message), e.message);
  }
  assertEquals((await readCheckpointInfo(path, { verify: false })).epoch, 2);
  // Option bags are checked like every other one.
  const bad = await assertRejects(
    () => readCheckpointInfo(path, { verfy: false } as unknown as { verify: boolean }),
    Error,
  );
  assert(bad.message.includes("verfy") && bad.message.includes("verify"), bad.message);
  await assertRejects(
    () => saveCheckpoint(`${dir}/x.safetensors`, model(1), { epochs: 3 } as never),
    Error,
    "epochs",
  );
  await Deno.remove(dir, { recursive: true });
});
