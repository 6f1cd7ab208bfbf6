import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command, Option } from 'commander';
import {
  ConfigError,
  applySettings,
  checkValue,
  engineTuning,
  envName,
  flagName,
  locateConfig,
  readConfigJson,
  validateConfig,
} from '../../src/cli/config.ts';
import { Progress } from '../../src/cli/common.ts';
import { lineLogger } from '../../src/util/index.ts';

/** A small program shaped like silt's: shared options, a typed tuning option, a list, a negatable flag. */
function program(): Command {
  const p = new Command().exitOverride();
  const common = (c: Command): Command =>
    c
      .addOption(new Option('--store <url>', 'store').default('file:./silt-data'))
      .addOption(new Option('--volume <name>', 'volume').default('default'))
      .option('--config <file>', 'config')
      .option('--log-level <level>', 'level');
  common(p.command('mount').argument('<mp>'))
    .option('--flush-interval-ms <ms>', 'flush')
    .option('--metrics <host:port>', 'metrics')
    .option('--cache-bytes-max <bytes>', 'cache')
    .option('--sync-on-close', 'sync', false)
    .action(() => {});
  common(p.command('serve'))
    .option('--rpc <host:port>', 'rpc', '127.0.0.1:12345')
    .option('--mount <dir>', 'also mount')
    .option('--http-user <name>', 'users', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(() => {});
  common(p.command('gc'))
    .option('--force', 'force', false)
    .option('--no-compact', 'skip the cleaner')
    .option('--utilization <f>', 'fraction', '0.5')
    .action(() => {});
  return p;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'silt-config-'));
}

test('names: env vars and flags derive from the key', () => {
  assert.equal(envName('flushIntervalMs'), 'SILT_FLUSH_INTERVAL_MS');
  assert.equal(envName('store'), 'SILT_STORE');
  assert.equal(flagName('cacheBytesMax'), '--cache-bytes-max');
});

test('checkValue: ranges, byte suffixes, enums, addresses, booleans; what was expected and what came', () => {
  const bytes = { t: 'int', min: 1024 * 1024, max: 64 * 2 ** 30, unit: 'bytes' } as const;
  assert.deepEqual(checkValue(bytes, '64MiB'), { ok: true, value: 64 * 2 ** 20 });
  assert.deepEqual(checkValue(bytes, 2 ** 21), { ok: true, value: 2 ** 21 });
  assert.deepEqual(checkValue(bytes, '1TiB'), { ok: false, why: 'expected a whole number from 1 MiB to 64 GiB, got "1TiB"' });
  assert.deepEqual(checkValue(bytes, '100'), { ok: false, why: 'expected a whole number from 1 MiB to 64 GiB, got "100"' });
  const ms = { t: 'int', min: 0, max: 3_600_000, unit: 'ms' } as const;
  assert.deepEqual(checkValue(ms, '250'), { ok: true, value: 250 });
  assert.equal(checkValue(ms, '1.5').ok, false);
  assert.equal(checkValue(ms, '10MiB').ok, false, 'suffixes only for sizes');
  assert.equal(checkValue(ms, -1).ok, false);
  assert.deepEqual(checkValue({ t: 'enum', values: ['json', 'text'] }, 'xml'), { ok: false, why: 'expected one of json, text, got "xml"' });
  assert.equal(checkValue({ t: 'address' }, '127.0.0.1:9464').ok, true);
  assert.equal(checkValue({ t: 'address' }, '[::1]:9464').ok, true);
  assert.equal(checkValue({ t: 'address' }, '127.0.0.1:99999').ok, false);
  assert.equal(checkValue({ t: 'address' }, 'localhost').ok, false);
  assert.deepEqual(checkValue({ t: 'boolean' }, 'yes'), { ok: true, value: true });
  assert.deepEqual(checkValue({ t: 'boolean' }, '0'), { ok: true, value: false });
  assert.equal(checkValue({ t: 'boolean' }, 'maybe').ok, false);
  assert.equal(checkValue({ t: 'string' }, 5).ok, false, 'a number where a string is expected is a mistake');
  assert.deepEqual(checkValue({ t: 'list' }, 'a, b'), { ok: true, value: ['a', 'b'] });
  assert.deepEqual(checkValue({ t: 'number', min: 0, max: 1 }, '0.8'), { ok: true, value: 0.8 });
});

