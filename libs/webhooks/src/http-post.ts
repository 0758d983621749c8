import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { AddressRefusedError, hostOf, isPrivateAddress, publicOnlyLookup } from './address-guard';

export interface PostResult {
  /** Absent when no response came (refused connection, timeout, address refused). */
  statusCode?: number;
  latencyMs: number;
  error?: string;
  retryAfter?: string;
}

/** The most of a response body kept for the delivery log: enough to see why a receiver said no. */
const KEPT_BODY = 512;

/** Whether a receiver's answer means it has the message: any 2xx. */
export const isSuccess = (statusCode: number | undefined): boolean =>
  statusCode !== undefined && statusCode >= 200 && statusCode < 300;

/**
 * POSTs one webhook. The whole exchange (connect, send, answer) must finish within `timeoutMs`; redirects
 * are not followed (a 3xx is a failure, as Standard Webhooks receivers are expected to answer directly).
 */
export function postWebhook(options: {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  allowPrivate: boolean;
}): Promise<PostResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  const url = new URL(options.url);
  const host = hostOf(url);
  if (!options.allowPrivate && isIP(host) && isPrivateAddress(host)) {
    return Promise.resolve({ latencyMs: 0, error: new AddressRefusedError(host, host).message });
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    // The status the receiver answered, once its status line arrived: a body still coming at the timeout does
    // not unsay it (a 2xx whose body trickled in was counted a failure and sent again, a review found).
    let answered: number | undefined;
    const req = send(url, {
      method: 'POST',
      headers: {
        ...options.headers,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(options.body),
        'user-agent': 'snapcat-webhooks/1',
      },
      signal: AbortSignal.timeout(options.timeoutMs),
      ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }),
    });
    req.on('response', (res) => {
      answered = res.statusCode;
      let kept = '';
      res.setEncoding('utf8');
      const end = () => {
        const statusCode = res.statusCode ?? 0;
        const ok = isSuccess(statusCode);
        resolve({
          statusCode,
          latencyMs: latency(),
          ...(ok ? {} : { error: `HTTP ${statusCode}${kept ? `: ${kept}` : ''}` }),
          ...(res.headers['retry-after'] ? { retryAfter: res.headers['retry-after'] } : {}),
        });
      };
      res.on('data', (chunk: string) => {
        kept += chunk.slice(0, KEPT_BODY - kept.length);
        // What is kept is all that is read: the rest of a long body is not waited for.
        if (kept.length >= KEPT_BODY) {
          end();
          res.destroy();
        }
      });
      res.on('end', end);
      res.on('error', (error) =>
        resolve({ statusCode: res.statusCode, latencyMs: latency(), error: error.message }),
      );
    });
    req.on('error', (error) => {
      const timedOut = error.name === 'AbortError' || error.name === 'TimeoutError';
      resolve({
        ...(answered !== undefined ? { statusCode: answered } : {}),
        latencyMs: latency(),
        error: !timedOut
          ? error.message
          : answered === undefined
            ? `no answer within ${options.timeoutMs} ms`
            : `the answer's body did not end within ${options.timeoutMs} ms`,
      });
    });
    req.end(options.body);
  });
}
