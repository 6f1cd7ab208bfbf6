/**
 * A FUSE server process for tests (never run the server inside the test runner: a process that
 * both serves a mount and makes blocking calls on it can deadlock).
 *
 *   node --import tsx test/support/mount-server.ts --mountpoint DIR [--engine silt|devfs]
 *        [--store file:PATH] [--volume NAME] [--mkfs] [--sync-on-close] [--flush-interval-ms N]
 *
 * With --engine silt (the default) it runs the CLI's runMount() against the real engine. With
 * --engine devfs it serves the development double (FUSE-layer debugging only). Prints
 * "READY <mountpoint>" on stdout once the mount answers; exits after it is unmounted (umount, or
 * SIGTERM/SIGINT, which commit and unmount).
 */
import { parseArgs } from 'node:util';
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
    onReady: () => process.stdout.write(`READY ${mountpoint}\n`),
  });
  process.exit(0);
}
