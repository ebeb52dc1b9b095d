/**
 * Storage buffers recycled by size class. A released buffer can be reused at once by later GPU work
 * of the same submission (work inside one submission runs in order), but a buffer that host data is
 * written into must not be in use by work not yet submitted, since `queue.writeBuffer` runs before it:
 * {@link BufferPool.acquire} takes that into account with the `forUpload` flag.
 * @module
 */

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to its size class: powers of two and 1.5x powers of two, at least 256. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  return bytes <= p * 0.75 ? p * 0.75 : p;
}

interface Free {
  buffer: GPUBuffer;
  /** The submission counter when it was last used by encoded work. */
  lastBatch: number;
}

/** Live/pooled buffer statistics. */
export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  /** Bytes of the live buffers (their size classes). */
  liveBytes: number;
  /** Released buffers kept for reuse. */
  pooledBuffers: number;
  /** Bytes of the pooled buffers. */
  pooledBytes: number;
}

/** A pool of storage buffers keyed by size class. */
export class BufferPool {
  #free = new Map<number, Free[]>();
  #live = 0;
  #liveBytes = 0;
  #pooled = 0;
  #pooledBytes = 0;

  /** An empty pool allocating from `device`. */
  constructor(private device: GPUDevice) {}

  /**
   * A buffer of at least `bytes` bytes. `currentBatch` is the id of the submission being encoded;
   * with `forUpload`, a buffer released during that submission is not reused.
   */
  acquire(bytes: number, currentBatch: number, forUpload: boolean, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    if (list && list.length) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (!forUpload || list[i].lastBatch < currentBatch) {
          const { buffer } = list[i];
          list.splice(i, 1);
          this.#pooled--;
          this.#pooledBytes -= size;
          this.#live++;
          this.#liveBytes += size;
          return buffer;
        }
      }
    }
    const maxSize = this.device.limits.maxBufferSize;
    if (size > maxSize) {
      throw new Error(
        `collapse: a ${bytes}-byte buffer${label ? ` for ${label}` : ""} exceeds the device's ` +
          `maxBufferSize (${maxSize})`,
      );
    }
    const buffer = this.device.createBuffer({ size, usage: USAGE, label });
    this.#live++;
    this.#liveBytes += size;
    return buffer;
  }

  /** Returns a buffer to the pool; `lastBatch` is the submission that last used it. */
  release(buffer: GPUBuffer, lastBatch: number): void {
    const size = buffer.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push({ buffer, lastBatch });
    this.#live--;
    this.#liveBytes -= size;
    this.#pooled++;
    this.#pooledBytes += size;
  }

  /** Destroys every pooled (not live) buffer. */
  trim(): void {
    for (const list of this.#free.values()) for (const f of list) f.buffer.destroy();
    this.#free.clear();
    this.#pooled = 0;
    this.#pooledBytes = 0;
  }

  /** Counts of live and pooled buffers and bytes. */
  stats(): PoolStats {
    return {
      liveBuffers: this.#live,
      liveBytes: this.#liveBytes,
      pooledBuffers: this.#pooled,
      pooledBytes: this.#pooledBytes,
    };
  }
}
