/**
 * The kit's typings are the documentation consumers read in their editor: every export of
 * handlefs/testing has a doc comment, and so does every public member of what the kit itself
 * declares (src/testing/) and every field of its options and specs.
 */
import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function undocumented(): string[] {
  const entry = path.join(ROOT, 'src/testing/index.ts');
  const program = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const doc = (s: ts.Symbol) => ts.displayPartsToString(s.getDocumentationComment(checker)).trim() !== '';
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!)) {
    const name = exported.getName();
    const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!doc(sym)) missing.push(name);
    const decl = sym.declarations?.[0];
    if (decl === undefined || !(sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) continue;
    const ours = decl.getSourceFile().fileName.includes(`${path.sep}src${path.sep}testing${path.sep}`);
    const options = /(Options|Spec)$/.test(name) || name === 'Caller';
    if (!ours && !options) continue;
    for (const member of checker.getDeclaredTypeOfSymbol(sym).getProperties()) {
      const d = member.declarations?.[0];
      if (d === undefined || !d.getSourceFile().fileName.startsWith(path.join(ROOT, 'src'))) continue;
      const modifiers = ts.canHaveModifiers(d) ? (ts.getModifiers(d) ?? []) : [];
      if (modifiers.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword) || member.getName().startsWith('#')) continue;
      if (!doc(member)) missing.push(`${name}.${member.getName()}`);
    }
  }
  return missing;
}

test('every export of handlefs/testing, every public member the kit declares and every option has a doc comment', (t) => {
  t.timeout(60_000);
  t.deepEqual(undocumented(), []);
});
