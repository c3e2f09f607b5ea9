// Builds dist/: index.html (served no-cache) and content-hashed assets (served immutable).
// The output depends only on the sources and the locked packages: CI rebuilds it and
// fails when it differs from the committed dist/.

import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { basename, extname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const dist = "dist";
await rm(dist, { recursive: true, force: true });
await mkdir(join(dist, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { main: "src/main.tsx", style: "src/style.css" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(dist, "assets"),
  entryNames: "[name]-[hash]",
  charset: "utf8",
  legalComments: "eof",
  metafile: true,
  // The console (/admin) is a chunk of its own, imported when it is opened: a player's
  // page does not download it. What both use is a shared chunk, preloaded by index.html.
  splitting: true,
  chunkNames: "[name]-[hash]",
  logLevel: "warning",
});

const out = (entry) => {
  const [path] = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === entry) ?? [];
  if (!path) throw new Error(`no output for ${entry}`);
  return "/" + relative(dist, path);
};

// Static files get their content hash in the name too.
const icon = await readFile("static/icon.svg");
const iconName = `assets/icon-${createHash("sha256").update(icon).digest("hex").slice(0, 8).toUpperCase()}.svg`;
await writeFile(join(dist, iconName), icon);

// The chunks the page's script imports statically, fetched at once rather than after it.
const mainOutput = result.metafile.outputs[join(dist, out("src/main.tsx").slice(1))];
const preload = (mainOutput?.imports ?? [])
  .filter((i) => i.kind === "import-statement")
  .map((i) => `<link rel="modulepreload" href="/${relative(dist, i.path)}">`)
  .join("\n    ");
const html = (await readFile("src/index.html", "utf8"))
  .replace("%PRELOAD%", preload)
  .replace("%JS%", out("src/main.tsx"))
  .replace("%CSS%", out("src/style.css"))
  .replace("%ICON%", "/" + iconName);
await writeFile(join(dist, "index.html"), html);

let raw = 0;
let gz = 0;
for (const f of [...(await readdir(join(dist, "assets"))).map((f) => join(dist, "assets", f)), join(dist, "index.html")]) {
  const body = await readFile(f);
  const z = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gz += z;
  console.log(`${basename(f).padEnd(28)} ${String(body.length).padStart(8)} B  ${String(z).padStart(7)} B gzip  ${extname(f)}`);
}
console.log(`${"total".padEnd(28)} ${String(raw).padStart(8)} B  ${String(gz).padStart(7)} B gzip`);
