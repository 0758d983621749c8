import { createHash } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Faults {
  /** Answer this many DeleteObjects requests with 503 SlowDown before passing any on. */
  slowDowns: number;
  /** Keys that fail once in a DeleteObjects batch: not passed on, answered as per-key errors. */
  failOnce: Set<string>;
  /** Answer every DeleteObjects as GCS's XML API does: 501 NotImplemented (DeleteObject passes). */
  noMultiDelete?: boolean;
}

/**
 * An HTTP proxy in front of the S3 test server that injects the failures a real S3 gives under load:
 * 503 SlowDown for whole requests, and per-key errors inside a DeleteObjects answer (S3 answers 200 with
 * an `<Error>` per key it could not delete). It counts what it did, for the test to check.
 */
export class FaultyS3Proxy {
  private server: Server | undefined;
  port = 0;
  readonly seen = { slowDowns: 0, keyErrors: 0, deleteRequests: 0, singleDeletes: 0 };

  constructor(
    private readonly targetPort: number,
    readonly faults: Faults,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        const isDelete = req.method === 'POST' && /[?&]delete(=|&|$)/.test(req.url ?? '');
        if (req.method === 'DELETE') this.seen.singleDeletes += 1;
        if (isDelete && this.faults.noMultiDelete) {
          this.seen.deleteRequests += 1;
          res.writeHead(501, { 'content-type': 'application/xml' });
          res.end(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NotImplemented</Code><Message>A header or query " +
              'you provided requested a function that is not implemented.</Message><Details>POST ?delete is ' +
              'not implemented for objects.</Details></Error>',
          );
          return;
        }
        if (isDelete) {
          this.seen.deleteRequests += 1;
          if (this.seen.slowDowns < this.faults.slowDowns) {
            this.seen.slowDowns += 1;
            res.writeHead(503, { 'content-type': 'application/xml' });
            res.end(
              '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
            );
            return;
          }
        }
        const failed: string[] = [];
        if (isDelete && this.faults.failOnce.size > 0) {
          const kept = body
            .toString('utf8')
            .replace(/<Object><Key>([^<]*)<\/Key><\/Object>/g, (whole, key: string) => {
              if (!this.faults.failOnce.delete(key)) return whole;
              failed.push(key);
              return '';
            });
          body = Buffer.from(kept, 'utf8');
        }
        if (failed.length > 0 && !body.toString('utf8').includes('<Object>')) {
          // Nothing left to pass on (an empty Delete is not valid XML): answer for the store.
          this.seen.keyErrors += failed.length;
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end(`<?xml version="1.0"?><DeleteResult>${errorsXml(failed)}</DeleteResult>`);
          return;
        }
        const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
        for (const name of Object.keys(headers)) if (name.startsWith('x-amz-checksum')) delete headers[name];
        if (headers['content-md5']) headers['content-md5'] = createHash('md5').update(body).digest('base64');
        const upstream = request(
          { host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers },
          (answer) => {
            const parts: Buffer[] = [];
            answer.on('data', (c: Buffer) => parts.push(c));
            answer.on('end', () => {
              let text = Buffer.concat(parts);
              if (failed.length > 0) {
                this.seen.keyErrors += failed.length;
                const errors = failed
                  .map(
                    (key) =>
                      `<Error><Key>${key}</Key><Code>InternalError</Code><Message>injected</Message></Error>`,
                  )
                  .join('');
                text = Buffer.from(
                  text.toString('utf8').replace('</DeleteResult>', `${errors}</DeleteResult>`),
                  'utf8',
                );
              }
              const out = { ...answer.headers, 'content-length': String(text.length) };
              res.writeHead(answer.statusCode ?? 500, out);
              res.end(text);
            });
          },
        );
        upstream.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        upstream.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** S3's answer for keys a DeleteObjects request could not delete. */
function errorsXml(keys: string[]): string {
  return keys
    .map((key) => `<Error><Key>${key}</Key><Code>InternalError</Code><Message>injected</Message></Error>`)
    .join('');
}
