/**
 * cli: the `silt` command. Parses flags, calls the layers below, prints results for people (or
 * JSON for scripts), and turns every failure into one clear line and an exit code:
 * 0 success, 1 problems found (fsck), 2 could not run.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { runFsck, runGc, runMkfs, runSnapshot } from './admin.ts';
import { CliError, DEFAULT_STORE, DEFAULT_VOLUME, configureLogging, configureStore, describe, logger } from './common.ts';
import { ConfigError, applySettings, configReference, engineTuning, flagName, locateConfig, readConfigJson, validateConfig, SETTINGS, describeKind, envName, formatDefault } from './config.ts';
import { runStat } from './stat.ts';
import { registerSmbCommand } from './smb.ts';
import { registerServeCommand } from './serve.ts';

/** package.json: two levels up from src/cli, three from the compiled dist/src/cli. */
function readPackageJson(): { version: string } {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (p.name === 'silt') return p;
    } catch {
      // not there: try the next
    }
  }
  return { version: 'unknown' };
}
const pkg = readPackageJson();

const program = new Command();
program
  .name('silt')
  .description('Silt: a POSIX file system stored as a log in an object store (Swift, S3, or a local directory).')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError('(run silt --help for usage)')
  .addHelpText(
    'after',
    `
Store URLs:
  file:PATH                         a local directory (default ${DEFAULT_STORE})
  swift+http://HOST:PORT/auth/v1.0  OpenStack Swift (SILT_SWIFT_USER, SILT_SWIFT_KEY)
  s3+http://HOST:PORT/BUCKET        S3, path style (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)
  memory:NAME                       in-process memory (tests)

Settings: a flag, else its SILT_* environment variable, else the configuration file (--config FILE,
$SILT_CONFIG, ./silt.json or ~/.config/silt/config.json), else the default. See docs/CONFIG.md.

Examples:
  silt mkfs --store file:/srv/silt
  silt mount --store file:/srv/silt /mnt/silt --background
  silt fsck --store file:/srv/silt
  silt stat --store file:/srv/silt --json`,
  );

// Defaults only: SILT_STORE, SILT_VOLUME and the configuration file are applied to every option
// of every command alike (applySettings, in the preAction hook below).
const storeOption = (): Option => new Option('-s, --store <url>', 'object store URL').default(DEFAULT_STORE);
const volumeOption = (): Option => new Option('-v, --volume <name>', 'volume name').default(DEFAULT_VOLUME);

program
  .command('mkfs')
  .description('create a volume (an empty file system) in a store')
  .addOption(storeOption())
  .addOption(volumeOption())
  .addHelpText('after', '\nExample:\n  silt mkfs --store file:/tmp/v')
  .action(async (o: { store: string; volume: string }) => {
    await runMkfs(o);
  });

program
  .command('fsck')
  .description('check a volume: exit 0 clean, 1 problems found, 2 could not run')
  .addOption(storeOption())
  .addOption(volumeOption())
  .option('--json', 'print the full report as JSON', false)
  .option('--no-data', 'skip reading and checksumming file data (metadata only)')
  .addHelpText('after', '\nExample:\n  silt fsck --store file:/tmp/v --json')
  .action(async (o: { store: string; volume: string; json: boolean; data: boolean }) => {
    process.exitCode = await runFsck(o);
  });

program
  .command('stat')
  .description("show a volume's health at a glance: commit, inodes, segments, live vs stored bytes")
  .addOption(storeOption())
  .addOption(volumeOption())
  .option('--json', 'print JSON', false)
  .addHelpText('after', '\nExamples:\n  silt stat --store file:/srv/silt\n  silt stat --store swift+http://127.0.0.1:8080/auth/v1.0 --volume projects --json')
  .action(async (o: { store: string; volume: string; json: boolean }) => {
    await runStat(o);
  });

