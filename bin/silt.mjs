#!/usr/bin/env node
// The `silt` command. It runs the compiled JavaScript in dist/ (built by `npm ci` through the
// `prepare` script, or `npm run build`) when that build is current: no TypeScript transformer in
// the process, a faster start and a smaller server. A checkout whose src/ changed since the build
// (or was never built) runs the TypeScript sources through tsx's loader instead, so `npx silt`
// always runs what is in src/. SILT_RUN_SOURCES=1 forces the sources.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function buildIsCurrent() {
  if (process.env.SILT_RUN_SOURCES === '1') return false;
  const stampFile = join(root, 'dist', 'BUILD.json');
  if (!existsSync(stampFile) || !existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) return false;
  let built;
  try {
    built = JSON.parse(readFileSync(stampFile, 'utf8')).sourcesNewestMtimeMs;
  } catch {
    return false;
  }
  const src = join(root, 'src');
  if (!existsSync(src)) return true; // an installed package ships dist/ only
  const stack = [src];
  while (stack.length > 0) {
    const d = stack.pop();
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.name.endsWith('.ts') && statSync(p).mtimeMs > built) return false;
    }
  }
  return true;
}

if (buildIsCurrent()) {
  await import(pathToFileURL(join(root, 'dist', 'src', 'cli', 'main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  process.env.SILT_TSX_IMPORT ??= pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  await import('../src/cli/main.ts');
}
