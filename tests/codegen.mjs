// Parse an AsyncAPI document with @asyncapi/parser and generate Java and TypeScript models from it with
// Modelina, as a counterpart's developer would: node codegen.mjs DOCUMENT OUT_DIR. Prints the model names
// (JSON); exits 3 when the parser reports errors.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { JavaFileGenerator, TypeScriptFileGenerator } from '@asyncapi/modelina';

const [, , documentPath, outDir] = process.argv;
const { document, diagnostics } = await new Parser().parse(readFileSync(documentPath, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.error(JSON.stringify(errors, null, 1));
  process.exit(3);
}
const java = await new JavaFileGenerator().generateToFiles(
  document, `${outDir}/java/org/launchrelay/model`, { packageName: 'org.launchrelay.model' }, true);
const typescript = await new TypeScriptFileGenerator({ modelType: 'interface', enumType: 'enum' }).generateToFiles(
  document, `${outDir}/ts`, { exportType: 'named' }, true);
console.log(JSON.stringify({ java: java.map((m) => m.modelName), typescript: typescript.map((m) => m.modelName) }));
