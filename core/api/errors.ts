import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorDetail } from '../domain/issues.ts';

export type { ErrorDetail } from '../domain/issues.ts';

/**
 * The one error type the API throws on purpose: it carries its HTTP status and renders itself as
 * `{ error: { code, message, details } }`, where `message` says what to fix.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}
