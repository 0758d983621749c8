import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';
import { startReceiver } from './support/receiver';

/** One example: a shell command (continuation lines joined) or a GraphQL operation, in README order. */
type Example =
  | { kind: 'sh'; line: number; command: string }
  | { kind: 'graphql'; line: number; title: string; operation: string };

/**
 * Shell commands that start or set up a service rather than talk to one: the test starts the service itself
 * (with the same settings). Anything else the README shows is run.
 */
const SETUP = /^(export |([A-Z_][A-Z0-9_]*=\S+ )*(npm|docker) )/;

/** README lines that are templates to fill in, not commands to paste: each is here on purpose. */
const TEMPLATES = ['npx snapcat redis forget <storeId>'];

function readmeExamples(): { run: Example[]; setup: string[]; templates: string[] } {
  const lines = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').split('\n');
  const run: Example[] = [];
  const setup: string[] = [];
  const templates: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    // A block may be indented under a list item (the Workers section's schedule): it runs all the same.
    const fence = /^\s*```(sh|graphql)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i + 1;
    const body: string[] = [];
    while (lines[++i]!.trim() !== '```') body.push(lines[i]!.trim());
    if (fence[1] === 'graphql') {
      // Operations one after another, each under a `# title` comment line.
      let current: { line: number; title: string; operation: string[] } | undefined;
      body.forEach((text, k) => {
        if (text.startsWith('# ')) {
          if (current) run.push({ kind: 'graphql', ...current, operation: current.operation.join('\n') });
          current = { line: start + k + 1, title: text.slice(2), operation: [] };
        } else current?.operation.push(text);
      });
      if (current) run.push({ kind: 'graphql', ...current, operation: current.operation.join('\n') });
      continue;
    }
    for (let k = 0; k < body.length; k++) {
      let command = body[k]!;
      const line = start + k + 1;
      while (command.endsWith('\\')) command = `${command.slice(0, -1)}${body[++k]!.trim()}`;
      command = command.replace(/\s+#\s.*$/, '').trim(); // a trailing comment explains, it does not run
      if (!command || command.startsWith('#')) continue;
      if (SETUP.test(command)) setup.push(command);
      else if (/<[A-Za-z]+>/.test(command)) templates.push(command);
      else run.push({ kind: 'sh', line, command });
    }
  }
  return { run, setup, templates };
}

