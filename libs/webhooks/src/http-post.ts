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
      let kept = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (kept.length < KEPT_BODY) kept += chunk.slice(0, KEPT_BODY - kept.length);
      });
      res.on('end', () => {
        const statusCode = res.statusCode ?? 0;
        const ok = statusCode >= 200 && statusCode < 300;
        resolve({
          statusCode,
          latencyMs: latency(),
          ...(ok ? {} : { error: `HTTP ${statusCode}${kept ? `: ${kept}` : ''}` }),
          ...(res.headers['retry-after'] ? { retryAfter: res.headers['retry-after'] } : {}),
        });
      });
      res.on('error', (error) =>
        resolve({ statusCode: res.statusCode, latencyMs: latency(), error: error.message }),
      );
    });
    req.on('error', (error) => {
      const timedOut = error.name === 'AbortError' || error.name === 'TimeoutError';
      resolve({
        latencyMs: latency(),
        error: timedOut ? `no answer within ${options.timeoutMs} ms` : error.message,
      });
    });
    req.end(options.body);
  });
}