program
  .command('gc')
  .description('reclaim space: rewrite mostly-dead segments, delete objects no commit references')
  .addOption(storeOption())
  .addOption(volumeOption())
  .option('--dry-run', 'only report what would be deleted', false)
  .option('--force', 'run even if the volume committed in the last 30 s (it may be served)', false)
  .option('--json', 'print the report as JSON', false)
  .option('--no-compact', 'skip the cleaner (only delete wholly dead objects)')
  .option('--utilization <fraction>', 'clean segments less live than this', '0.5')
  .addHelpText('after', '\nExamples:\n  silt gc --store file:/tmp/v --dry-run\n  silt gc --store file:/tmp/v --utilization 0.8')
  .action(
    async (o: { store: string; volume: string; dryRun: boolean; force: boolean; json: boolean; compact: boolean; utilization: string }) => {
      const utilization = Number(o.utilization);
      if (!(utilization >= 0 && utilization <= 1)) throw new CliError(`--utilization must be between 0 and 1, not ${o.utilization}`);
      await runGc({ ...o, utilization });
    },
  );

program
  .command('snapshot')
  .description('create, list or delete read-only snapshots of a volume (nothing is copied)')
  .argument('<action>', 'create, list or delete')
  .argument('[name]', 'snapshot name')
  .addOption(storeOption())
  .addOption(volumeOption())
  .option('--force', 'create/delete even if the volume committed in the last 30 s', false)
  .option('--json', 'list as JSON', false)
  .addHelpText('after', '\nExamples:\n  silt snapshot create nightly --store file:/tmp/v\n  silt snapshot list --store file:/tmp/v')
  .action(async (action: string, name: string | undefined, o: { store: string; volume: string; force: boolean; json: boolean }) => {
    await runSnapshot(action, name, o);
  });

interface MountFlags {
  store: string;
  volume: string;
  mkfs: boolean;
  background: boolean;
  syncOnClose: boolean;
  flushIntervalMs?: string;
  snapshot?: string;
  metrics?: string;
  remote?: string;
  token?: string;
  takeover?: boolean;
  logLevel?: string;
  nonEmpty?: boolean;
}

program
  .command('mount')
  .description('mount a volume with FUSE (runs until unmounted, or returns once mounted with --background)')
  .argument('<mountpoint>', 'an empty directory')
  .addOption(storeOption())
  .addOption(volumeOption())
  .option('--mkfs', 'create the volume first if it does not exist', false)
  .option('--background', 'return once the mount answers; the server keeps running', false)
  .option('--sync-on-close', 'close() of a written file returns after a durable commit', false)
  .option('--flush-interval-ms <ms>', 'commit dirty state at least this often (default 1000)')
  .option('--snapshot <name>', 'mount a snapshot, read-only')
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .option('--remote <host:port>', 'mount a volume that `silt serve` owns there (an agent over RPC)')
  .option('--token <token>', 'the RPC token of the --remote server (default SILT_TOKEN)')
  .option('--takeover', "take the volume's owner lease even from a live owner (waits its lease out, about 30 s, then fences it)")
  .option('--log-level <level>', 'debug, info, warn or error')
  .addHelpText('after', '\nExamples:\n  silt mount --store file:/tmp/v /mnt/v --mkfs\n  SILT_TOKEN=... silt mount --remote 10.0.0.5:12345 /mnt/v\n  silt mount --store file:/tmp/v /mnt/snap --snapshot nightly\n  silt umount /mnt/v')
  .option('--non-empty', 'mount even over a directory that holds files (they are hidden while mounted)', false)
  .action(async (mountpoint: string, o: MountFlags) => {
    await mount(mountpoint, o, o as unknown as Record<string, unknown>);
  });

program
  .command('umount')
  .alias('unmount')
  .description('commit and unmount a mounted volume')
  .argument('<mountpoint>')
  .addHelpText('after', '\nExample:\n  silt umount /mnt/silt      # returns once the final commit is durable')
  .action(async (mountpoint: string) => {
    const { runUmount } = await import('./mount.ts');
    try {
      await runUmount(mountpoint);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/busy/i.test(msg)) {
        throw new CliError(
          `${msg}: the mount is busy (a process has a file open or its working directory there): close it ` +
            `(find it with: fuser -vm ${mountpoint}), or stop the server with SIGTERM, which detaches the mount lazily`,
        );
      }
      throw e;
    }
  });

