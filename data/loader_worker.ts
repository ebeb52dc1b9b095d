/**
 * The loader's worker: builds the source and augmenter from the messages of ./loader.ts and answers
 * batch requests in order, transferring the batch buffers back. Protocol (all messages plain objects):
 *
 * - in  `{type: "init", source: SourceSpec, augment: AugmentSpec, seed}` -> out `{type: "ready"}`
 * - in  `{type: "epoch", epochId, epoch, indices: Int32Array}` (indices transferred)
 * - in  `{type: "batch", epochId, batchNo, start, count}`
 *   -> out `{type: "batch", epochId, batchNo, images, labels, shape}` (buffers transferred)
 * - any failure -> out `{type: "error", epochId?, batchNo?, message}`
 * @module
 */

import { BatchMaker, openSource, type SourceSpec } from "./batch_maker.ts";
import type { AugmentSpec } from "./augment.ts";

/** Messages the worker accepts. */
export type WorkerRequest =
  | { type: "init"; source: SourceSpec; augment: AugmentSpec; seed: number }
  | { type: "epoch"; epochId: number; epoch: number; indices: Int32Array }
  | { type: "batch"; epochId: number; batchNo: number; start: number; count: number };

const scope = self as unknown as {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
};

let maker: Promise<BatchMaker> | null = null;
const epochs = new Map<number, { epoch: number; indices: Int32Array }>();
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const msg = e.data;
  if (msg.type === "init") {
    maker = openSource(msg.source).then((src) => new BatchMaker(src, msg.augment, msg.seed));
    maker.then(
      () => scope.postMessage({ type: "ready" }),
      (err) => scope.postMessage({ type: "error", message: errorText(err) }),
    );
  } else if (msg.type === "epoch") {
    epochs.clear(); // one epoch at a time: requests of older epochs are stale
    epochs.set(msg.epochId, { epoch: msg.epoch, indices: msg.indices });
  } else if (msg.type === "batch") {
    // Requests are served one after another, in arrival order.
    queue = queue.then(async () => {
      const ep = epochs.get(msg.epochId);
      if (!ep) return;
      try {
        const m = await maker!;
        const b = await m.make(ep.indices, msg.start, msg.count, ep.epoch, msg.batchNo);
        scope.postMessage(
          { type: "batch", epochId: msg.epochId, batchNo: msg.batchNo, ...b },
          [b.images.buffer as ArrayBuffer, b.labels.buffer as ArrayBuffer],
        );
      } catch (err) {
        scope.postMessage({
          type: "error",
          epochId: msg.epochId,
          batchNo: msg.batchNo,
          message: errorText(err),
        });
      }
    });
  }
};

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
