/**
 * What can go wrong talking to a Flink cluster:
 * - `unreachable`: no connection (refused, reset, DNS), or the cluster's circuit is open (no request sent);
 * - `timeout`: no answer within the client's timeout, or a 408 (the server or a proxy gave up on the request);
 * - `server`: a 5xx answer (after the retries);
 * - `not-found`: a 404 (unknown job, checkpoint or trigger id);
 * - `rejected`: another 4xx (the request did not match what Flink accepts);
 * - `protocol`: a 2xx answer that is not what Flink's REST API answers.
 * Messages name the cluster, the method and the path, never a header value (they carry secrets).
 */
export type FlinkErrorKind = 'unreachable' | 'timeout' | 'server' | 'not-found' | 'rejected' | 'protocol';

export class FlinkError extends Error {
  override readonly name = 'FlinkError';

  constructor(
    readonly kind: FlinkErrorKind,
    message: string,
    readonly details: {
      cluster: string;
      method: string;
      path: string;
      status?: number;
      attempts: number;
      /** The circuit was open: no request was sent. */
      failedFast?: boolean;
      /**
       * Whether any attempt of the call may have been taken by Flink: one reached it and was not refused (a
       * timeout, a reset connection, a 5xx other than 503, an answer that was not Flink's). False when every
       * attempt was refused before it was taken (never sent or connected, a 503, a 4xx other than 408).
       */
      mayHaveBeenTaken?: boolean;
    },
  ) {
    super(message);
  }

  get status(): number | undefined {
    return this.details.status;
  }

  /** Worth trying again later (the cluster may answer then). */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'server';
  }
}
