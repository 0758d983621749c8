/**
 * A command the domain refuses. It carries what an HTTP problem needs: which field, which rule.
 * NOT_FOUND -> 404, CONFLICT -> 409 (the state does not allow it), INVALID -> 400.
 */
export class CommandRejected extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'CONFLICT' | 'INVALID',
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
    this.name = 'CommandRejected';
  }
}
