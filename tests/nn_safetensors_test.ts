// Tests for nn/io: the safetensors format (byte-exact against the reference writer's layout,
// every dtype, validation errors, the data checksum) and atomic file writes (a failed write leaves
// the old file and names the file; a full disk included; temporary files of dead writers are
// removed).
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  bf16BitsToFloat,
  CHECKSUM_KEY,
  decodeSafetensors,
  encodeSafetensors,
  floatToBf16Bits,
  floatToHalfBits,
  halfBitsToFloat,
  parseSafetensorsHeader,
  readSafetensorsFile,
  removeStaleTempFiles,
  SafetensorsChecksumError,
  writeFileAtomic,
  writeSafetensorsFile,
} from "../nn/io/mod.ts";

const enc = new TextEncoder();

/** Build a file by hand: header text (padded by the caller or not) + data bytes. */
function rawFile(header: string, data: Uint8Array = new Uint8Array()): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

Deno.test("safetensors: byte-exact with the reference writer (one F32 tensor)", () => {
  const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assertEquals(header.length, 64);
  const expected = rawFile(header, f32Bytes([0, 1, 2, 3, 4, 5]));
  const out = encodeSafetensors({
    "attn.0": { dtype: "F32", shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
  });
  assertEquals(out, expected);
  assertEquals(out[0], 64);
});

Deno.test("safetensors: header padded with spaces to a multiple of 8", () => {
  const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  const expected = rawFile(header + " ".repeat(7), f32Bytes([0, 1, 2, 3, 4, 5]));
  const out = encodeSafetensors({
    attn0: { dtype: "F32", shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
  });
  assertEquals(out, expected);
  assertEquals(out[0], 72);
});

Deno.test("safetensors: empty file and metadata-only file", () => {
  assertEquals(encodeSafetensors({}), rawFile("{}      "));
  const withMeta = encodeSafetensors({}, { framework: "pt" });
  assertEquals(withMeta, rawFile('{"__metadata__":{"framework":"pt"}}     '));
  assertEquals(decodeSafetensors(withMeta), { tensors: {}, metadata: { framework: "pt" } });
});

Deno.test("safetensors: layout order is dtype alignment then name; metadata first", () => {
  const out = encodeSafetensors(
    {
      b: { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
      a: { dtype: "F32", shape: [1], data: new Float32Array([1]) },
      c: { dtype: "I64", shape: [1], data: new BigInt64Array([5n]) },
      d: { dtype: "F64", shape: [1], data: new Float64Array([2]) },
      e: { dtype: "F16", shape: [1], data: new Float32Array([1]) },
      f: { dtype: "BF16", shape: [1], data: new Float32Array([1]) },
    },
    { k: "v" },
  );
  const h = parseSafetensorsHeader(out);
  assertEquals(Object.keys(h.entries), ["c", "d", "a", "f", "e", "b"]);
  const text = new TextDecoder().decode(out.subarray(8, h.dataStart));
  assert(text.startsWith('{"__metadata__":{"k":"v"},"c":'));
  assertEquals(h.dataStart % 8, 0);
  for (const e of Object.values(h.entries)) {
    const size = { I64: 8, F64: 8, F32: 4, I32: 4, BF16: 2, F16: 2, U8: 1 }[e.dtype]!;
    assertEquals(e.data_offsets[0] % size, 0);
  }
});

Deno.test("safetensors: round trip of every dtype", () => {
  const f32 = new Float32Array([0, -1.5, 3.25, 1e-3, -0]);
  const bytes = encodeSafetensors(
    {
      "w.f32": { dtype: "F32", shape: [5], data: f32 },
      "w.f64": { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      "w.f16": { dtype: "F16", shape: [2, 2], data: new Float32Array([1, -2, 0.5, 65504]) },
      "w.bf16": { dtype: "BF16", shape: [3], data: new Float32Array([1, -256, 0.15625]) },
      "w.i32": { dtype: "I32", shape: [2], data: new Int32Array([-2147483648, 2147483647]) },
      "w.i64": { dtype: "I64", shape: [], data: new BigInt64Array([-42n]) },
      "w.u8": { dtype: "U8", shape: [2, 1], data: new Uint8Array([0, 255]) },
      "w.empty": { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    },
    { format: "pt", note: "ünïcode ✓" },
  );
  const { tensors, metadata } = decodeSafetensors(bytes);
  assertEquals(metadata, { format: "pt", note: "ünïcode ✓" });
  assertEquals(tensors["w.f32"], { dtype: "F32", shape: [5], data: f32 });
  assertEquals(tensors["w.f64"].data, new Float64Array([Math.PI, -1e300]));
  assertEquals(tensors["w.f16"], {
    dtype: "F16",
    shape: [2, 2],
    data: new Float32Array([1, -2, 0.5, 65504]),
  });
  assertEquals(tensors["w.bf16"].data, new Float32Array([1, -256, 0.15625]));
  assertEquals(tensors["w.i32"].data, new Int32Array([-2147483648, 2147483647]));
  assertEquals(tensors["w.i64"], { dtype: "I64", shape: [], data: new Int32Array([-42]) });
  assertEquals(tensors["w.u8"].data, new Uint8Array([0, 255]));
  assertEquals(tensors["w.empty"].data, new Float32Array(0));
  // Re-encoding the decoded tensors reproduces the same bytes.
  assertEquals(encodeSafetensors(tensors, metadata), bytes);
});

Deno.test("safetensors: decoded data is a copy, and unaligned input buffers work", () => {
  const bytes = encodeSafetensors({
    x: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
  });
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const view = shifted.subarray(1);
  const { tensors } = decodeSafetensors(view);
  assertEquals(tensors.x.data, new Float32Array([1, 2]));
  view.fill(0);
  assertEquals(tensors.x.data, new Float32Array([1, 2]));
});

Deno.test("safetensors: encode accepts subarrays and converts other numeric arrays", () => {
  const big = new Float32Array([9, 1, 2, 9]);
  const { tensors } = decodeSafetensors(encodeSafetensors({
    a: { dtype: "F32", shape: [2], data: big.subarray(1, 3) },
    b: { dtype: "I32", shape: [2], data: new Float32Array([3, -4]) },
    c: { dtype: "I64", shape: [2], data: new Int32Array([7, -8]) },
    d: { dtype: "F16", shape: [1], data: new Uint16Array([0x3c00]) }, // raw half bits for 1.0
  }));
  assertEquals(tensors.a.data, new Float32Array([1, 2]));
  assertEquals(tensors.b.data, new Int32Array([3, -4]));
  assertEquals(tensors.c.data, new Int32Array([7, -8]));
  assertEquals(tensors.d.data, new Float32Array([1]));
});

Deno.test("safetensors: encode rejects bad input naming the tensor", () => {
  assertThrows(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
    Error,
    '"w" has 2 elements',
  );
  assertThrows(
    () => encodeSafetensors({ n: { dtype: "I32", shape: [1], data: new Float32Array([0.5]) } }),
    Error,
    '"n"',
  );
  assertThrows(
    () => encodeSafetensors({ q: { dtype: "Q4" as "F32", shape: [1], data: new Float32Array(1) } }),
    Error,
    "unsupported dtype",
  );
  assertThrows(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array() } }),
    Error,
    "invalid tensor name",
  );
  assertThrows(
    () => encodeSafetensors({ s: { dtype: "F32", shape: [-1], data: new Float32Array() } }),
    Error,
    "invalid shape",
  );
});

Deno.test("safetensors: I64 range check, or BigInt64Array on request", () => {
  const bytes = encodeSafetensors({
    steps: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, 1n << 40n]) },
  });
  assertThrows(() => decodeSafetensors(bytes), Error, '"steps" (I64) element 1');
  const { tensors } = decodeSafetensors(bytes, { int64: "bigint" });
  assertEquals(tensors.steps.data, new BigInt64Array([1n, 1n << 40n]));
});

