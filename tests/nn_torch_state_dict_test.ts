// PyTorch state dicts both ways, for the CIFAR ResNet-32 with the ETF head and torchvision's
// ResNet-50 (10 classes): names, shapes, dtypes (num_batches_tracked I64 included), values,
// and the logits of the same weights in PyTorch.
//
// Weights and the input come from a formula of (tensor name, index in PyTorch's layout), computed
// here and in tests/fixtures/torch_resnets.py. With /usr/bin/python3 and torch installed, PyTorch
// itself writes the state dict we import and loads (strict) the one we export, live. Without it,
// the committed goldens tests/fixtures/torch/<model>.json (torch's state_dict names, shapes and
// dtypes, and its logits for the formula weights; regenerate with the commands in their
// `generatedBy`) stand in for it (COLLAPSE_TEST_NO_TORCH=1 takes that path where torch exists).
import { assert, assertEquals } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { tensor, writeTensor } from "../gpu/tensor.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsInput,
} from "../nn/io/safetensors.ts";
import type { ClassifierModel } from "../nn/model/classifier.ts";
import { resnet32 } from "../nn/models/resnet32.ts";
import { resnet50 } from "../nn/models/resnet50.ts";
import { exportTorchStateDict, importTorchStateDict } from "../nn/models/torch_state_dict.ts";

await initDevice();

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./fixtures/torch_resnets.py", import.meta.url).pathname;

async function hasTorch(): Promise<boolean> {
  if (Deno.env.get("COLLAPSE_TEST_NO_TORCH")) return false; // exercise the golden path
  try {
    const r = await new Deno.Command(PYTHON, { args: ["-c", "import torch, numpy"] }).output();
    return r.success;
  } catch {
    return false;
  }
}
const TORCH = await hasTorch();
if (!TORCH) console.log("torch state-dict tests: no PyTorch at /usr/bin/python3; using goldens");

async function python(args: string[]): Promise<{ logits: number[] }> {
  const r = await new Deno.Command(PYTHON, { args: [SCRIPT, ...args] }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

interface Golden {
  inputShape: [number, number, number, number];
  stateDict: [string, number[], "F32" | "I64"][];
  logits: number[];
}

// --- the formula (same as torch_resnets.py) ---------------------------------------------------
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** The formula tensor of `name` in PyTorch's layout (the same arithmetic as the Python side). */
function formula(name: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const kind = name.endsWith("running_var") || (shape.length === 1 && name.endsWith("weight"))
    ? 0
    : shape.length === 1
    ? 1
    : 2;
  const s = kind === 2 ? Math.sqrt(3 / (n / shape[0])) : 0;
  const seed = fnv1a(name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = (seed + Math.imul(i, 2654435761 | 0)) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d) >>> 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b) >>> 0;
    h ^= h >>> 16;
    const u = (h >>> 0) / 4294967296;
    out[i] = kind === 0 ? 0.5 + u : kind === 1 ? 0.2 * (u - 0.5) : (2 * u - 1) * s;
  }
  return out;
}

function formulaInput(shape: readonly number[]): Float32Array {
  return formula("input", [shape.reduce((a, b) => a * b, 1)]).map((v) => v * 5);
}

/** The same values in collapse's layout (HWIO convs, [in, out] linear kernels), indexed here. */
function collapseLayout(name: string, torchShape: number[], f: Float32Array): Float32Array {
  if (torchShape.length === 4) {
    const [o, i, kh, kw] = torchShape;
    const out = new Float32Array(f.length);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let c = 0; c < i; c++) {
          for (let k = 0; k < o; k++) {
            out[((y * kw + x) * i + c) * o + k] = f[((k * i + c) * kh + y) * kw + x];
          }
        }
      }
    }
    return out;
  }
  if (torchShape.length === 2 && !name.endsWith(".etf")) {
    const [o, i] = torchShape;
    const out = new Float32Array(f.length);
    for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) out[c * o + r] = f[r * i + c];
    return out;
  }
  return f;
}