test('validateConfig: every problem, with file, key path, expectation; sections win and "mount" is both', () => {
  const p = program();
  const good = validateConfig(
    { store: 'file:/srv', mount: { flushIntervalMs: 250, cacheBytesMax: '128MiB' }, serve: { mount: '/mnt/x', httpUser: ['a', 'b'] }, '//': 'comment' },
    '/etc/silt.json',
    p.commands,
  );
  assert.deepEqual(good.top, { store: 'file:/srv' });
  assert.deepEqual(good.sections['mount'], { flushIntervalMs: 250, cacheBytesMax: 128 * 2 ** 20 });
  assert.deepEqual(good.sections['serve'], { mount: '/mnt/x', httpUser: ['a', 'b'] });

  let err: unknown;
  try {
    validateConfig(
      { stor: 'x', volume: 7, mount: { flushIntervalMs: 'soon', metrics: 'localhost', bogus: 1 }, serve: { rpc: '1.2.3.4:70000' }, force: true },
      '/etc/silt.json',
      p.commands,
    );
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.problems, [
    '/etc/silt.json: stor: unknown setting (did you mean "store"?)',
    '/etc/silt.json: volume: expected a string, got 7',
    '/etc/silt.json: mount.flushIntervalMs: expected a whole number from 0 to 3600000 (ms), got "soon"',
    '/etc/silt.json: mount.metrics: expected HOST:PORT, got "localhost"',
    '/etc/silt.json: mount.bogus: silt mount has no setting "bogus"',
    '/etc/silt.json: serve.rpc: expected HOST:PORT, got "1.2.3.4:70000"',
    '/etc/silt.json: force: unknown setting ("force" is taken from the command line only)',
  ]);
  assert.match(err.message, /^7 problems in the settings:\n {2}\/etc\/silt.json: stor: unknown setting/);
  assert.throws(() => validateConfig([1], '/x.json', p.commands), /\/x.json: expected a JSON object of settings/);
});

