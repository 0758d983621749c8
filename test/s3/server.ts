import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * An S3-protocol server on a local port (s3rver, from npm, in a child process: serve.cjs says why): the
 * real AWS SDK talks its real wire protocol to it. Objects live in a temporary directory; `stop` removes it.
 */
export class S3TestServer {
  private child: ChildProcess | undefined;
  private dir: string | undefined;
  port = 0;
  readonly credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The environment a snapcat process needs to reach this server through the AWS SDK's own chain. */
  get env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL: this.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: this.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.credentials.secretAccessKey,
      SNAPCAT_S3_FORCE_PATH_STYLE: 'true',
    };
  }

  async start(buckets: string[]): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'snapcat-s3rver-'));
    const child = spawn(
      process.execPath,
      ['--openssl-legacy-provider', join(__dirname, 'serve.cjs'), this.dir],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
      createInterface({ input: child.stdout! }).once('line', (line) =>
        resolve((JSON.parse(line) as { port: number }).port),
      );
    });
    const client = this.client();
    for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
  }

  /** A client of this server, or of something in front of it (a proxy at `endpoint`). */
  client(endpoint = this.endpoint): S3Client {
    return new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: this.credentials,
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
