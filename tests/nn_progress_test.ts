// The progress bar and fit's readback schedule, on captured output: "compiling kernels ..." before
// the first readback of a run; a step count and images/s within the first two steps of every
// epoch (readbacks after steps 1 and 2, then about every 2 s: never every step); one label for
// accuracy while running and at the epoch's end.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import type { Batch } from "../data/types.ts";
import { DenseClassifier } from "../nn/heads/dense_classifier.ts";
import { Dense } from "../nn/layers/dense.ts";
import { Flatten } from "../nn/layers/flatten.ts";
import { CrossEntropyLoss } from "../nn/losses/mod.ts";
import { Classifier } from "../nn/model/classifier.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import {
  type Callback,
  compile,
  type DataSource,
  fit,
  ProgressBarCallback,
} from "../nn/training/mod.ts";

await initDevice();

const K = 3, B = 8, STEPS = 10, PIX = 4 * 4 * 3;

Deno.test("progress bar: steps and img/s within the first two steps of every epoch", async () => {
  const rng = new Rng(4);
  const images = Float32Array.from({ length: STEPS * B * PIX }, () => rng.normal());
  const labels = Int32Array.from({ length: STEPS * B }, (_, i) => i % K);
  let text = "";
  const dec = new TextDecoder();
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      text += dec.decode(chunk);
    },
  });
  /** What the bar had drawn when each epoch's third batch was requested (after two steps). */
  const beforeThird: string[] = [];
  const data: DataSource = {
    async *batches(epoch: number): AsyncGenerator<Batch> {
      for (let s = 0; s < STEPS; s++) {
        if (s === 2) beforeThird[epoch] = text;
        await Promise.resolve();
        yield {
          images: images.slice(s * B * PIX, (s + 1) * B * PIX),
          labels: labels.slice(s * B, (s + 1) * B),
          shape: [B, 4, 4, 3],
        };
      }
    },
    batchesPerEpoch: () => STEPS,
  };
  const progress: number[][] = [];
  const recorder: Callback = {
    onEpochBegin: (e) => void (progress[e] = []),
    onProgress: (e, step) => void progress[e].push(step),
  };
  const model = new Classifier(
    new Sequential([new Flatten(), new Dense(16, { activation: "relu" })]),
    new DenseClassifier(K),
    { seed: 2 },
  );
  compile(model, { optimizer: new SGD({ learningRate: 0.05 }), loss: new CrossEntropyLoss() });
  await fit(model, data, {
    epochs: 2,
    verbose: 0,
    callbacks: [new ProgressBarCallback({ writable: sink, interval: 60_000 }), recorder],
  });

  for (let e = 0; e < 2; e++) {
    // Readbacks after the first and second step, then rarely (a step here takes milliseconds).
    assertEquals(progress[e].slice(0, 2), [1, 2], `epoch ${e} readbacks: ${progress[e]}`);
    assert(progress[e].length <= 5, `epoch ${e}: ${progress[e].length} readbacks`);
    const frames = beforeThird[e].split("\r\u001b[K").filter((f) =>
      f.startsWith(`epoch ${e + 1}/2`)
    );
    const live = frames.filter((f) => /\[[#-]+\] [12]\/10 \| [0-9.]+ img\/s \| loss /.test(f));
    assert(live.length >= 1, `epoch ${e}: no step count and img/s before step 3:\n${frames}`);
    assertMatch(live[0], /\| accuracy [0-9.]+ \|/);
  }
  // Before the first readback of the run: the pipelines are compiling.
  const first = text.split("\r\u001b[K")[1];
  assertStringIncludes(
    first,
    "epoch 1/2 [------------------------------] 0/10 | compiling kernels",
  );
  assertEquals(text.split("compiling kernels").length - 1, 1, "only before the first readback");
  // The epoch's last line: the History's names ("accuracy", never "acc"), then a newline.
  const ends = text.split("\n").filter((l) => l.length > 0).map((l) =>
    l.split("\r\u001b[K").at(-1)!
  );
  assertEquals(ends.length, 2);
  for (const [e, line] of ends.entries()) {
    assertMatch(line, new RegExp(`^epoch ${e + 1}/2 \\[#{30}\\] 10/10 \\d\\d:\\d\\d \\| `));
    assertStringIncludes(line, "| accuracy ");
    assert(!/\bacc\b/.test(line), line);
  }
});
