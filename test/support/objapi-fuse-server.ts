/**
 * A process serving one volume both ways for tests (never inside the test runner: a process that
 * serves a mount and makes blocking calls on it can deadlock): a FUSE mount and the object API,
 * over one SiltFileSystem, the API telling the mount of its changes (ObjectApiOptions.notify).
 *
 *   node --import tsx test/support/objapi-fuse-server.ts --store file:DIR --mountpoint MNT
 *        --user U --key K [--mkfs] [--no-notify]
 *
 * Prints "READY <port>" once both answer. SIGTERM closes the API, unmounts, commits, exits 0.
 */
import { parseArgs } from 'node:util';
import { openFileSystem } from '../../src/fs/index.ts';
import { serveFuse } from '../../src/fuse/index.ts';
import { startObjectApi } from '../../src/objapi/index.ts';
import { openStore } from '../../src/objstore/index.ts';
import { stderrLogger } from '../../src/util/log.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    mountpoint: { type: 'string' },
    user: { type: 'string' },
    key: { type: 'string' },
    mkfs: { type: 'boolean', default: false },
    'no-notify': { type: 'boolean', default: false },
  },
});
const { store: url, mountpoint, user, key } = values;
if (!url || !mountpoint || !user || !key) throw new Error('--store, --mountpoint, --user and --key are required');

const log = stderrLogger('warn');
const store = await openStore(url, { create: values.mkfs });
const fs = await openFileSystem({ store, create: values.mkfs, flushIntervalMs: 500, gcIntervalMs: 0, logger: log });
const fuse = await serveFuse(fs, mountpoint, { logger: log });
const api = await startObjectApi({
  fs,
  listen: { host: '127.0.0.1', port: 0 },
  credentials: [{ user, key }],
  logger: log,
  ...(values['no-notify'] ? {} : { notify: fuse }),
});
process.stdout.write(`READY ${api.address.port}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await api.close();
    await fuse.unmount({ lazy: true });
    await fs.close();
    await store.close();
    process.exit(0);
  } catch (err) {
    process.stderr.write(`stop failed: ${String(err)}\n`);
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
