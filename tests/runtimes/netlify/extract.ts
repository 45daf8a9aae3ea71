// Unpacks the eszip that @netlify/edge-bundler made into a folder Deno can run: every module
// at its path under `out`, the bundle's import map and its stage-2 entry (what Netlify's
// runtime loads) with their `file:///` specifiers moved under `out`. Run with the import map
// of the eszip reader the bundler vendors (deno/vendor/import_map.json, copied out of
// node_modules).
//   deno run --no-config --import-map=<vendor>/import_map.json --allow-read --allow-write extract.ts <eszip> <out>
import { Parser } from 'https://deno.land/x/eszip@v0.55.2/mod.ts';

const [eszip, out] = Deno.args;
const parser = await Parser.createInstance();
const specifiers: string[] = await parser.parseBytes(await Deno.readFile(eszip));
await parser.load();
const moved = (text: string) => text.replaceAll('file:///', `file://${out}/`);
for (const specifier of specifiers) {
  const source: string = await parser.getModuleSource(specifier);
  if (specifier === 'netlify:import-map') {
    await Deno.writeTextFile(`${out}/import_map.json`, moved(source));
  } else if (specifier === 'netlify:bootstrap-stage2') {
    await Deno.writeTextFile(`${out}/stage2.js`, moved(source));
  } else if (specifier.startsWith('file:///')) {
    const path = `${out}/${specifier.slice('file:///'.length)}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    await Deno.writeTextFile(path, source);
  }
}
console.log(JSON.stringify({ modules: specifiers }));