program
  .command('start')
  .description('the quick start: a volume in ./silt-data mounted at ./silt-mnt (Ctrl-C stops it)')
  .option('--store <url>', 'object store URL', DEFAULT_STORE)
  .option('--mountpoint <dir>', 'where to mount', './silt-mnt')
  .addHelpText('after', '\nExample:\n  npm start        # the same as: npx silt start')
  .action(async (o: { store: string; mountpoint: string }) => {
    const { mkdirSync } = await import('node:fs');
    const { resolve } = await import('node:path');
    const mp = resolve(o.mountpoint);
    mkdirSync(mp, { recursive: true });
    process.stdout.write(
      `Silt: mounting volume "${DEFAULT_VOLUME}" from ${o.store} at ${mp}\n\n` +
        `  Use it like any directory, from another terminal:\n` +
        `    cp -r ~/some/files ${mp}/   ls -l ${mp}   cat ${mp}/...\n` +
        `  Check it:   npx silt fsck --store ${o.store}\n` +
        `  Its health: npx silt stat --store ${o.store}\n` +
        `  Stop:       Ctrl-C here (commits and unmounts; your files stay in ${o.store.replace(/^file:/, '')})\n\n`,
    );
    await mount(mp, { store: o.store, volume: DEFAULT_VOLUME, mkfs: true, background: false, syncOnClose: false });
  });

async function mount(mountpoint: string, o: MountFlags, tuning: Record<string, unknown> = {}): Promise<void> {
  const { runMount } = await import('./mount.ts');
  const { checkCanMount } = await import('./mountcheck.ts');
  await checkCanMount(mountpoint, { nonEmpty: o.nonEmpty === true });
  if (o.metrics !== undefined && o.background) {
    // The background server would fail on a busy port only in its log: try the port here first.
    const { parseListen, serveMetrics } = await import('../util/index.ts');
    const { host, port } = parseListen(o.metrics, 9464);
    const probe = await serveMetrics(host, port);
    await new Promise((r) => probe.server.close(r));
  }
  let flushIntervalMs: number | undefined;
  if (o.flushIntervalMs !== undefined) {
    flushIntervalMs = Number(o.flushIntervalMs);
    if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0) {
      throw new CliError(`--flush-interval-ms must be a whole number of milliseconds, not ${o.flushIntervalMs}`);
    }
  }
  await runMount({
    store: o.store,
    volume: o.volume,
    mountpoint,
    mkfs: o.mkfs,
    background: o.background,
    syncOnClose: o.syncOnClose,
    ...(flushIntervalMs !== undefined ? { flushIntervalMs } : {}),
    ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}),
    ...(o.metrics !== undefined ? { metrics: o.metrics } : {}),
    ...(o.remote !== undefined ? { remote: o.remote } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.takeover ? { takeover: true } : {}),
    tuning: engineTuning(tuning),
    logger: logger(o.logLevel),
  });
}

registerSmbCommand(program);
registerServeCommand(program);

program
  .command('bench')
  .description('a quick self-check of a mounted directory: big file write/read, small files, stat')
  .argument('<dir>', 'the directory to test (any file system); work happens in a temporary folder inside it')
  .option('--big-file-size <MiB>', 'size of the big file, MiB (0 skips it)', '1024')
  .option('--small-file-size <KiB>', 'size of each small file, KiB', '128')
  .option('--small-files <n>', 'small files per thread (0 skips them)', '100')
  .option('-p, --threads <n>', 'concurrent workers', '1')
  .option('--json', 'print the results as JSON', false)
  .addHelpText('after', '\nExamples:\n  silt bench /mnt/silt\n  silt bench /mnt/silt --big-file-size 256 --small-files 500 -p 4 --json')
  .action(async (dir: string, o: { bigFileSize: string; smallFileSize: string; smallFiles: string; threads: string; json: boolean }) => {
    const { runBench } = await import('./bench.ts');
    await runBench({ dir, bigFileMiB: Number(o.bigFileSize), smallFileKiB: Number(o.smallFileSize), smallFiles: Number(o.smallFiles), threads: Number(o.threads), json: o.json });
  });
// Register further commands above this line: what follows adds the settings options to all of them.

