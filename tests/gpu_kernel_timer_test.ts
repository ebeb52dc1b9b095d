// Per-dispatch GPU time from timestamp queries (gpu/kernel_timer.ts): one positive, finite time
// per dispatch of a recorded step, in order and named, where the device has `timestamp-query`
// (skipped where it does not); the timed replay computes what the step computes.
import { assert, assertEquals } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { timeDispatches, timestampsAvailable } from "../gpu/kernel_timer.ts";
import { relu } from "../gpu/ops/elementwise.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import "../gpu/ops/mod.ts";
import { tensor } from "../gpu/tensor.ts";

await initDevice();

Deno.test({
  name: "timeDispatches: a positive time per dispatch of a recorded step, in order",
  ignore: !timestampsAvailable(),
  fn: async () => {
    const n = 48;
    const a = tensor(new Float32Array(n * n).map((_, i) => (i % 7) - 3), [n, n]);
    const { step, result } = engine().capture(() => relu(matmul(relu(a), a)));
    const names = step.records.flatMap((r) => r.kind === "dispatch" ? [r.name] : []);
    assert(names.length >= 3, `${names}`);
    for (let rep = 0; rep < 2; rep++) {
      const t = await timeDispatches(step.records);
      assert(t !== null);
      assertEquals(t.map((x) => x.name), names);
      assertEquals(t.map((x) => step.records[x.index].kind), names.map(() => "dispatch"));
      for (const x of t) assert(Number.isFinite(x.ms) && x.ms > 0, `${x.name}: ${x.ms} ms`);
    }
    // The timed replay ran the kernels: the result is relu(relu(a) a).
    const av = await a.data(), out = await result.data();
    let want = 0;
    for (let k = 0; k < n; k++) want += Math.max(av[k], 0) * av[k * n + 5];
    assert(Math.abs(out[5] - Math.max(want, 0)) < 1e-3, `${out[5]} vs ${want}`);
    result.dispose();
    step.dispose();
    a.dispose();
  },
});
