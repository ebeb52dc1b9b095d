/**
 * The one lazily acquired WebGPU adapter and device: adapter selection (power preference; the backend
 * through Deno's `DENO_WEBGPU_BACKEND`), adapter info and limits read before `requestDevice`, limits
 * raised to what the adapter offers, and clear errors when WebGPU or an adapter is missing.
 * @module
 */

/** What the adapter told us about itself, read before the device was requested. */
export interface AdapterSummary {
  /** The adapter's vendor (`GPUAdapterInfo.vendor`), e.g. "nvidia" or "mesa". */
  vendor: string;
  /** The adapter's architecture (`GPUAdapterInfo.architecture`); may be empty. */
  architecture: string;
  /** The adapter's device name (`GPUAdapterInfo.device`); may be empty. */
  device: string;
  /** A readable adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** True for software adapters such as Mesa's lavapipe/llvmpipe. */
  isFallbackAdapter: boolean;
  /** The backend asked for through `DENO_WEBGPU_BACKEND`, if any. */
  backend: string | null;
  /** The adapter's limits (`GPUSupportedLimits`) by name. */
  limits: Record<string, number>;
  /** The adapter's optional features (`GPUSupportedFeatures`). */
  features: string[];
}

/** Options for {@link initDevice}. */
export interface DeviceOptions {
  /** Adapter preference, as in `navigator.gpu.requestAdapter`. */
  powerPreference?: GPUPowerPreference;
  /** Ask for a fallback (software) adapter. */
  forceFallbackAdapter?: boolean;
}

/** The acquired device with what we know of its adapter. */
export interface GpuContext {
  /** The WebGPU device every tensor and kernel uses. */
  device: GPUDevice;
  /** What the adapter reported before the device was requested. */
  adapter: AdapterSummary;
  /** Required binding alignment for storage buffer offsets, in bytes. */
  storageAlign: number;
}

let current: Promise<GpuContext> | null = null;
let resolved: GpuContext | null = null;
let lostReason: string | null = null;

const LIMITS_TO_RAISE = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** A message that says what is missing and how to get it, for each platform we know. */
export function missingAdapterHelp(): string {
  const os = Deno.build.os;
  const lines = [
    "Install a WebGPU-capable driver:",
    os === "linux"
      ? "  Linux without a GPU: `apt-get install mesa-vulkan-drivers` (Mesa's lavapipe software " +
        "adapter); with a GPU, its Vulkan driver. Pick a backend with DENO_WEBGPU_BACKEND=vulkan|gl " +
        "(with a Vulkan driver installed, collapse asks for vulkan unless the variable is set)."
      : os === "darwin"
      ? "  macOS: Metal is built in; check that the machine has a Metal-capable GPU."
      : "  Windows: install a current GPU driver (DirectX 12 or Vulkan).",
  ];
  return lines.join("\n");
}

/**
 * One line naming an adapter: its description (else its device name), vendor and architecture,
 * "(software adapter)" for a fallback one, and the backend asked for through
 * `DENO_WEBGPU_BACKEND`.
 *
 * @example
 * ```ts
 * import { adapterLabel, initDevice } from "./device.ts";
 * const { adapter } = await initDevice();
 * // e.g. "llvmpipe (LLVM 15.0.6, 256 bits), 65541 (software adapter) [backend vulkan]"
 * console.log(adapterLabel(adapter));
 * ```
 */
export function adapterLabel(a: AdapterSummary): string {
  const parts = [a.description || a.device, a.vendor, a.architecture].filter(Boolean);
  return (parts.join(", ") || "unnamed adapter") +
    (a.isFallbackAdapter ? " (software adapter)" : "") +
    (a.backend ? ` [backend ${a.backend}]` : "");
}

/**
 * Acquires (once) the adapter and device. Later calls return the same context.
 *
 * @example
 * ```ts
 * import { initDevice } from "./device.ts";
 * const ctx = await initDevice();
 * console.log(ctx.adapter.description);
 * ```
 */
export function initDevice(options: DeviceOptions = {}): Promise<GpuContext> {
  if (current) return current;
  current = acquire(options).then((ctx) => (resolved = ctx)).catch((e) => {
    current = null;
    throw e;
  });
  return current;
}

/** The device acquired by {@link initDevice}; throws if it has not been awaited yet or was lost. */
export function gpu(): GpuContext {
  if (lostReason) throw new Error(`WebGPU device was lost: ${lostReason}`);
  if (!resolved) {
    throw new Error("collapse: call `await initDevice()` before using GPU tensors or ops");
  }
  return resolved;
}

/** Whether a device has been acquired. */
export function hasDevice(): boolean {
  return resolved !== null;
}

