#!/usr/bin/env node
// The `silt` command. Silt is TypeScript run through tsx's loader (no build step), so `npx silt`
// works right after `npm ci`. Child processes and worker threads get the loader via SILT_TSX_IMPORT.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

register();
process.env.SILT_TSX_IMPORT ??= pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
await import('../src/cli/main.ts');
