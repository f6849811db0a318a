// Validation issues rendered as the API's errors, runtime-free so the core's REST API
// (core/api/validate.ts) and the edge Worker (edge/events.ts) answer bad input alike: details
// `{ path: 'events[3].timestamp', message }`, 400 `invalid_request` for the wrong shape and 422
// `invalid_value` for a value that breaks a rule or a limit.
import type { z } from 'zod';

export type Issue = z.core.$ZodIssue;

export interface ErrorDetail {
  /** JSON path of the offending field, e.g. `events[3].timestamp`. */
  path: string;
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A JSON path as people write it: `events[3].context["page url"]`. */
export function formatPath(segments: readonly PropertyKey[], prefix = ''): string {
  let path = prefix;
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else {
      const key = String(segment);
      path += IDENTIFIER.test(key) ? (path ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
    }
  }
  return path;
}

/**
 * Details of a failed parse. Each message starts with the field's path (or `subject` for the
 * value as a whole), then the schema's predicate: "events[3].timestamp is ..., more than 24h in
 * the future".
 */
export function issuesToDetails(issues: readonly Issue[], prefix = '', subject = 'body'): ErrorDetail[] {
  return issues.map((issue) => {
    const path = formatPath(issue.path, prefix);
    return { path, message: `${path || subject} ${issue.message}` };
  });
}

/** Issues that mean "not the right shape" (400) rather than "right shape, value not allowed" (422). */
const SHAPE_CODES = new Set<string>(['invalid_type', 'unrecognized_keys', 'invalid_union', 'invalid_key']);

export function issuesStatus(issues: readonly Issue[]): 400 | 422 {
  // zod reports a fractional number given for `.int()` as invalid_type 'int': a value problem.
  const shape = (issue: Issue) =>
    SHAPE_CODES.has(issue.code) && !(issue.code === 'invalid_type' && issue.expected === 'int');
  return issues.some(shape) ? 400 : 422;
}

export interface IssuesError {
  status: 400 | 422;
  code: 'invalid_request' | 'invalid_value';
  message: string;
  details: ErrorDetail[];
}

/**
 * The error for a failed parse of `what` ("item 'x'", "request body", "query"). With `qualify`,
 * a message about a field names `what` first: "item 'x': categories has 40 entries, ...".
 */
export function errorFromIssues(issues: readonly Issue[], what: string, qualify = false): IssuesError {
  const details = issuesToDetails(issues, '', what);
  const status = issuesStatus(issues);
  const head = details[0];
  const first = head === undefined ? `${what} is invalid` : qualify && head.path ? `${what}: ${head.message}` : head.message;
  const more = details.length > 1 ? ` (and ${details.length - 1} more problem${details.length > 2 ? 's' : ''}, see details)` : '';
  return { status, code: status === 400 ? 'invalid_request' : 'invalid_value', message: `${first}${more}`, details };
}
