/**
 * The layering rule of the design: nothing below the handlers imports proto or Connect types. Only
 * `src/rpc/` and `src/server/` know the transport; the domain (core, pipeline, router, providers, ledger, keys, errors,
 * cache, limits) speaks in LlmError and gRPC code names, so Connect never loads under the router.
 * Read from the source's import statements with the TypeScript parser; nothing is run.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOMAIN = ["core", "pipeline", "router", "providers", "ledger", "keys", "errors", "cache", "limits"].map((d) => join(ROOT, "src", d));

interface ImportRef {
  specifier: string;
  /** Erased by the compiler (`import type`, or only `type` bindings): it loads nothing at run time. */
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const parsed = new Map<string, ImportRef[]>();

function importsOf(file: string): ImportRef[] {
  const known = parsed.get(file);
  if (known !== undefined) return known;
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, false);
  const refs: ImportRef[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const onlyTypeNames =
        clause !== undefined &&
        clause.name === undefined &&
        bindings !== undefined &&
        ts.isNamedImports(bindings) &&
        bindings.elements.length > 0 &&
        bindings.elements.every((e) => e.isTypeOnly);
      refs.push({ specifier: node.moduleSpecifier.text, typeOnly: (clause?.isTypeOnly ?? false) || onlyTypeNames });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      refs.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg !== undefined && ts.isStringLiteral(arg)) refs.push({ specifier: arg.text, typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      refs.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  parsed.set(file, refs);
  return refs;
}

/** A relative specifier as the .ts file it names, or undefined for a package. */
function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return resolve(dirname(from), specifier.replace(/\.js$/, ".ts"));
}

const isConnect = (specifier: string) => specifier === "@connectrpc/connect" || specifier.startsWith("@connectrpc/");
/** Connect, protobuf runtime, or generated proto code. */
function isTransport(from: string, specifier: string): boolean {
  if (isConnect(specifier) || specifier.startsWith("@bufbuild/")) return true;
  const local = resolveLocal(from, specifier);
  return local !== undefined && relative(ROOT, local).startsWith("gen/");
}

const domainFiles = DOMAIN.flatMap(sourceFiles);

describe("layers", () => {
  it("finds the domain's files", () => {
    expect(domainFiles.length).toBeGreaterThan(50);
  });

  it("no domain file imports Connect, protobuf or generated proto code, not even as a type", () => {
    const offenders = domainFiles.flatMap((file) =>
      importsOf(file)
        .filter((ref) => isTransport(file, ref.specifier))
        .map((ref) => `${relative(ROOT, file)} imports ${ref.specifier}`),
    );
    expect(offenders).toEqual([]);
  });

  it("no domain file loads Connect through the files it imports", () => {
    const offenders: string[] = [];
    for (const start of domainFiles) {
      // Depth-first over value imports of src files, keeping the path that led to each file.
      const seen = new Set<string>();
      const stack: { file: string; path: string[] }[] = [{ file: start, path: [] }];
      while (stack.length > 0) {
        const { file, path } = stack.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        for (const ref of importsOf(file)) {
          if (ref.typeOnly) continue;
          if (isConnect(ref.specifier)) {
            offenders.push([start, ...path].map((f) => relative(ROOT, f)).join(" → ") + ` → ${ref.specifier}`);
            continue;
          }
          const next = resolveLocal(file, ref.specifier);
          if (next !== undefined && next.startsWith(join(ROOT, "src"))) stack.push({ file: next, path: [...path, next] });
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