/**
 * Sets a private `XDG_RUNTIME_DIR` (created with mode 0700) for this process when it is unset or
 * not an absolute path, as on a server or in a container without a login session: Mesa's drivers
 * connect to Wayland while the adapter is enumerated, and libwayland prints
 * `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` otherwise. Best effort: without
 * the permissions to read the environment or create the folder, nothing changes. Returns the folder
 * set, or null.
 */
export function ensureRuntimeDir(): string | null {
  try {
    if (Deno.build.os === "windows" || Deno.build.os === "darwin") return null;
    if (Deno.env.get("XDG_RUNTIME_DIR")?.startsWith("/")) return null;
    const base = Deno.env.get("TMPDIR")?.startsWith("/") ? Deno.env.get("TMPDIR")! : "/tmp";
    let dir = `${base}/collapse-runtime-${Deno.uid() ?? "user"}`;
    try {
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const st = Deno.lstatSync(dir);
    if (!st.isDirectory || st.uid !== Deno.uid() || ((st.mode ?? 0) & 0o077) !== 0) {
      dir = Deno.makeTempDirSync({ dir: base, prefix: "collapse-runtime-" }); // 0700, ours
    }
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
    return dir;
  } catch {
    return null;
  }
}

/** Folders where the Vulkan loader finds installed drivers (ICD manifests) on Linux. */
const VULKAN_ICD_DIRS = [
  "/usr/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/usr/local/etc/vulkan/icd.d",
];

function hasVulkanDriver(): boolean {
  if (Deno.env.get("VK_ICD_FILENAMES") || Deno.env.get("VK_DRIVER_FILES")) return true;
  const home = Deno.env.get("HOME");
  const dataDirs = (Deno.env.get("XDG_DATA_DIRS") ?? "").split(":").filter((d) => d);
  const dirs = [
    ...VULKAN_ICD_DIRS,
    ...dataDirs.map((d) => `${d}/vulkan/icd.d`),
    ...(home ? [`${home}/.local/share/vulkan/icd.d`] : []),
  ];
  for (const dir of dirs) {
    try {
      for (const e of Deno.readDirSync(dir)) if (e.name.endsWith(".json")) return true;
    } catch { /* no such folder */ }
  }
  return false;
}

/**
 * On Linux with a Vulkan driver installed, asks Deno's WebGPU for the Vulkan backend only (sets
 * `DENO_WEBGPU_BACKEND=vulkan` for this process) unless the variable chooses already. With every
 * backend enabled, wgpu also initialises OpenGL through EGL; libglvnd's EGL then keeps per-thread
 * state whose destructor can free memory a second time when a thread that requested an adapter
 * exits while the process exits (`double free or corruption`, `corrupted size vs. prev_size`,
 * or a crash in whatever library's teardown touches the damaged heap next). Returns the backend
 * set, or null. `DENO_WEBGPU_BACKEND=gl` (or `vulkan,gl`) still selects OpenGL explicitly.
 */
export function preferVulkanBackend(): string | null {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("DENO_WEBGPU_BACKEND") !== undefined) return null;
    if (!hasVulkanDriver()) return null;
    Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
    return "vulkan";
  } catch {
    return null;
  }
}

async function acquire(options: DeviceOptions): Promise<GpuContext> {
  ensureRuntimeDir();
  preferVulkanBackend();
  const nav = globalThis.navigator as Navigator & { gpu?: GPU };
  if (!nav?.gpu) {
    throw new Error(
      "collapse: WebGPU is not available (`navigator.gpu` is undefined). Use Deno >= 2.0 " +
        "(`npm install -g deno`), where WebGPU is stable.\n" + missingAdapterHelp(),
    );
  }
  const adapter = await nav.gpu.requestAdapter({
    powerPreference: options.powerPreference,
    forceFallbackAdapter: options.forceFallbackAdapter,
  });
  if (!adapter) {
    throw new Error(
      "collapse: no WebGPU adapter found (navigator.gpu.requestAdapter() returned null).\n" +
        missingAdapterHelp(),
    );
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    limits[key] = (adapter.limits as unknown as Record<string, number>)[key];
  }
  const summary: AdapterSummary = {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    device: info.device ?? "",
    description: info.description ?? "",
    isFallbackAdapter: Boolean(
      info.isFallbackAdapter ??
        (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    limits,
    features: [...adapter.features],
  };
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMITS_TO_RAISE) {
    if (limits[key] !== undefined) requiredLimits[key] = limits[key];
  }
  const wanted = (["timestamp-query", "shader-f16"] as GPUFeatureName[]).filter((f) =>
    adapter.features.has(f)
  );
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: wanted as GPUFeatureName[],
  });
  device.lost.then((info) => {
    if (info.reason !== "destroyed") lostReason = `${info.reason}: ${info.message}`;
  });
  return {
    device,
    adapter: summary,
    // The device's limit, not the adapter's: the device is created with the default
    // (256) unless this limit is requested, and bindings are validated against the device's.
    storageAlign: device.limits.minStorageBufferOffsetAlignment ?? 256,
  };
}