test('readConfigJson: a syntax error names the line and column', () => {
  const d = tmp();
  try {
    const f = join(d, 'c.json');
    writeFileSync(f, '{\n  "store": "file:/x",\n  "volume": }\n');
    assert.throws(() => readConfigJson(f), (e: Error) => e instanceof ConfigError && /c\.json: not valid JSON at line 3, column 13: unexpected '}'/.test(e.message));
    writeFileSync(f, '{"store": "a" "b"}');
    assert.throws(() => readConfigJson(f), /not valid JSON at line 1, column 15/);
    assert.throws(() => readConfigJson(join(d, 'none.json')), /none\.json: cannot read/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('locateConfig: --config, then SILT_CONFIG (both must exist), then ./silt.json, then ~/.config/silt/config.json', () => {
  const d = tmp();
  try {
    const home = join(d, 'home');
    const cwd = join(d, 'cwd');
    mkdirSync(join(home, '.config', 'silt'), { recursive: true });
    mkdirSync(cwd);
    const env = { HOME: home } as NodeJS.ProcessEnv;
    assert.equal(locateConfig(undefined, env, cwd), undefined);
    writeFileSync(join(home, '.config', 'silt', 'config.json'), '{}');
    assert.deepEqual(locateConfig(undefined, env, cwd), { path: join(home, '.config', 'silt', 'config.json'), from: 'default' });
    writeFileSync(join(cwd, 'silt.json'), '{}');
    assert.deepEqual(locateConfig(undefined, env, cwd), { path: join(cwd, 'silt.json'), from: 'default' });
    writeFileSync(join(d, 'env.json'), '{}');
    assert.deepEqual(locateConfig(undefined, { ...env, SILT_CONFIG: join(d, 'env.json') }, cwd), { path: join(d, 'env.json'), from: 'SILT_CONFIG' });
    writeFileSync(join(d, 'flag.json'), '{}');
    assert.deepEqual(locateConfig('../flag.json', { ...env, SILT_CONFIG: join(d, 'env.json') }, cwd), { path: join(d, 'flag.json'), from: '--config' });
    assert.throws(() => locateConfig(undefined, { ...env, SILT_CONFIG: join(d, 'gone.json') }, cwd), /gone\.json \(from SILT_CONFIG\) does not exist/);
    assert.throws(() => locateConfig('/no/such.json', env, cwd), /\/no\/such\.json \(from --config\) does not exist/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('applySettings: flag > environment > config section > config top level > default, each checked', async () => {
  const d = tmp();
  try {
    const cfg = join(d, 'c.json');
    writeFileSync(
      cfg,
      JSON.stringify({ store: 'file:/from-file', volume: 'top', mount: { volume: 'section', flushIntervalMs: 250, syncOnClose: true }, gc: { compact: false } }),
    );
    const run = async (argv: string[], env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> => {
      const p = program();
      let seen: Record<string, unknown> = {};
      p.hook('preAction', (_r, cmd) => {
        applySettings(cmd, p, env);
        seen = { ...cmd.opts(), _sources: Object.fromEntries(Object.keys(cmd.opts()).map((k) => [k, cmd.getOptionValueSource(k)])) };
      });
      await p.parseAsync(argv, { from: 'user' });
      return seen;
    };
    const env = { SILT_CONFIG: cfg, HOME: d } as NodeJS.ProcessEnv;
    let o = await run(['mount', '/mnt'], env);
    assert.equal(o['store'], 'file:/from-file', 'top level of the file');
    assert.equal(o['volume'], 'section', 'the command section beats the top level');
    assert.equal(o['flushIntervalMs'], 250, 'typed');
    assert.equal(o['syncOnClose'], true);
    assert.equal(o['logLevel'], undefined, 'unset stays unset: the layer default applies');
    assert.deepEqual((o['_sources'] as Record<string, string>)['store'], 'config');

    o = await run(['mount', '/mnt'], { ...env, SILT_VOLUME: 'env', SILT_FLUSH_INTERVAL_MS: '100', SILT_SYNC_ON_CLOSE: '0' });
    assert.equal(o['volume'], 'env', 'environment beats the file');
    assert.equal(o['flushIntervalMs'], 100);
    assert.equal(o['syncOnClose'], false);

    o = await run(['mount', '/mnt', '--volume', 'flag', '--flush-interval-ms', '5'], { ...env, SILT_VOLUME: 'env' });
    assert.equal(o['volume'], 'flag', 'a flag beats everything');
    assert.equal(o['flushIntervalMs'], 5, 'a flag is converted to its type too');
    assert.equal((o['_sources'] as Record<string, string>)['volume'], 'cli');

    o = await run(['gc'], { ...env, SILT_FORCE: '1' });
    assert.equal(o['force'], false, '--force comes from the command line only');
    assert.equal(o['compact'], false, 'a negatable flag is settable from the file');
    assert.equal(o['utilization'], '0.5', 'flag default kept when nothing sets it');

    o = await run(['serve'], { ...env, SILT_HTTP_USER: 'a,b', SILT_RPC_LISTEN: '127.0.0.1:1' });
    assert.deepEqual(o['httpUser'], ['a', 'b'], 'a list from a comma-separated variable');

    await assert.rejects(run(['mount', '/mnt'], { ...env, SILT_FLUSH_INTERVAL_MS: 'soon' }), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, 'SILT_FLUSH_INTERVAL_MS: expected a whole number from 0 to 3600000 (ms), got "soon"');
      return true;
    });
    await assert.rejects(run(['mount', '/mnt', '--metrics', 'nowhere'], env), /--metrics: expected HOST:PORT, got "nowhere"/);
    await assert.rejects(run(['mount', '/mnt', '--cache-bytes-max', '1KiB'], env), /--cache-bytes-max: expected a whole number from 1 MiB to 64 GiB, got "1KiB"/);
    writeFileSync(cfg, JSON.stringify({ serve: { rpc: 12345 } }));
    await assert.rejects(run(['mount', '/mnt'], env), /c\.json: serve\.rpc: expected HOST:PORT, got 12345/, 'the whole file is checked whatever the command');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('engineTuning: settings become the layers\' options, only those set', () => {
  const t = engineTuning({
    cacheBytesMax: 128 * 2 ** 20,
    inodeCacheMax: '1000',
    gcIntervalMs: 0,
    rpcInflightMax: 8,
    storeConnections: 4,
    storeConnectTimeoutMs: 250,
    storeRetryAttempts: 1,
    volume: 'x',
  });
  assert.deepEqual(t.volume, { cacheBytesMax: 128 * 2 ** 20 });
  assert.deepEqual(t.inode, { inodeCacheMax: 1000 });
  assert.equal(t.gcIntervalMs, 0);
  assert.deepEqual(t.rpc, { inflightMax: 8 });
  assert.deepEqual(t.store, { connections: 4, timeouts: { connectMs: 250 }, retry: { attempts: 1 } });
  assert.deepEqual(engineTuning({}), { volume: {}, inode: {}, rpc: {}, store: {} });
});

test('logs: JSON lines with level, time and the whole cause chain; text lines for terminals; levels filter', () => {
  const lines: string[] = [];
  const log = lineLogger({ level: 'info', format: 'json', write: (l) => lines.push(l), now: () => 0 });
  const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const store = Object.assign(new Error('swift GET /x: cannot reach 127.0.0.1:1', { cause: socket }), { kind: 'unavailable' });
  log.debug('hidden');
  log.error('I/O error', { err: new Error('EIO: read failed', { cause: store }), big: 5n });
  assert.equal(lines.length, 1, 'debug is below info');
  assert.ok(lines[0]!.endsWith('\n'));
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: '1970-01-01T00:00:00.000Z',
    level: 'error',
    msg: 'I/O error',
    big: '5',
    err: {
      name: 'Error',
      message: 'EIO: read failed',
      cause: { name: 'Error', message: 'swift GET /x: cannot reach 127.0.0.1:1', kind: 'unavailable', cause: { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:1', code: 'ECONNREFUSED' } },
    },
  });
  const text: string[] = [];
  const t = lineLogger({ level: 'warn', format: 'text', write: (l) => text.push(l), now: () => 0 });
  t.info('hidden');
  t.warn('mount refused', { mountpoint: '/mnt/a b', n: 3 });
  assert.deepEqual(text, ['1970-01-01T00:00:00.000Z WARN  mount refused mountpoint="/mnt/a b" n=3\n']);
});

test('Progress: silent when not a terminal; a bar and percentage when it is', () => {
  const out: string[] = [];
  const quiet = new Progress({ isTTY: false, write: (s) => (out.push(s), true) });
  quiet.update('gc: deleted 1 of 2', 1, 2);
  quiet.done();
  assert.equal(out.length, 0, "nothing written off a terminal");
  const tty = new Progress({ isTTY: true, columns: 200, write: (s) => (out.push(s), true) });
  tty.update('gc: deleted 5 of 10 objects', 5, 10);
  assert.equal(out.length, 1);
  assert.match(out[0]!, /^\r\x1b\[Kgc: deleted 5 of 10 objects \[#{10}\.{10}\] {2}50% \d+ s$/);
  tty.done();
  assert.equal(out[1], '\r\x1b[K');
});