// --- the models --------------------------------------------------------------------------------
const MODELS: Record<string, () => ClassifierModel> = {
  resnet32_etf: () => resnet32({ numClasses: 10, head: "etf", seed: 1 }),
  resnet50: () => resnet50({ numClasses: 10, seed: 1 }),
};

async function golden(model: string): Promise<Golden> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`./fixtures/torch/${model}.json`, import.meta.url)),
  );
}

async function logitsOf(m: ClassifierModel, g: Golden): Promise<Float32Array> {
  const x = tensor(formulaInput(g.inputShape), g.inputShape);
  const y = m.predict(x);
  const out = await y.data() as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

function assertLogitsClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assertEquals(got.length, want.length, `${what}: logit count`);
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert(diff <= 1e-4 * scale + 1e-6, `${what}: max |diff| ${diff} for max |logit| ${scale}`);
}

for (const name of Object.keys(MODELS)) {
  Deno.test(`torch -> collapse: ${name} imports PyTorch's state dict and computes its logits`, async () => {
    const g = await golden(name);
    const dir = await Deno.makeTempDir();
    const path = `${dir}/${name}.safetensors`;
    let want = g.logits;
    if (TORCH) {
      want = (await python(["make", name, path])).logits; // written by torch itself
      assertLogitsClose(want, g.logits, "live torch vs golden");
    } else {
      const tensors: Record<string, SafetensorsInput> = {};
      for (const [n, shape, dtype] of g.stateDict) {
        tensors[n] = dtype === "I64"
          ? { dtype, shape, data: new BigInt64Array(1) }
          : { dtype, shape, data: formula(n, shape) };
      }
      await Deno.writeFile(path, encodeSafetensors(tensors, { format: "pt" }));
    }
    const m = MODELS[name]();
    m.build([-1, ...g.inputShape.slice(1)]);
    const report = await importTorchStateDict(m, path);
    assertEquals(report.missing, []);
    assertEquals(report.unexpected, []);
    assertEquals(report.loaded.length, m.weights().length);
    assertLogitsClose(await logitsOf(m, g), want, `${name} logits`);
    m.dispose();
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`collapse -> torch: ${name} exports torch's names, layouts and num_batches_tracked; PyTorch loads it strictly`, async () => {
    const g = await golden(name);
    const m = MODELS[name]();
    m.build([-1, ...g.inputShape.slice(1)]);
    const shapes = new Map(g.stateDict.map(([n, s]) => [n, s]));
    const expected = new Map<string, Float32Array>();
    for (const w of m.weights()) {
      const s = shapes.get(w.name);
      assert(s, `${w.name} is not in PyTorch's state dict`);
      const f = formula(w.name, s);
      expected.set(w.name, f);
      writeTensor(w.value, collapseLayout(w.name, s, f));
    }
    const dir = await Deno.makeTempDir();
    const path = `${dir}/${name}.safetensors`;
    await exportTorchStateDict(m, path);
    const file = decodeSafetensors(await Deno.readFile(path), { int64: "bigint" });
    const byName = (a: unknown[][]) => [...a].sort((x, y) => String(x[0]) < String(y[0]) ? -1 : 1);
    assertEquals(
      byName(Object.entries(file.tensors).map(([n, t]) => [n, t.shape, t.dtype])),
      byName(g.stateDict),
      "names, shapes and dtypes as torch's state_dict()",
    );
    for (const [n, , dtype] of g.stateDict) {
      const data = file.tensors[n].data;
      if (dtype === "I64") {
        assertEquals([...data as BigInt64Array], [0n], n);
        continue;
      }
      const f = expected.get(n)!;
      let same = f.length === data.length;
      for (let i = 0; same && i < f.length; i++) same = f[i] === data[i];
      assert(same, `${n}: values in torch layout`);
    }
    const got = await logitsOf(m, g);
    assertLogitsClose(got, g.logits, `${name} logits vs torch's golden`);
    if (TORCH) {
      const live = await python(["load", name, path]); // load_state_dict(strict=True)
      assertLogitsClose(live.logits, got, `${name}: torch on the exported file`);
    }
    m.dispose();
    await Deno.remove(dir, { recursive: true });
  });
}