describe("the README's examples, run in order against a started service", () => {
  let dir: string;
  let service: RunningService;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const prefix = testPrefix('readme');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-readme-'));
    // The README's subscriber (hooks.example.com) is the reader's own endpoint: here one on loopback.
    receiver = await startReceiver();
    service = await startService({
      SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'snapcat.db')}`,
      // The default root, ./data/snapshots, under the directory the README's commands run in (`ROOT=$PWD/…`).
      SNAPCAT_STORAGE_ROOTS: join(dir, 'data', 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_SECRET_KEY: 'readme-example-key-000000000000000000000', // as `export SNAPCAT_SECRET_KEY=…`
    });
  });
  afterAll(async () => {
    await service?.stop();
    await receiver?.close();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every shell and GraphQL example answers 2xx with the data it shows', async () => {
    const { run, setup, templates } = readmeExamples();
    expect(templates).toEqual(TEMPLATES);
    expect(setup.length).toBeGreaterThan(0);
    expect(run.filter((e) => e.kind === 'sh').length).toBeGreaterThanOrEqual(10);
    expect(run.filter((e) => e.kind === 'graphql').length).toBeGreaterThanOrEqual(6);
    // The savepoint schedule's example sits in a list item, its fence indented: it is run too.
    expect(run.some((e) => e.kind === 'sh' && e.command.includes('/savepoint-schedule'))).toBe(true);

    const assignments: string[] = [];
    const failures: string[] = [];
    for (const example of run) {
      const where = `README.md:${example.line}`;
      if (example.kind === 'graphql') {
        const problem = await runGraphql(example.operation);
        if (problem) failures.push(`${where} (${example.title}): ${problem}`);
        continue;
      }
      if (/^[A-Z_]+=\S+$/.test(example.command)) {
        assignments.push(example.command);
        continue;
      }
      const problem = runShell(example.command, assignments);
      if (problem) failures.push(`${where} \`${example.command}\`: ${problem}`);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  /**
   * Runs one command with the README's variables, `localhost:8080` meaning the test's service and
   * hooks.example.com the test's receiver.
   */
  function runShell(command: string, assignments: string[]): string | undefined {
    const out = join(dir, 'out');
    const code = join(dir, 'http-code');
    rmSync(code, { force: true });
    const script = [
      'set -o pipefail',
      // curl as the reader runs it, plus where its answer and status went.
      `curl() { command curl -sS -o ${out} -w '%{http_code}' "$@" > ${code}; }`,
      // `npx snapcat` is the repository's own bin (npx would look in the registry from this directory).
      `npx() { if [ "$1" = snapcat ]; then shift; "${REPO_ROOT}/node_modules/.bin/snapcat" "$@"; else command npx "$@"; fi; }`,
      ...assignments,
      command
        .replaceAll('localhost:8080', `127.0.0.1:${service.port}`)
        .replaceAll('https://hooks.example.com/snapcat', receiver.url),
    ].join('\n');
    const result = spawnSync('bash', ['-c', script], {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'snapcat.db')}`,
        SNAPCAT_QUEUE_PREFIX: prefix,
      },
    });
    if (result.status !== 0) return `exit ${result.status}: ${result.stderr}`;
    if (command.startsWith('curl')) {
      const status = Number(readFileSync(code, 'utf8'));
      const body = readFileSync(out, 'utf8');
      if (status < 200 || status > 299) return `HTTP ${status}: ${body}`;
      if (status !== 204 && body.trim() === '') return `HTTP ${status} with an empty answer`;
      return undefined;
    }
    const redirected = /> (\S+)$/.exec(command)?.[1];
    const answer = redirected ? statSync(join(dir, redirected)).size : result.stdout.trim().length;
    return answer > 0 ? undefined : 'no output';
  }

  /** A query or mutation: no errors, and every top-level field answered. A subscription: its first event. */
  async function runGraphql(operation: string): Promise<string | undefined> {
    const variables = operation.includes('$at') ? { at: new Date().toISOString() } : {};
    if (operation.trim().startsWith('subscription')) return firstEvent(operation);
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: operation, variables }),
    });
    const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
    if (res.status !== 200 || body.errors) return `HTTP ${res.status}: ${JSON.stringify(body.errors)}`;
    const empty = Object.entries(body.data ?? {}).filter(([, value]) => value === null || isEmpty(value));
    return empty.length ? `empty answer for ${empty.map(([field]) => field).join(', ')}` : undefined;
  }

  /** Subscribes over SSE, then takes a checkpoint of the README's job so that there is an event to see. */
  async function firstEvent(operation: string): Promise<string | undefined> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 15_000);
    try {
      const res = await fetch(`${service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: operation }),
        signal: abort.signal,
      });
      if (res.status !== 200) return `HTTP ${res.status}`;
      const job = /jobId: "([0-9a-f]{32})"/.exec(operation)![1]!;
      const api = client(service.url);
      const { body } = await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' });
      await api.post(`/jobs/${job}/snapshots/${body.snapshotId}/acks`, [
        { taskId: 'source-0' },
        { taskId: 'sink-0' },
      ]);
      const decoder = new TextDecoder();
      let text = '';
      for await (const chunk of res.body!) {
        text += decoder.decode(chunk as Uint8Array);
        const data = /^data: (.+)$/m.exec(text)?.[1];
        if (data) {
          const event = JSON.parse(data) as { data?: { snapshotEvents?: { type: string } } };
          return event.data?.snapshotEvents?.type === 'SnapshotCompleted'
            ? undefined
            : `unexpected event ${data}`;
        }
      }
      return 'the stream ended without an event';
    } catch (error) {
      return `no event within 15 s (${String(error)})`;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }
});

/** An object whose every list is empty and every value null: an answer that shows nothing. */
function isEmpty(value: unknown): boolean {
  if (value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') {
    const edges = (value as { edges?: unknown[] }).edges;
    if (Array.isArray(edges)) return edges.length === 0;
    return Object.values(value).every(isEmpty);
  }
  return false;
}
