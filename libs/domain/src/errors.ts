/**
 * A field as every problem names it (README): `body[0].stateHandles[1].path`, `body.namespaces[0]`. The path
 * is a schema's (zod's issue path): numbers index lists.
 */
export function fieldName(location: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (name, key) => (typeof key === 'number' ? `${name}[${key}]` : `${name}.${String(key)}`),
    location,
  );
}

/**
 * A command the domain refuses. It carries what an HTTP problem needs: which field, which rule.
 * NOT_FOUND -> 404, CONFLICT -> 409 (the state does not allow it), INVALID -> 400, FORBIDDEN -> 403
 * (the caller may not act in the namespace it named).
 */
export class CommandRejected extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'CONFLICT' | 'INVALID' | 'FORBIDDEN',
    readonly field: string,
    readonly rule: string,
    message: string,
    /** In a request of several commands (a batch of acknowledgements): the refused command's place in it. */
    readonly commandIndex?: number,
  ) {
    super(message);
    this.name = 'CommandRejected';
  }

  /** The same refusal, of the command at `index` of its request. */
  at(index: number): CommandRejected {
    return new CommandRejected(this.code, this.field, this.rule, this.message, index);
  }
}
