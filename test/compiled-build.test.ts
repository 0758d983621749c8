import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { newJobId } from './support/ids';
import { deleteKeys } from './support/redis';
import { REPO_ROOT, client, ownDistDir, processGroup, startNpm, testPrefix } from './support/service';
import { eventually, until } from './support/wait';

/**
 * `npm run build` (docs/decisions/0013-compiled-build.md): the compiled entry points run with plain node, as
 * the Dockerfile's final stage runs them, with no tsx anywhere in the process. The build is made by `npm start`
 * on a tree without one, into a dist/ of this file's own (SNAPCAT_DIST_DIR); `built('dist/…')` is where a
 * path of the repository's dist/ lies in it.
 */
const API = 'dist/services/server/src/main.js';
const WORKERS = 'dist/services/workers/src/main.js';
const PROJECTOR = 'dist/services/projector/src/main.js';
const CLI = 'dist/services/cli/src/main.js';
/** The EventStoreDB client (with gRPC), the AWS SDK, and GraphiQL's page. */
const LOADED_ON_FIRST_USE =
  /[\\/]node_modules[\\/](@eventstore[\\/]db-client|@grpc|@aws-sdk|@smithy|@graphql-yoga[\\/]render-graphiql)[\\/]/;
/** GraphQL and yoga's packages: an API process makes its endpoint on the first request to it (decision 0041). */
const GRAPHQL_PACKAGES =
  /[\\/]node_modules[\\/](graphql|graphql-yoga|graphql-jit|@graphql-tools|@graphql-yoga|@envelop|@escape\.tech)[\\/]/;

interface Compiled {
  url: string;
  logs: string[];
  child: ChildProcess;
  exited: Promise<number | null>;
}

