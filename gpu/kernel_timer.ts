/**
 * Per-kernel GPU time from WebGPU timestamp queries: replays a recorded dispatch list (a
 * {@link CapturedStep}'s records) with every dispatch in a compute pass of its own whose
 * beginning and end write timestamps, and returns each dispatch's device time. Only used when
 * called: the engine's own encoding (and every captured replay) is unchanged. Needs the device
 * feature `timestamp-query` (requested by `initDevice` where the adapter has it); without it
 * {@link timeDispatches} returns null.
 * @module
 */
import { gpu } from "./device.ts";
import { engine, type StepRecord } from "./engine.ts";

/** The device time of one dispatch of a timed replay. */
export interface DispatchTiming {
  /** The kernel name of the launch. */
  name: string;
  /** Index of the dispatch in the records passed to {@link timeDispatches}. */
  index: number;
  /** Device time from the start to the end of the dispatch's pass, in milliseconds. */
  ms: number;
}

/** Whether this device records timestamps ({@link timeDispatches} returns null where not). */
export function timestampsAvailable(): boolean {
  return gpu().device.features.has("timestamp-query");
}

// WebGPU caps a query set at 4096 queries: at most 2048 timed dispatches per submission.
const MAX_PER_SET = 2048;

/**
 * Replays `records` once (copies as copies, each dispatch in its own timed compute pass, in
 * order, after all earlier work) and returns the device time of every dispatch, in record order.
 * Returns null when the device has no `timestamp-query` feature. The replay computes what the
 * records compute (write the inputs first if the values matter).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { engine, initDevice, matmul, ones, timeDispatches } from "./mod.ts";
 *
 * await initDevice();
 * const a = ones([64, 64]);
 * const { step } = engine().capture(() => matmul(a, a));
 * const timings = await timeDispatches(step.records); // null without timestamp-query
 * if (timings) assert(timings.every((t) => t.ms > 0));
 * step.dispose();
 * ```
 */
export async function timeDispatches(
  records: readonly StepRecord[],
): Promise<DispatchTiming[] | null> {
  if (!timestampsAvailable()) return null;
  const e = engine();
  await e.sync(); // earlier work finishes before the timed passes start
  const { device } = gpu();
  const out: DispatchTiming[] = [];
  let start = 0;
  while (start < records.length) {
    // One submission per chunk of at most MAX_PER_SET dispatches.
    let end = start, n = 0;
    while (end < records.length && (n < MAX_PER_SET || records[end].kind === "copy")) {
      if (records[end].kind === "dispatch") n++;
      end++;
    }
    out.push(...await timeChunk(device, records, start, end, n));
    start = end;
  }
  return out;
}

async function timeChunk(
  device: GPUDevice,
  records: readonly StepRecord[],
  start: number,
  end: number,
  n: number,
): Promise<DispatchTiming[]> {
  if (n === 0) return [];
  device.pushErrorScope("validation");
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
  const resolve = device.createBuffer({
    size: 16 * n,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({
    size: 16 * n,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  const timed: { name: string; index: number }[] = [];
  for (let i = start; i < end; i++) {
    const r = records[i];
    if (r.kind === "copy") {
      enc.copyBufferToBuffer(r.src, r.srcOffset, r.dst, r.dstOffset, r.size);
      continue;
    }
    const q = 2 * timed.length;
    const pass = enc.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 },
    });
    pass.setPipeline(r.pipeline);
    pass.setBindGroup(0, r.bindGroup);
    pass.dispatchWorkgroups(r.x, r.y, r.z);
    pass.end();
    timed.push({ name: r.name, index: i });
  }
  enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  try {
    if (err) throw new Error(`collapse: timed replay failed: ${err.message}`);
    await staging.mapAsync(GPUMapMode.READ);
    const ticks = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    // Resolved timestamps are nanoseconds.
    return timed.map((t, j) => ({ ...t, ms: Number(ticks[2 * j + 1] - ticks[2 * j]) / 1e6 }));
  } finally {
    querySet.destroy();
    resolve.destroy();
    staging.destroy();
  }
}