Deno.test("safetensors: half and bfloat16 conversions round to nearest even", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff], // just below the rounding point to infinity
    [65520, 0x7c00], // rounds to infinity
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // halfway to zero: ties to even
    [1.5 * 2 ** -25, 0x0001],
    [2 ** -14, 0x0400], // smallest normal
    [1 + 2 ** -11, 0x3c00], // halfway: ties to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // halfway: ties to even (up)
    [1e-9, 0x0000],
  ];
  for (const [v, bits] of cases) assertEquals(floatToHalfBits(v), bits, `f16(${v})`);
  assert(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN))));
  assertEquals(halfBitsToFloat(0x0001), 2 ** -24);
  assertEquals(halfBitsToFloat(0x03ff), 1023 * 2 ** -24);
  assertEquals(halfBitsToFloat(0x7c00), Infinity);
  assertEquals(Object.is(halfBitsToFloat(0x8000), -0), true);
  // Every finite half value round-trips exactly.
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assertEquals(floatToHalfBits(halfBitsToFloat(h)), h);
  }
  assertEquals(floatToBf16Bits(1), 0x3f80);
  assertEquals(floatToBf16Bits(1 + 2 ** -8), 0x3f80); // tie to even
  assertEquals(floatToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assertEquals(floatToBf16Bits(-Infinity), 0xff80);
  assert(Number.isNaN(bf16BitsToFloat(floatToBf16Bits(NaN))));
  assertEquals(bf16BitsToFloat(0x4049), 3.140625);
});

