// Pieces the /v1 routes share: the `{id}` path parameter, JSON bodies, response descriptions.
import { z } from '@hono/zod-openapi';
import { IdSchema } from '../../domain/schemas.ts';
import { ApiError } from '../errors.ts';

export const IdParams = z.object({ id: IdSchema });

export const jsonBody = <S extends z.ZodType>(schema: S, description: string) => ({
  content: { 'application/json': { schema } },
  required: true,
  description,
});

const ErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string().meta({ description: 'what to fix' }),
    details: z.array(z.object({ path: z.string(), message: z.string() })),
  }),
}).meta({ id: 'Error' });

const error = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** The errors every `/v1` route can answer with. */
export const errorResponses = {
  400: error('malformed JSON or a body of the wrong shape'),
  401: error('no API key, or an unknown one'),
  403: error('the API key lacks the scope'),
  413: error('the body is over the size limit'),
  422: error('a value breaks a rule or a limit'),
} as const;

export const notFound = { 404: error('no such resource') } as const;

export function notFoundError(noun: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `no ${noun} '${id}'; create it with PUT /v1/${noun}s/${id}`);
}

/** A PUT body may repeat the path's id; a different one is a mistake worth stopping. */
export function checkPathId(pathId: string, bodyId: string | undefined, noun: string): void {
  if (bodyId !== undefined && bodyId !== pathId) {
    throw new ApiError(422, 'id_mismatch', `the body's id '${bodyId}' differs from the path's '${pathId}'; leave id out of the body or make them equal`, [{ path: 'id', message: `id must be '${pathId}' (the ${noun} id in the path)` }]);
  }
}
