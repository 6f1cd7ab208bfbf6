/**
 * A FUSE server process for tests (never run the server inside the test runner: a process that
 * both serves a mount and makes blocking calls on it can deadlock).
 *
 *   node --import tsx test/support/mount-server.ts --mountpoint DIR [--engine silt|devfs]
 *        [--store file:PATH] [--volume NAME] [--mkfs] [--sync-on-close] [--flush-interval-ms N]
 *
 * With --engine silt (the default) it runs the CLI's runMount() against the real engine. With
 * --engine devfs it serves the development double (FUSE-layer debugging only; no committed test
 * uses it). Prints "READY <mountpoint>" on stdout once the mount answers; exits after it is
 * unmounted (umount, or SIGTERM/SIGINT, which commit and unmount).
 *
 * Test controls (real engine only):
 * - SIGUSR1 prints "STATS <json>": INIT results, requests by opcode, largest READ/WRITE seen,
 *   lookup counts and open handles held for the kernel.
 * - SIGUSR2 runs the JSON commands in the file named by $SILT_TEST_CONTROL through the engine
 *   directly (behind the kernel's back) and then invalidates the kernel's caches, as another front
 *   end in the same process would; prints "CONTROL done" or "CONTROL error <message>".
 *   Commands: {"op":"write","path":"a/b","text":"..."} (overwrite from offset 0, same length or
 *   longer) and {"op":"create","path":"a/new","text":"..."}.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { rootIdentity, type SiltFileSystem } from '../../src/fs/index.ts';
import type { FuseServer } from '../../src/fuse/index.ts';
import { stderrLogger } from '../../src/util/log.ts';

const { values } = parseArgs({
  options: {
    mountpoint: { type: 'string' },
    engine: { type: 'string', default: 'silt' },
    store: { type: 'string' },
    volume: { type: 'string', default: 'default' },
    mkfs: { type: 'boolean', default: false },
    'sync-on-close': { type: 'boolean', default: false },
    'flush-interval-ms': { type: 'string' },
    trace: { type: 'boolean', default: false },
  },
});

const logger = stderrLogger(values.trace ? 'debug' : 'info');
const mountpoint = values.mountpoint;
if (!mountpoint) throw new Error('--mountpoint is required');

function stats(server: FuseServer): string {
  return JSON.stringify({
    connection: server.connection,
    counts: Object.fromEntries(server.session.counts),
    sizes: server.session.sizes,
    lookups: server.bridge.lookupCounts.size,
    openHandles: server.bridge.openHandles,
    pending: server.session.pending,
  });
}

interface Command {
  op: 'write' | 'create';
  path: string;
  text: string;
}

async function control(server: FuseServer, fsys: SiltFileSystem): Promise<void> {
  const file = process.env['SILT_TEST_CONTROL'];
  if (!file) throw new Error('SILT_TEST_CONTROL is not set');
  const cmds = JSON.parse(readFileSync(file, 'utf8')) as Command[];
  for (const c of cmds) {
    const data = Buffer.from(c.text);
    if (c.op === 'write') {
      const a = await fsys.lookupPath(rootIdentity, c.path);
      await fsys.open(rootIdentity, a.ino, 2);
      await fsys.write(rootIdentity, a.ino, 0, data);
      await fsys.release(a.ino, true);
      await server.invalidateInode(a.ino, 0, 0);
    } else {
      const parent = await fsys.lookupPath(rootIdentity, path.dirname(c.path));
      const name = path.basename(c.path);
      const a = await fsys.create(rootIdentity, parent.ino, name, 0o644);
      await fsys.open(rootIdentity, a.ino, 2);
      await fsys.write(rootIdentity, a.ino, 0, data);
      await fsys.release(a.ino, true);
      await server.invalidateEntry(parent.ino, name);
      await server.invalidateInode(parent.ino, -1, 0);
    }
  }
}

if (values.engine === 'devfs') {
  const { DevFs } = await import('./devfs.ts');
  const { serveFuse } = await import('../../src/fuse/index.ts');
  const fs = new DevFs();
  const server = await serveFuse(fs, mountpoint, { logger, fsname: 'silt:devfs', trace: values.trace });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.unmount().catch(() => server.unmount({ lazy: true }));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGUSR1', () => process.stdout.write(`STATS ${stats(server)}\n`));
  process.stdout.write(`READY ${mountpoint}\n`);
  await server.closed;
  process.exit(0);
} else {
  const { runMount } = await import('../../src/cli/mount.ts');
  const store = values.store;
  if (!store) throw new Error('--store is required for --engine silt');
  const flush = values['flush-interval-ms'];
  await runMount({
    store,
    volume: values.volume ?? 'default',
    mountpoint,
    mkfs: values.mkfs ?? false,
    background: false,
    syncOnClose: values['sync-on-close'] ?? false,
    ...(flush !== undefined && { flushIntervalMs: Number(flush) }),
    logger,
    onServer: (server, fsys) => {
      process.on('SIGUSR1', () => process.stdout.write(`STATS ${stats(server)}\n`));
      process.on('SIGUSR2', () => {
        control(server, fsys).then(
          () => process.stdout.write('CONTROL done\n'),
          (e: unknown) => process.stdout.write(`CONTROL error ${e instanceof Error ? e.message : String(e)}\n`),
        );
      });
    },
    onReady: () => process.stdout.write(`READY ${mountpoint}\n`),
  });
  process.exit(0);
}