describe('the compiled build (dist/, node without tsx)', () => {
  let dir: string;
  const build = ownDistDir();
  const built = (path: string) => join(build.dist, relative('dist', path));
  const prefix = testPrefix('compiled');
  const running: Compiled[] = [];
  /** What `npm start` did on a tree without dist/: its logs, its process group while it served, its exit. */
  let firstStart: {
    logs: string[];
    group: string[];
    /** NODE_ENV as the service's node saw it, npm started without one. */
    nodeEnv: string | undefined;
    /** glibc's MALLOC_ARENA_MAX as the service's node saw it, npm started without one. */
    mallocArenaMax: string | undefined;
    readyz: number;
    code: number | null;
    left: number;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-compiled-'));
    const npm = await startNpm(['start'], {
      SNAPCAT_DIST_DIR: build.dist,
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'npm-start.db')}`,
      // Roots of its own: the events.db catalogue of the tests below claims `snapshots` (decision 0044).
      SNAPCAT_STORAGE_ROOTS: join(dir, 'npm-start-snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
      NODE_ENV: '', // unset, as an operator's shell has it (jest sets `test`)
      MALLOC_ARENA_MAX: '',
    });
    try {
      const processes = processGroup(npm.group);
      const group = processes.map((p) => p.command);
      const node = processes.find((p) => p.command.startsWith('node '));
      const environ = node ? readFileSync(`/proc/${node.pid}/environ`, 'utf8').split('\0') : [];
      const variable = (name: string) =>
        environ.find((v) => v.startsWith(`${name}=`))?.slice(name.length + 1);
      const nodeEnv = variable('NODE_ENV');
      const mallocArenaMax = variable('MALLOC_ARENA_MAX');
      const readyz = await until(
        async () => ((await fetch(`${npm.url}/readyz`)).status === 200 ? 200 : undefined),
        10_000,
        '/readyz',
      );
      const code = await npm.stop('SIGTERM');
      const left = await until(
        async () => (processGroup(npm.group).length === 0 ? 0 : undefined),
        5000,
        'no process of the group left',
      ).catch(() => processGroup(npm.group).length);
      firstStart = { logs: npm.logs, group, nodeEnv, mallocArenaMax, readyz, code, left };
    } finally {
      npm.killGroup();
    }
  }, 90_000);
  afterAll(async () => {
    for (const service of running) service.child.kill('SIGKILL');
    await Promise.all(running.map((service) => service.exited));
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
    build.remove();
  });

  it('npm start on a tree without dist/ builds it (saying so in one line), runs it with node alone, and SIGTERM to npm exits 0 leaving no process', () => {
    const builds = firstStart.logs
      .join('\n')
      .split('\n')
      .filter((line) => line.startsWith('npm start: '));
    expect(builds).toEqual([
      `npm start: building ${relative(REPO_ROOT, build.dist)}/ (no complete build yet): npm run build`,
    ]);
    expect(firstStart.group.sort()).toEqual([
      `node --enable-source-maps ${built(API)}`,
      expect.stringMatching(/^npm/),
    ]);
    expect(firstStart.nodeEnv).toBe('production'); // as in the Dockerfile, unless the operator sets one
    expect(firstStart.mallocArenaMax).toBe('2'); // decision 0029: two malloc arenas, as in the Dockerfile
    expect(firstStart.readyz).toBe(200);
    expect(firstStart.code).toBe(0);
    expect(firstStart.logs.join('\n')).toContain('"msg":"stopped"');
    expect(firstStart.left).toBe(0);
  });

  /**
   * Starts a compiled entry point with NODE_OPTIONS emptied and a preload that writes, at exit, every module
   * the process loaded (require.cache) and its node flags; resolves once it logs `listening`.
   */
  const start = async (entry: string, env: Record<string, string> = {}): Promise<Compiled> => {
    const record = join(dir, `loaded-${running.length}.json`);
    const preload = join(dir, 'record-loaded.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify({
        modules: Object.keys(require.cache), execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS,
      })));\n`,
    );
    const child = spawn(process.execPath, ['--enable-source-maps', '--require', preload, built(entry)], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        SNAPCAT_PORT: '0',
        SNAPCAT_HOST: '127.0.0.1',
        SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
        SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
        SNAPCAT_QUEUE_PREFIX: prefix,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const service: Compiled = { url: '', logs, child, exited };
    running.push(service);
    child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    const port = await new Promise<number | undefined>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${entry} did not start:\n${logs.join('\n')}`)),
        30_000,
      );
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${entry} exited with ${code}:\n${logs.join('\n')}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        logs.push(line);
        if (!line.includes('"msg":"listening"')) return;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port?: number }).port);
      });
    });
    service.url = `http://127.0.0.1:${port}`;
    return service;
  };

  /** SIGTERM: a clean stop (exit 0), and what the process had loaded. */
  const stop = async (service: Compiled) => {
    service.child.kill('SIGTERM');
    const code = await service.exited;
    const record = join(dir, `loaded-${running.indexOf(service)}.json`);
    if (!existsSync(record))
      throw new Error(`exit ${code}, no record of what it loaded:\n${service.logs.join('\n')}`);
    return {
      code,
      loaded: JSON.parse(readFileSync(record, 'utf8')) as {
        modules: string[];
        execArgv: string[];
        nodeOptions: string;
      },
    };
  };
  const noTsx = (loaded: { modules: string[]; execArgv: string[]; nodeOptions: string }) => {
    expect(loaded.nodeOptions).toBe('');
    expect(loaded.execArgv.join(' ')).not.toMatch(/tsx|--import|--loader/);
    expect(loaded.modules.filter((file) => /[\\/]node_modules[\\/](tsx|esbuild)[\\/]/.test(file))).toEqual(
      [],
    );
    expect(loaded.modules.filter((file) => /\.ts$/.test(file))).toEqual([]);
  };

  it('bundles the workspace libraries, leaves npm packages external and never requires tsx', () => {
    for (const entry of [API, WORKERS, PROJECTOR, CLI]) {
      const code = readFileSync(built(entry), 'utf8');
      expect(code).toContain(`//# sourceMappingURL=main.js.map`);
      expect(existsSync(`${built(entry)}.map`)).toBe(true);
      const required = [...code.matchAll(/\brequire\("([^"]+)"\)/g)].map(([, name]) => name!);
      expect(required.filter((name) => name.startsWith('@snapcat/') || /^tsx|^esbuild/.test(name))).toEqual(
        [],
      );
      expect(required).toContain('better-sqlite3');
    }
    expect(readFileSync(built('dist/schema/catalog.graphql'), 'utf8')).toContain('type Query');
  });

  it('the API: /readyz, a job registered over REST, GraphQL (its schema file), the image healthcheck, SIGTERM exits 0', async () => {
    const api = await start(API);
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await fetch(`${api.url}/readyz`)).status;
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(ready).toBe(200);

    const jobId = newJobId();
    const registered = await client(api.url).put(`/jobs/${jobId}`, {
      name: 'compiled',
      tasks: ['source-0', 'sink-0'],
      checkpointing: { numRetained: 2, retention: 'RETAIN_ON_CANCELLATION' },
    });
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({ jobId, name: 'compiled', status: 'RUNNING' });

    const graphql = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'query ($id: ID!) { history(jobId: $id) { edges { node { type revision } } } }',
        variables: { id: jobId },
      }),
    });
    expect(await graphql.json()).toEqual({
      data: { history: { edges: [{ node: { type: 'JobRegistered', revision: 0 } }] } },
    });

    // The Dockerfile's HEALTHCHECK, word for word, against this process.
    const healthcheck = healthcheckCommand();
    const probe = () =>
      spawnSync(healthcheck[0] === 'node' ? process.execPath : healthcheck[0]!, healthcheck.slice(1), {
        env: { ...process.env, SNAPCAT_PORT: new URL(api.url).port },
        timeout: 10_000,
      }).status;
    expect(probe()).toBe(0);

    const { code, loaded } = await stop(api);
    expect(code).toBe(0);
    expect(api.logs.join('\n')).toContain('"msg":"stopped"');
    noTsx(loaded);
    expect(loaded.modules).toContain(built(API));
    // Required on first use only (BENCHMARKS.md #17): a start on SQLite and local roots that never showed
    // GraphiQL parses none of these packages (with them, its start loaded 21.9 MB of JavaScript; without, 9.7).
    expect(loaded.modules.filter((file) => LOADED_ON_FIRST_USE.test(file))).toEqual([]);
    // The query above ran compiled (decision 0040): graphql-jit, required by the first execution, is loaded.
    expect(loaded.modules.some((file) => /[\\/]node_modules[\\/]graphql-jit[\\/]/.test(file))).toBe(true);
    expect(probe()).toBe(1);
  });

  it('an API process that served no GraphQL request never loaded GraphQL: it is made on the first one (decision 0041)', async () => {
    const api = await start(API);
    await eventually(async () => (await fetch(`${api.url}/readyz`)).status === 200, 10_000, 'ready');
    const jobId = newJobId();
    expect((await client(api.url).put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
    expect((await client(api.url).get(`/jobs/${jobId}`)).status).toBe(200);
    const { code, loaded } = await stop(api);
    expect(code).toBe(0);
    expect(loaded.modules.filter((file) => GRAPHQL_PACKAGES.test(file))).toEqual([]);
  });

  it.each([
    ['workers', WORKERS],
    ['projector', PROJECTOR],
  ])('the %s entry point starts and stops on SIGTERM with exit 0', async (role, entry) => {
    const service = await start(entry);
    expect(service.logs.join('\n')).toContain(`"role":"${role}"`);
    // These entry points log `listening` just before they install their signal handlers: a
    // SIGTERM in between would meet node's default action, whichever way the code was compiled.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { code, loaded } = await stop(service);
    expect(code).toBe(0);
    noTsx(loaded);
    // The projector publishes live events without yoga's pubsub (snapshotEventPublisher); workers serve none.
    expect(loaded.modules.filter((file) => GRAPHQL_PACKAGES.test(file))).toEqual([]);
  });

  it('a workers process with SNAPCAT_OPS_PORT: the image healthcheck asks its /readyz there', async () => {
    const workers = await start(WORKERS, { SNAPCAT_ROLE: 'workers', SNAPCAT_OPS_PORT: '0' });
    const healthcheck = healthcheckCommand();
    const probe = (env: Record<string, string>) =>
      spawnSync(healthcheck[0] === 'node' ? process.execPath : healthcheck[0]!, healthcheck.slice(1), {
        env: { ...process.env, SNAPCAT_PORT: '1', ...env }, // nothing on SNAPCAT_PORT: the ops port decides
        timeout: 10_000,
      }).status;
    expect(probe({ SNAPCAT_OPS_PORT: new URL(workers.url).port })).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300)); // its signal handlers (see above)
    const { code } = await stop(workers);
    expect(code).toBe(0);
    expect(probe({ SNAPCAT_OPS_PORT: new URL(workers.url).port })).toBe(1);
  });

  it('the CLI answers --help', () => {
    const help = spawnSync(process.execPath, [built(CLI), '--help'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: /);
    expect(help.stdout).toContain('audit verify');
  });

  it('the Dockerfile and docker-compose.yml run files the build produces', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd).toEqual(['node', '--enable-source-maps', API]);
    expect(dockerfile).toMatch(/^\s+MALLOC_ARENA_MAX=2 \\$/m); // as `npm start` runs it (decision 0029)
    const compose = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    const commands = [...compose.matchAll(/^\s+command: (\[.*\])$/gm)].map(([, list]) =>
      JSON.parse(list!.replace(/'/g, '"')),
    ) as string[][];
    const snapcat = commands.filter((command) => command[0] === 'node');
    expect(snapcat.length).toBeGreaterThanOrEqual(3);
    for (const command of snapcat) {
      expect(command.join(' ')).not.toContain('tsx');
      expect(existsSync(built(command[command.length - 1]!))).toBe(true);
    }
  });
});

/** The exec form of the Dockerfile's HEALTHCHECK (one `CMD [...]` on the line after HEALTHCHECK). */
function healthcheckCommand(): string[] {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const match = /^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  if (!match) throw new Error('no HEALTHCHECK ... CMD [...] in the Dockerfile');
  return JSON.parse(match[1]!) as string[];
}
