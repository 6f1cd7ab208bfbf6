/**
 * The crash campaign's model (crash-model.ts) rejects what the contract forbids: a check that
 * cannot fail proves nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/util/index.ts';
import { apply, compare, defaultShape, emptyState, randomOp, stateOf, type Observed, type Op, type State } from './crash-model.ts';

function observed(s: State): Observed {
  const paths: Observed['paths'] = new Map();
  for (const [p, id] of s.paths) {
    const n = s.nodes.get(id)!;
    const nlink = [...s.paths.values()].filter((x) => x === id).length;
    paths.set(p, { kind: n.kind, ino: id, nlink, mode: n.mode, data: n.data, target: n.target });
  }
  return { paths };
}

test('the model accepts its own states and rejects changed ones', () => {
  const rnd = new Random(42);
  let ids = 100;
  let names = 0;
  let s: State = emptyState;
  const ops: Op[] = [];
  for (let i = 0; i < 300; i++) {
    const o = randomOp(s, rnd, defaultShape, () => `n${names++}`);
    ops.push(o);
    s = apply(s, o, () => ids++);
  }
  assert.ok(new Set(ops.map((o) => o.op)).size >= 10, 'every kind of operation was generated');
  const obs = observed(s);
  assert.equal(compare(obs, s), undefined);
  assert.equal(compare(observed(stateOf(obs)), s), undefined, 'stateOf round-trips');
  const file = [...obs.paths].find(([, o]) => o.kind === 'file' && o.data.length > 10)!;
  // One byte changed, a file missing, an extra file, a mode, a link count, a symlink target.
  const tamper = (f: (o: Observed) => void): Observed => {
    const c: Observed = { paths: new Map([...obs.paths].map(([p, o]) => [p, { ...o, data: Buffer.from(o.data) }])) };
    f(c);
    return c;
  };
  assert.match(compare(tamper((c) => (c.paths.get(file[0])!.data[5]! ^= 1)), s) ?? '', /content differs/);
  assert.match(compare(tamper((c) => c.paths.delete(file[0])), s) ?? '', /paths differ/);
  assert.match(compare(tamper((c) => c.paths.set('extra', { ...file[1] })), s) ?? '', /paths differ/);
  assert.match(compare(tamper((c) => (c.paths.get(file[0])!.mode ^= 0o100)), s) ?? '', /mode/);
  assert.match(compare(tamper((c) => (c.paths.get(file[0])!.nlink += 1)), s) ?? '', /nlink/);
  // A write applied in part is accepted only against its own write, byte by byte.
  const w: Extract<Op, { op: 'write' }> = { op: 'write', path: file[0], offset: 2, data: Buffer.from([9, 9, 9, 9]) };
  const after = apply(s, w, () => ids++);
  const half = tamper((c) => {
    const d = c.paths.get(file[0])!.data;
    d[2] = 9;
    d[3] = 9; // two of the four bytes landed
  });
  assert.notEqual(compare(half, s), undefined);
  assert.notEqual(compare(half, after), undefined);
  assert.equal(compare(half, s, w), undefined);
  const wrong = tamper((c) => (c.paths.get(file[0])!.data[2] = 7));
  assert.match(compare(wrong, s, w) ?? '', /neither the old nor the written value/);
});
