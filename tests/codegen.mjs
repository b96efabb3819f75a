// Parse an AsyncAPI document with @asyncapi/parser and generate Java (Jackson) and TypeScript (marshalling) models
// from it with Modelina, as a counterpart's developer would: node codegen.mjs DOCUMENT OUT_DIR. Prints the model names
// (JSON); exits 3 when the parser reports errors.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import {
  GoFileGenerator, JavaFileGenerator, TypeScriptFileGenerator, GO_COMMON_PRESET, JAVA_JACKSON_PRESET, TS_COMMON_PRESET,
} from '@asyncapi/modelina';

const [, , documentPath, outDir] = process.argv;
const { document, diagnostics } = await new Parser().parse(readFileSync(documentPath, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.error(JSON.stringify(errors, null, 1));
  process.exit(3);
}
// Java with Jackson's annotations (the union types parse a document by its message_type); TypeScript classes
// with Modelina's marshalling (unmarshal / marshal).
const java = await new JavaFileGenerator({ presets: [JAVA_JACKSON_PRESET] }).generateToFiles(
  document, `${outDir}/java/org/launchrelay/model`, { packageName: 'org.launchrelay.model' }, true);
const typescript = await new TypeScriptFileGenerator({
  modelType: 'class', enumType: 'enum', presets: [{ preset: TS_COMMON_PRESET, options: { marshalling: true } }],
}).generateToFiles(document, `${outDir}/ts`, { exportType: 'named' }, true);
// Go structs with JSON tags (encoding/json)
const go = await new GoFileGenerator({ presets: [{ preset: GO_COMMON_PRESET, options: { addJsonTag: true } }] })
  .generateToFiles(document, `${outDir}/go`, { packageName: 'model' }, true);
console.log(JSON.stringify({
  java: java.map((m) => m.modelName), typescript: typescript.map((m) => m.modelName), go: go.map((m) => m.modelName),
}));