Deno.test("safetensors: decode validation errors are clear and name the tensor", () => {
  const data16 = new Uint8Array(16);
  const bad = (header: string, data: Uint8Array, msg: string) =>
    assertThrows(() => decodeSafetensors(rawFile(header, data)), Error, msg);
  bad("{not json", data16, "not valid JSON");
  bad("[1,2]", data16, "not a JSON object");
  bad('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":5}', data16, '"b"');
  bad(
    '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}',
    data16,
    '"a" data_offsets [0, 32]',
  );
  bad('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', data16, '"a" has 16 bytes');
  bad(
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    data16,
    'tensor "b" overlaps tensor "a"',
  );
  bad('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', data16, 'gap before tensor "a"');
  bad('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data16, "cover 8");
  bad('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', data16, "reversed");
  bad('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data16, '"a" has invalid');
  bad('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}', data16, '"a" has an invalid');
  bad('{"a":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}}', data16, '"a" has unsupported');
  bad('{"__metadata__":{"x":1}}', new Uint8Array(), "__metadata__");
  assertThrows(() => decodeSafetensors(new Uint8Array(4)), Error, "too short");
  const long = rawFile("{}      ");
  long[0] = 200;
  assertThrows(() => decodeSafetensors(long), Error, "past the end");
  const huge = rawFile("{}      ");
  huge[6] = 1;
  assertThrows(() => decodeSafetensors(huge), Error, "too large");
  // A hand-written header in another key order, with trailing spaces, decodes.
  const ok = rawFile(
    '{"b":{"shape":[1],"dtype":"U8","data_offsets":[4,5]},' +
      '"a":{"data_offsets":[0,4],"dtype":"I32","shape":[1]}}  ',
    new Uint8Array([7, 0, 0, 0, 9]),
  );
  const { tensors } = decodeSafetensors(ok);
  assertEquals(tensors.a.data, new Int32Array([7]));
  assertEquals(tensors.b.data, new Uint8Array([9]));
});

Deno.test("safetensors: file write (atomic) and read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ckpt.safetensors`;
    await writeSafetensorsFile(path, {
      "etf.M": { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    }, { epoch: "3" });
    const { tensors, metadata } = await readSafetensorsFile(path);
    assertEquals(metadata.epoch, "3");
    assertEquals(tensors["etf.M"].shape, [2, 3]);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["ckpt.safetensors"]);
    await Deno.writeFile(path, new Uint8Array(3));
    const err = await readSafetensorsFile(path).then(() => null, (e: Error) => e);
    assert(err?.message.includes(path) && err.message.includes("too short"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A streaming data source; with `crash`, it throws after its chunks (a crash mid-write). */
async function* chunks(parts: string[], crash = false): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield enc.encode(p);
  if (crash) throw new Error("simulated crash");
}

Deno.test("atomic_file: writes text and bytes, replacing the old content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.txt`;
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, enc.encode("second"));
    assertEquals(await Deno.readTextFile(path), "second");
    await writeFileAtomic(path, chunks(["th", "ird"]));
    assertEquals(await Deno.readTextFile(path), "third");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic_file: a crash mid-write leaves the old file intact and no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    await writeFileAtomic(path, "old content");
    const err = await writeFileAtomic(path, chunks(["partial new bytes"], true)).then(
      () => null,
      (e: Error) => e,
    );
    assertEquals(err?.message, "simulated crash");
    assertEquals(await Deno.readTextFile(path), "old content");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
    // Writing into a missing folder fails cleanly too.
    const missing = await writeFileAtomic(`${dir}/nope/x`, "x").then(() => null, (e) => e);
    assert(missing instanceof Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** CRC-32 (IEEE 802.3, reflected, init and final xor 0xffffffff), bit by bit: an independent check. */
function crc32Reference(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

Deno.test("safetensors: data checksum written, verified, and a flipped bit refused", async () => {
  const tensors = {
    w: { dtype: "F32" as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    n: { dtype: "I32" as const, shape: [1], data: new Int32Array([7]) },
  };
  // encodeSafetensors stays byte-identical to the reference writer unless asked.
  const plain = encodeSafetensors(tensors, { format: "pt" });
  assertEquals(Object.keys(parseSafetensorsHeader(plain).metadata), ["format"]);
  const bytes = encodeSafetensors(tensors, { format: "pt" }, { checksum: true });
  const header = parseSafetensorsHeader(bytes);
  const want = crc32Reference(bytes.subarray(header.dataStart)).toString(16).padStart(8, "0");
  assertEquals(header.metadata, { format: "pt", [CHECKSUM_KEY]: want });
  // The header is still the standard one: __metadata__ first, string values only.
  const text = new TextDecoder().decode(bytes.subarray(8, header.dataStart));
  assert(text.startsWith('{"__metadata__":{"format":"pt","data_crc32":"'), text);
  assertEquals(decodeSafetensors(bytes).tensors.w.data, new Float32Array([1, 2, 3, 4]));

  const flipped = bytes.slice();
  flipped[header.dataStart + 5] ^= 0x10;
  const e = assertThrows(() => decodeSafetensors(flipped), SafetensorsChecksumError);
  assertStringIncludes(e.message, "does not match its checksum");
  assertEquals(e.stored, want);
  assertEquals(decodeSafetensors(flipped, { verify: false }).tensors.n.data, new Int32Array([7]));

  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await writeSafetensorsFile(path, tensors);
    const file = await Deno.readFile(path);
    assertEquals(parseSafetensorsHeader(file).metadata[CHECKSUM_KEY], want);
    file[file.length - 1] ^= 1;
    await Deno.writeFile(path, file);
    const err = await readSafetensorsFile(path).then(() => null, (x: Error) => x);
    assert(err?.message.startsWith(`${path}: `) && err.message.includes("damaged"), err?.message);
    await writeSafetensorsFile(path, tensors, undefined, { checksum: false });
    assertEquals(parseSafetensorsHeader(await Deno.readFile(path)).metadata, {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic_file: temporary files name their pid; stale ones are removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    let seen: string[] = [];
    const slow = async function* (): AsyncGenerator<Uint8Array> {
      yield enc.encode("part 1");
      seen = [...Deno.readDirSync(dir)].map((e) => e.name);
      yield enc.encode("part 2");
    };
    await writeFileAtomic(path, slow());
    assertEquals(seen.length, 1);
    assert(new RegExp(`^model\\.safetensors\\.${Deno.pid}-[0-9a-f]{12}\\.tmp$`).test(seen[0]));

    const dead = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await dead.status;
    const names = {
      dead: `last.safetensors.${dead.pid}-00112233aabb.tmp`,
      mine: `last.safetensors.${Deno.pid}-00112233aabb.tmp`,
      live: "best.safetensors.1-00112233aabb.tmp", // pid 1 runs
      old: "report.md.00112233aabb.tmp", // a version without pids in the name
      other: "notes.tmp",
    };
    for (const n of Object.values(names)) await Deno.writeTextFile(`${dir}/${n}`, "partial");
    assertEquals(await removeStaleTempFiles(dir), [names.dead]);
    const later = new Date(Date.now() + 60_000);
    assertEquals(await removeStaleTempFiles(dir, { olderThan: later }), [names.live, names.old]);
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [
        names.mine,
        "model.safetensors",
        "notes.tmp",
      ].sort(),
    );
    assertEquals(await removeStaleTempFiles(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A real full disk: a 64 KiB tmpfs, where this machine lets the test mount one (root).
const FULL = await Deno.makeTempDir({ prefix: "collapse_full_" });
const mounted = await new Deno.Command("mount", {
  args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", FULL],
  stdout: "null",
  stderr: "null",
}).output().then((r) => r.success, () => false);

Deno.test({
  name: "atomic_file: a full disk (ENOSPC) names the file; the old one stays, no temp file",
  ignore: !mounted,
  fn: async () => {
    try {
      const path = `${FULL}/last.safetensors`;
      const small = { w: { dtype: "F32" as const, shape: [4], data: new Float32Array(4) } };
      await writeSafetensorsFile(path, small);
      const before = await Deno.readFile(path);
      const big = { w: { dtype: "F32" as const, shape: [65536], data: new Float32Array(65536) } };
      const err = await writeSafetensorsFile(path, big).then(() => null, (e: Error) => e);
      assert(err, "the write failed");
      assertStringIncludes(err.message, `writing ${path}: No space left on device`);
      assertEquals((err as { code?: string }).code, "ENOSPC");
      assertEquals(await Deno.readFile(path), before);
      assertEquals([...Deno.readDirSync(FULL)].map((e) => e.name), ["last.safetensors"]);
    } finally {
      await new Deno.Command("umount", { args: [FULL] }).output();
      await Deno.remove(FULL, { recursive: true });
    }
  },
});
if (!mounted) await Deno.remove(FULL, { recursive: true });
