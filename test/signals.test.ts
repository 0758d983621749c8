import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { deleteKeys } from './support/redis';
import { REPO_ROOT, ownDistDir, processGroup, startNpm, testPrefix } from './support/service';
import { until } from './support/wait';

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

describe('signals: what a supervisor or `docker stop` sends to `npm start`', () => {
  let dir: string;
  let build: ReturnType<typeof ownDistDir>;
  const prefix = testPrefix('signals');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-signals-'));
    build = ownDistDir();
  });
  afterAll(async () => {
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
    build.remove();
  });

  it('npm start rebuilds a stale dist/; SIGTERM to the npm process then stops the service gracefully: exit 0, stopped logged, port closed, store closed, no process left', async () => {
    // A build made before services/server/src/main.ts changed (its record holds another hash of that file),
    // whose entry point would exit 3 if it ran.
    const main = join(build.dist, 'services', 'server', 'src', 'main.js');
    mkdirSync(join(main, '..'), { recursive: true });
    writeFileSync(main, 'console.error("the stale build ran"); process.exit(3);\n');
    const inputs = {
      'package.json': sha256(readFileSync(join(REPO_ROOT, 'package.json'))),
      'services/server/src/main.ts': sha256('an earlier main.ts'),
    };
    writeFileSync(join(build.dist, 'build-inputs.json'), JSON.stringify({ inputs }));

    const npm = await startNpm(['start'], {
      SNAPCAT_DIST_DIR: build.dist,
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
    });
    try {
      const rebuilt = npm.logs.join('\n');
      expect(rebuilt).toContain(
        `npm start: building ${relative(REPO_ROOT, build.dist)}/ (services/server/src/main.ts changed since the last build): npm run build`,
      );
      expect(rebuilt).not.toContain('the stale build ran');
      const record = JSON.parse(readFileSync(join(build.dist, 'build-inputs.json'), 'utf8')) as {
        inputs: Record<string, string>;
      };
      expect(record.inputs['services/server/src/main.ts']).toBe(
        sha256(readFileSync(join(REPO_ROOT, 'services/server/src/main.ts'))),
      );
      expect(Object.keys(record.inputs)).toEqual(
        expect.arrayContaining(['libs/domain/src/index.ts', 'schema/catalog.graphql', 'package-lock.json']),
      );
      // npm, and the compiled service in the place of the shell npm started: nothing in between.
      expect(
        processGroup(npm.group)
          .map((p) => p.command)
          .sort(),
      ).toEqual([
        `node --enable-source-maps ${build.dist}/services/server/src/main.js`,
        expect.stringMatching(/^npm/),
      ]);
      // Listening comes before ready (the projector takes its lease and catches up): on a busy machine, later.
      await until(
        async () => ((await fetch(`${npm.url}/readyz`)).status === 200 ? true : undefined),
        15_000,
        'the service answering /readyz with 200',
      );

      expect(await npm.stop('SIGTERM')).toBe(0);
      await until(
        async () => (npm.logs.some((l) => l.includes('"msg":"stopped"')) ? true : undefined),
        10_000,
        'the service logging stopped',
      );
      await until(
        async () => (processGroup(npm.group).length === 0 ? true : undefined),
        5000,
        'no process of the group left',
      );
      // Nothing is left serving: the port refuses connections, and the SQLite store was closed cleanly.
      await until(
        async () =>
          await fetch(`${npm.url}/healthz`).then(
            () => undefined,
            () => true,
          ),
        5000,
        'the port closed',
      );
      expect(existsSync(join(dir, 'events.db-wal'))).toBe(false);
    } finally {
      npm.killGroup(); // anything of the group still running (it should be none)
    }
  }, 90_000);
});
