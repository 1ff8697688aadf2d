import { execFile, spawnSync } from 'node:child_process';
import { access, appendFile, chown, constants, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of a test's own, for what the shared test server does not allow
 * and must not be changed for (max_prepared_transactions is 0 there, and changing it
 * takes a restart of a server other suites are using). Made with initdb in a temporary
 * folder, it listens on 127.0.0.1 only, on a free port, with its socket in that folder;
 * stop ends it and removes the folder.
 */
export type PrivatePostgres = {
  /** The `postgres` database, as the superuser `postgres` (trusted: the cluster is reachable from this machine only). */
  readonly url: string;
  readonly port: number;
  /** The temporary folder of its data, socket and log. */
  readonly folder: string;
  /** Stops the server and removes its folder. Safe to call again, and after a failed start. */
  readonly stop: () => Promise<void>;
};

/** Server settings (postgresql.conf) on top of those the fixture sets itself: `{ max_prepared_transactions: 5 }`. */
export type PrivatePostgresSettings = Readonly<Record<string, string | number>>;

const superuser = 'postgres';

/**
 * Where initdb and pg_ctl are: pg_config's bindir, else the newest of Debian's and Ubuntu's
 * side-by-side versions. pg_config may come with libpq alone, naming the bindir of a
 * version whose server is not installed; so the folder is checked for initdb.
 */
async function serverBinaries(): Promise<string> {
  const candidates: string[] = [];
  try {
    candidates.push((await run('pg_config', ['--bindir'])).stdout.trim());
  } catch {
    // No pg_config on PATH: look where the packages put the server.
  }
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  versions.sort((a, b) => Number(b) - Number(a));
  candidates.push(...versions.map((version) => join('/usr/lib/postgresql', version, 'bin')));
  for (const bindir of candidates) {
    const found = await access(join(bindir, 'initdb'), constants.X_OK).then(
      () => true,
      () => false,
    );
    if (found) return bindir;
  }
  throw new Error(
    `no PostgreSQL server binaries (initdb, pg_ctl) found in ${candidates.join(', ') || 'pg_config --bindir (no pg_config on PATH)'}: ` +
      "install PostgreSQL's server package",
  );
}

/** PostgreSQL refuses to run as root: as root, the fixture runs it as the `postgres` user, the one the server packages create. */
const asRoot = () => process.geteuid?.() === 0;

function command(bindir: string, program: string, args: readonly string[]): [string, string[]] {
  const path = join(bindir, program);
  return asRoot() ? ['runuser', ['-u', superuser, '--', path, ...args]] : [path, [...args]];
}

async function osIds(user: string): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch (error) {
    throw new Error(`running as root, the private PostgreSQL runs as the OS user ${user}, and there is none`, { cause: error });
  }
}

/** A port nobody listens on now. Another process may take it before the server does: start tries again then. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A value as postgresql.conf reads it: quoted, with its quotes doubled. */
const confValue = (value: string | number) => `'${String(value).replaceAll("'", "''")}'`;

/** Starts a private cluster with these settings; stop it in an `after`, which runs whether the tests passed or not. */
export async function startPrivatePostgres(settings: PrivatePostgresSettings = {}): Promise<PrivatePostgres> {
  const bindir = await serverBinaries();
  const folder = await mkdtemp(join(tmpdir(), 'mutuo-pg-'));
  const data = join(folder, 'data');
  const log = join(folder, 'server.log');
  let stopped = false;
  // A server runs while its pid file is there: also after a start that failed waiting for it.
  const running = () => existsSync(join(data, 'postmaster.pid'));

  const exec = async (program: string, args: readonly string[]) => {
    const [file, argv] = command(bindir, program, args);
    try {
      // In the folder: the postgres user may not enter the test's working directory.
      await run(file, argv, { cwd: folder });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      const logged = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`${program} ${args.join(' ')} failed: ${stderr?.trim() || String(error)}${logged ? `\nserver log:\n${logged.trim()}` : ''}`, {
        cause: error,
      });
    }
  };

  const stopNow = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stopAtExit);
    try {
      if (running()) await exec('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  };
  // A run that ends without its `after` (an uncaught error, process.exit) leaves no server behind.
  function stopAtExit() {
    if (stopped) return;
    stopped = true;
    if (running()) {
      const [file, argv] = command(bindir, 'pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      spawnSync(file, argv, { cwd: folder, stdio: 'ignore' });
    }
    rmSync(folder, { recursive: true, force: true });
  }
  process.on('exit', stopAtExit);

  try {
    if (asRoot()) {
      const { uid, gid } = await osIds(superuser);
      await chown(folder, uid, gid);
    }
    await exec('initdb', ['-D', data, '-U', superuser, '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    const conf = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: folder,
      // Thrown away at stop: nothing here needs to survive a crash of the machine.
      fsync: 'off',
      ...settings,
    };
    // In the file rather than as `pg_ctl -o "-c …"`, which goes through a shell: any value is taken as it is.
    await appendFile(
      join(data, 'postgresql.conf'),
      `\n# mutuo private-postgres fixture\n${Object.entries(conf)
        .map(([name, value]) => `${name} = ${confValue(value)}`)
        .join('\n')}\n`,
    );
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      // A log of this attempt alone, so that an error is told by what this start said.
      await rm(log, { force: true });
      try {
        await exec('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', `-p ${port}`]);
      } catch (error) {
        // The port was taken between the look and the start: another one.
        if (attempt < 3 && /already in use/i.test(String((error as Error).message))) continue;
        throw error;
      }
      return { url: `postgres://${superuser}@127.0.0.1:${port}/postgres`, port, folder, stop: stopNow };
    }
  } catch (error) {
    await stopNow().catch(() => undefined);
    throw error;
  }
}
