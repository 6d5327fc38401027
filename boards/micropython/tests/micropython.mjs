// Runs selftest.py on MicroPython's WebAssembly port (the npm package
// @micropython/micropython-webassembly-pyscript), so that tether_board.py
// is checked by a real MicroPython interpreter:
//
//   NODE_PATH=<dir with node_modules> node micropython.mjs
//
// scripts/test installs the package and runs this.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(process.env.NODE_PATH || here, "x.js"));
const { loadMicroPython } = await import(require.resolve("@micropython/micropython-webassembly-pyscript"));
let out = "";
const mp = await loadMicroPython({
  stdout: (s) => { out += s + "\n"; process.stdout.write(s + "\n"); },
  stderr: (s) => process.stderr.write(s + "\n"),
});
for (const [name, path] of [["tether_board.py", join(here, "..", "tether_board.py")], ["selftest.py", join(here, "selftest.py")]]) {
  mp.FS.writeFile("/" + name, readFileSync(path, "utf8"));
}
try {
  await mp.runPythonAsync(`
import sys
print('MicroPython', sys.implementation.version)
import selftest
await selftest.main()
`);
} catch (e) {
  console.error(String(e));
  process.exit(1);
}
if (!out.includes("selftest ok")) {
  console.error("the self-test did not finish");
  process.exit(1);
}