program
  .command('config')
  .description('check the configuration file, show the settings a command would run with, or print the reference')
  .argument('<action>', 'check, show or reference')
  .argument('[command]', 'for show: the command whose settings to show (default mount)')
  .addHelpText(
    'after',
    `
Settings come from flags, then SILT_* environment variables, then the configuration file (--config
FILE, else $SILT_CONFIG, else ./silt.json, else ~/.config/silt/config.json), then defaults.
See docs/CONFIG.md and silt.example.json.

Examples:
  silt config check --config /etc/silt.json
  silt config show serve --config /etc/silt.json      # each value and where it came from
  silt config reference > docs/CONFIG-reference.md`,
  )
  .action(async (action: string, command: string | undefined, o: { config?: string }) => {
    if (action === 'reference') {
      process.stdout.write(configReference(program));
      return;
    }
    if (action === 'check') {
      const loc = locateConfig(o.config);
      if (!loc) {
        process.stdout.write('no configuration file (none given with --config or SILT_CONFIG; no ./silt.json or ~/.config/silt/config.json)\n');
        return;
      }
      validateConfig(readConfigJson(loc.path), loc.path, program.commands);
      process.stdout.write(`${loc.path} (found by ${loc.from}): valid\n`);
      return;
    }
    if (action === 'show') {
      const target = program.commands.find((c) => c.name() === (command ?? 'mount'));
      if (!target) throw new CliError(`silt config show: no command ${command}; one of ${program.commands.map((c) => c.name()).join(', ')}`);
      if (o.config !== undefined) target.setOptionValueWithSource('config', o.config, 'cli');
      const r = applySettings(target, program);
      // Secrets (keys, tokens, passwords) are shown as set or not, never printed.
      const secret = /key|token|password|secret/i;
      const settings = Object.fromEntries(
        Object.entries(r.values).map(([k, v]) => [k, secret.test(k) && v.value !== undefined ? { ...v, value: '(set, hidden)' } : v]),
      );
      process.stdout.write(JSON.stringify({ command: target.name(), file: r.file?.path ?? null, settings }, null, 2) + '\n');
      return;
    }
    throw new CliError(`silt config: unknown action ${action}: use check, show or reference`);
  });

// Every command takes --config, --log-level and --log-format, and the tuning settings (caches,
// queues, timeouts) of the layers it runs; flag > SILT_* > configuration file > default for all.
for (const cmd of program.commands) {
  const has = (long: string): boolean => cmd.options.some((opt) => opt.long === long);
  if (!has('--config')) cmd.addOption(new Option('--config <file>', 'configuration file (default $SILT_CONFIG, ./silt.json, ~/.config/silt/config.json)'));
  if (!has('--log-level')) cmd.addOption(new Option('--log-level <level>', 'debug, info, warn or error (default info)'));
  if (!has('--log-format')) cmd.addOption(new Option('--log-format <format>', 'json or text (default: text on a terminal, else json)'));
  for (const s of SETTINGS) {
    if (s.tuning === undefined || !s.commands?.includes(cmd.name()) || has(flagName(s.key))) continue;
    cmd.addOption(
      new Option(`${flagName(s.key)} <${s.kind.t === 'int' && s.kind.unit === 'bytes' ? 'bytes' : s.kind.t === 'int' && s.kind.unit === 'ms' ? 'ms' : 'n'}>`, `${s.description} (default ${formatDefault(s)}; ${describeKind(s.kind)}; ${envName(s.key)})`).helpGroup(
        'Limits and timeouts:',
      ),
    );
  }
}

program.hook('preAction', (_root, actionCommand) => {
  const r = applySettings(actionCommand, program);
  const o = actionCommand.opts<Record<string, unknown>>();
  configureLogging(o['logLevel'] as string | undefined, o['logFormat'] as string | undefined);
  // A background mount's server process inherits these.
  if (typeof o['logLevel'] === 'string') process.env['SILT_LOG_LEVEL'] = o['logLevel'];
  if (typeof o['logFormat'] === 'string') process.env['SILT_LOG_FORMAT'] = o['logFormat'];
  configureStore(engineTuning(o).store);
  if (r.file) logger().debug('configuration file', { path: r.file.path, from: r.file.from });
});

/** The whole command tree, for tests that inspect it (help texts) without running a command. */
export { program };

// SILT_CLI_NO_PARSE=1: build the commands only (a test imports this module to read every help text).
if (process.env['SILT_CLI_NO_PARSE'] !== '1') {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const e = err instanceof ConfigError ? new CliError(err.message) : describe(err);
    process.stderr.write(`silt: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
}
