// Parse each file named on the command line with the TypeScript models Modelina generated (compiled to CommonJS
// in MODELS_DIR), as a counterpart's TypeScript system would: the class its message_type names, unmarshal, then
// marshal back. One line per file, "<class> <JSON>" or "FAIL <file>: <why>"; exit 1 when any failed.
const fs = require('node:fs');
const path = require('node:path');
const CLASSES = { planned_launch: 'PlannedLaunch', amendment: 'Amendment', cancellation: 'Cancellation',
  completed_launch: 'CompletedLaunch', acknowledgement: 'Acknowledgement', receipt: 'Receipt' };
const [, , modelsDir, ...files] = process.argv;
let failed = 0;
for (const file of files) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const name = CLASSES[JSON.parse(text).message_type];
    const model = require(path.resolve(modelsDir, `${name}.js`))[name];
    console.log(`${name} ${model.unmarshal(text).marshal()}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${file}: ${String(e).split('\n')[0]}`);
  }
}
process.exit(failed ? 1 : 0);
