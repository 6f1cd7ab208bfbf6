/**
 * Runs the object-store conformance table against the in-process backends: MemoryStore, a
 * FaultyStore wrapper with every fault switched off (it must be a transparent pass-through), and
 * LocalStore opened through `openStore('file:...')` on a temporary directory.
 */
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conformanceCases } from './objstore-conformance.ts';
import { FaultyStore, MemoryStore, openStore, type ObjectStore } from '../../src/objstore/index.ts';
import { Random } from '../../src/util/index.ts';

function suite(name: string, open: () => Promise<ObjectStore>, cleanup: () => Promise<void> = async () => {}): void {
  describe(`conformance: ${name}`, () => {
    let store: ObjectStore;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
      await cleanup();
    });
    for (const [i, c] of conformanceCases.entries()) {
      // A prefix per case, so cases cannot see each other's objects.
      test(c.name, () => c.run(store, `case${String(i).padStart(2, '0')}/`));
    }
  });
}

suite('MemoryStore', async () => new MemoryStore('conformance'));
suite('FaultyStore(MemoryStore), faults off', async () => new FaultyStore(new MemoryStore(), { random: new Random(1) }));

let dir = '';
suite(
  'LocalStore',
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'silt-conformance-'));
    return openStore(`file:${dir}`);
  },
  () => rm(dir, { recursive: true, force: true }),
);
