// Writes the hash of the views' source at the top of the built bundle, so a test (in Python: users and CI need no
// Node for it) can tell whether the committed bundle was built from the committed source. Keep SOURCES in step
// with tests/unit/plugin/test_bundle.py.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const SOURCES = ["package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "stamp.mjs", "src"];
const BUNDLE = join(here, "..", "static", "supervisor.js");

function files(path) {
  return statSync(path).isDirectory()
    ? readdirSync(path).flatMap((name) => files(join(path, name)))
    : [path];
}

export function sourceHash() {
  const hash = createHash("sha256");
  const all = SOURCES.flatMap((name) => files(join(here, name)))
    .map((path) => relative(here, path).split("\\").join("/"))
    .sort();
  for (const name of all) {
    hash.update(`${name}\n`);
    hash.update(readFileSync(join(here, name)));
    hash.update("\n");
  }
  return hash.digest("hex");
}

const body = readFileSync(BUNDLE, "utf8").replace(/^\/\* supervisor-ui [^\n]*\*\/\n/u, "");
writeFileSync(BUNDLE, `/* supervisor-ui source-sha256:${sourceHash()} (built by: npm run build) */\n${body}`);
