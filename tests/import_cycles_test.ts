// The module graph has no import cycle inside nn/ or gpu/ (type-only imports count: they tie
// files together for readers and the type checker alike), and the folders of nn/ depend on each
// other one way (e.g. nn/model uses nn/training, never the reverse). The graph comes from
// `deno info --json` over a root that imports every file of those folders.
import { assert, assertEquals } from "@std/assert";
import { dirname, fromFileUrl, join, toFileUrl } from "jsr:@std/path@^1";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(rel));
    else if (e.name.endsWith(".ts")) out.push(rel);
  }
  return out.sort();
}

/** file (repo-relative) -> the repo files it imports (code or type imports). */
async function moduleGraph(files: string[]): Promise<Map<string, Set<string>>> {
  const tmp = await Deno.makeTempDir();
  try {
    const rootFile = join(tmp, "all.ts");
    await Deno.writeTextFile(
      rootFile,
      files.map((f) => `import "${toFileUrl(join(ROOT, f)).href}";`).join("\n") + "\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", rootFile],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
      }[];
    };
    const rootUrl = toFileUrl(ROOT).href.replace(/\/?$/, "/");
    const rel = (s: string) => s.startsWith(rootUrl) ? s.slice(rootUrl.length) : null;
    const graph = new Map<string, Set<string>>();
    for (const m of info.modules) {
      const from = rel(m.specifier);
      if (!from) continue;
      const deps = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const t of [d.code?.specifier, d.type?.specifier]) {
          const to = t ? rel(t) : null;
          if (to) deps.add(to);
        }
      }
      graph.set(from, deps);
    }
    return graph;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The strongly connected components with more than one node (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The graph restricted to files under one of `prefixes`. */
function within(graph: Map<string, Set<string>>, prefixes: string[]): Map<string, Set<string>> {
  const keep = (f: string) => prefixes.some((p) => f.startsWith(p));
  const g = new Map<string, Set<string>>();
  for (const [f, deps] of graph) if (keep(f)) g.set(f, new Set([...deps].filter(keep)));
  return g;
}

/**
 * The folder graph of nn/: a node per subfolder (nn/model, nn/training, ...) and per top-level
 * file (nn/types.ts, ...); the `mod.ts` re-export files are left out (they aggregate, by design).
 */
function nnFolders(graph: Map<string, Set<string>>): Map<string, Set<string>> {
  const node = (f: string) => dirname(f) === "nn" ? f : dirname(f);
  const g = new Map<string, Set<string>>();
  for (const [f, deps] of within(graph, ["nn/"])) {
    if (f.endsWith("/mod.ts")) continue;
    const from = node(f);
    const set = g.get(from) ?? new Set<string>();
    for (const d of deps) if (!d.endsWith("/mod.ts") && node(d) !== from) set.add(node(d));
    g.set(from, set);
  }
  return g;
}

const files = [...await sourceFiles("nn"), ...await sourceFiles("gpu")];
const graph = await moduleGraph(files);

Deno.test("no import cycle among the files of nn/ and gpu/ (gpu/ops included)", () => {
  assert(graph.size >= files.length, `graph has ${graph.size} of ${files.length} files`);
  assertEquals(cycles(within(graph, ["nn/", "gpu/"])), []);
});

Deno.test("the folders of nn/ depend on each other one way", () => {
  const found = cycles(nnFolders(graph));
  assertEquals(found, [], `folder cycles: ${JSON.stringify(found)}`);
});

Deno.test("the cycle finder finds a cycle (self-check)", () => {
  const g = new Map([
    ["nn/model/a.ts", new Set(["nn/training/b.ts"])],
    ["nn/training/b.ts", new Set(["nn/training/c.ts"])],
    ["nn/training/c.ts", new Set(["nn/model/a.ts"])],
    ["nn/layers/d.ts", new Set<string>()],
  ]);
  assertEquals(cycles(g), [["nn/model/a.ts", "nn/training/b.ts", "nn/training/c.ts"]]);
  assertEquals(cycles(nnFolders(g)), [["nn/model", "nn/training"]]);
});
