import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { Webhook } from 'standardwebhooks';
import { REPO_ROOT } from './service';

export interface ReceivedMessage {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
  /** Which of the receiver's secrets verified it (standardwebhooks package); empty when none did. */
  verifiedWith: string[];
  answered: number;
}

/** What the receiver answers to the n-th call (1-based); 200 by default. */
export type Behaviour = (
  call: number,
  req: IncomingMessage,
) => { status: number; headers?: Record<string, string> };

/**
 * A webhook receiver on loopback, as a subscriber would write it: it verifies every message with the
 * Standard Webhooks reference package against the secrets it was given, and records what it got.
 */
export async function startReceiver(behaviour: Behaviour = () => ({ status: 200 })) {
  const received: ReceivedMessage[] = [];
  const secrets: string[] = [];
  let calls = 0;
  let server: Server | undefined;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      calls += 1;
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      const verifiedWith = secrets.filter((secret) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const answer = behaviour(calls, req);
      received.push({
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        payload: JSON.parse(body),
        verifiedWith,
        answered: answer.status,
      });
      res.writeHead(answer.status, answer.headers ?? {}).end();
    });
  };
  const listen = (port: number) =>
    new Promise<number>((resolve) => {
      server = createServer(handler);
      server.listen(port, '127.0.0.1', () => resolve((server!.address() as AddressInfo).port));
    });
  const port = await listen(0);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    secrets,
    get calls() {
      return calls;
    },
    /** Messages answered 2xx, by webhook-id. */
    accepted: () => received.filter((m) => m.answered >= 200 && m.answered < 300),
    /** Down: connections to the port are refused until `up`. */
    async down() {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
    async up() {
      await listen(port);
    },
    async close() {
      if (server?.listening) await this.down();
    },
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Every payload schema in schema/webhooks, compiled: the delivered bodies must validate. */
export function payloadValidator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const dir = join(REPO_ROOT, 'schema', 'webhooks');
  const validators = new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.json') && f !== 'index.json')
      .map((f) => [f.replace(/\.json$/, ''), ajv.compile(JSON.parse(readFileSync(join(dir, f), 'utf8')))]),
  );
  return (payload: { type: string }) => {
    const validate = validators.get(payload.type);
    if (!validate) return `no schema for ${payload.type}`;
    return validate(payload) ? undefined : ajv.errorsText(validate.errors);
  };
}
