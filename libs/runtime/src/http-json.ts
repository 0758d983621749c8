import type { ServerResponse } from 'node:http';

/** One broken rule: which field (a dotted path such as body.tasks.2), which rule, and what it says. */
export interface FieldError {
  field: string;
  rule: string;
  message: string;
}

/** What an RFC 9457 problem answer is made of (the API's Problem is one). */
export interface ProblemFields {
  status: number;
  /** The last part of its type, `urn:snapcat:problem:<slug>`. */
  slug: string;
  title: string;
  detail: string;
  errors?: readonly FieldError[];
  /** Extension members, beside the standard ones. */
  extra?: Record<string, unknown>;
}

/** Answers with `value` as JSON in UTF-8, on Node's response (the front door's answers and every problem). */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  type = 'application/json',
): void {
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', `${type}; charset=utf-8`);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** Answers with the problem as application/problem+json. */
export function sendProblem(res: ServerResponse, problem: ProblemFields): void {
  const body = {
    type: `urn:snapcat:problem:${problem.slug}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(problem.errors?.length ? { errors: problem.errors } : {}),
    ...problem.extra,
  };
  sendJson(res, problem.status, body, 'application/problem+json');
}
