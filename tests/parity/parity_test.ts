// The training-parity guard: collapse trains what PyTorch trains, step by step. For each variant of
// parity_setup.ts (ETF + DR, learnable + CE, unnormalised ETF + DR + 0.01 mean||h||) the model is
// built by the recipes' own training_setup.ts from its seed, checked to be the one the goldens were
// made from (configuration, initial weights, ETF, batches and mixup draws by digest), then trained
// through `fit` (the captured step path the recipes use; 32 steps over 4 epochs, a last partial
// batch in each, crossing a warmup and a milestone) and compared with the float64 PyTorch
// reference (torch_reference.py, goldens in goldens/): per-step loss relative error <= 1e-3, per-step
// learning rate identical, every final weight and running statistic within 1e-3 (relative L2 per
// tensor; a BN bias relative to its BN weight, a running mean to sqrt(running var)), and the eval
// path: inference-mode logits of 24 fixed images and evaluate's loss, within 1e-3. The learning
// rates are small (see PARITY in parity_setup.ts: at lr 0.1 float32 rounding alone parts ReLU
// trajectories by 1e-1 within 20 steps).
// COLLAPSE_PARITY_VERBOSE=1 prints the worst errors. Regenerating the goldens: README.md.
import { assert, assertEquals } from "@std/assert";
import { initDevice } from "../../gpu/device.ts";
import "../../gpu/ops/mod.ts";
import { readSafetensorsFile } from "../../nn/io/safetensors.ts";
import { evaluate, fit, type Logs, predict } from "../../nn/training/mod.ts";
import {
  allBatches,
  buildModel,
  compileModel,
  evalSource,
  inputsDigest,
  PARITY,
  parityConfig,
  parityInputs,
  relativeError,
  torchState,
  trainSource,
  VARIANTS,
  weightError,
} from "./parity_setup.ts";

await initDevice();

const TOL = 1e-3;
const GOLDENS = new URL("./goldens/", import.meta.url);
const REGENERATE = "regenerate the goldens (tests/parity/README.md)";

interface Golden {
  inputsSha256: string;
  config: Record<string, unknown>;
  losses: number[];
  lrs: number[];
  evalLoss: number;
}

for (const v of VARIANTS) {
  Deno.test(`training parity with PyTorch: ${v.name}`, async () => {
    const golden: Golden = JSON.parse(
      await Deno.readTextFile(new URL(`${v.name}.json`, GOLDENS)),
    );
    const tensors = (await readSafetensorsFile(new URL(`${v.name}.safetensors`, GOLDENS).pathname))
      .tensors;
    const model = buildModel(v);
    assertEquals(
      parityConfig(v),
      golden.config,
      `${v.name}: the parity configuration differs from the goldens'; ${REGENERATE}`,
    );
    assertEquals(
      await inputsDigest(await parityInputs(v, model)),
      golden.inputsSha256,
      `${v.name}: the initial weights, ETF, batches or mixup permutations are not those the ` +
        `goldens were made from (did initialisation or fit's RNG change?); ${REGENERATE}`,
    );
    compileModel(model, v);

    // Per-step loss from the running means fit reports after every step (sum of loss x batch
    // size over examples so far in the epoch).
    const sizes = allBatches().map((b) => b.shape[0]);
    const losses: number[] = [], lrs: number[] = [];
    let prev = 0, seen = 0;
    const recorder = {
      onEpochBegin: () => void (prev = seen = 0),
      onProgress: (_e: number, _s: number, logs: Logs) => {
        const b = sizes[losses.length];
        const sum = logs.loss * (seen + b);
        losses.push((sum - prev) / b);
        lrs.push(logs.lr);
        prev = sum;
        seen += b;
      },
    };
    const history = await fit(model, trainSource(), {
      epochs: PARITY.epochs,
      seed: PARITY.fitSeed,
      mixupAlpha: v.mixupAlpha,
      verbose: 0,
      progressEvery: 1,
      callbacks: [recorder],
    });
    assertEquals(history.params.capturedSteps, 2, "a full-batch and a tail-batch captured step");

    const failures: string[] = [];
    const worst: Record<string, [number, string]> = {};
    const check = (what: string, where: string, err: number, tol = TOL) => {
      if (!(err <= (worst[what]?.[0] ?? -1))) worst[what] = [err, where];
      if (!(err <= tol)) failures.push(`${what} ${where}: relative error ${err.toExponential(2)}`);
    };
    assertEquals(losses.length, golden.losses.length, "steps");
    golden.losses.forEach((g, i) =>
      check("loss", `step ${i} (${losses[i]} vs ${g})`, Math.abs(losses[i] - g) / Math.abs(g))
    );
    golden.lrs.forEach((g, i) =>
      check("lr", `step ${i} (${lrs[i]} vs ${g})`, Math.abs(lrs[i] - g) / g, 4 * Number.EPSILON)
    );
    const final = (name: string) => tensors[`final/${name}`]?.data as Float32Array | undefined;
    for (const [name, t] of await torchState(model)) {
      const g = tensors[`final/${name}`];
      if (!g) {
        failures.push(`final ${name}: not in the goldens`);
        continue;
      }
      assertEquals(t.shape, g.shape, name);
      check("weight", name, weightError(name, t.data as Float32Array, final));
    }
    const { logits } = await predict(model, evalSource());
    check("eval logits", "", relativeError(logits, tensors["eval/logits"].data as Float32Array));
    const ev = await evaluate(model, evalSource());
    check(
      "eval loss",
      `(${ev.loss} vs ${golden.evalLoss})`,
      Math.abs(ev.loss - golden.evalLoss) /
        Math.abs(golden.evalLoss),
    );
    if (Deno.env.get("COLLAPSE_PARITY_VERBOSE")) {
      const w = Object.entries(worst).map(([k, [e, at]]) => `${k} ${e.toExponential(2)} ${at}`);
      console.log(`${v.name}: worst ${w.join("; ")}`);
    }
    failures.sort((a, b) => Number(b.split("error ")[1]) - Number(a.split("error ")[1]));
    assert(
      failures.length === 0,
      `${v.name}: ${failures.length} differences from PyTorch beyond tolerance (largest first):\n` +
        failures.slice(0, 12).join("\n"),
    );
  });
}
