// Reads a file as decoded text chunks with bounded memory, reporting bytes read for a progress
// bar, and splits text chunks into lines.

import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** `latin1` is ISO-8859-1 (ml-100k and ml-1m); WHATWG's 'latin1' label would mean windows-1252. */
export type TextEncoding = 'utf8' | 'latin1';
export type ProgressCallback = (bytesRead: number, totalBytes: number) => void;

const CHUNK_BYTES = 1 << 16;

/** Decoded chunks of a file; a leading UTF-8 byte order mark is dropped. */
export async function* readChunks(
  path: string,
  encoding: TextEncoding,
  totalBytes: number,
  progress?: ProgressCallback,
): AsyncGenerator<string> {
  const decoder = new StringDecoder(encoding);
  let bytesRead = 0;
  let first = true;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    const bytes = chunk as Buffer;
    bytesRead += bytes.length;
    let text = decoder.write(bytes);
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    progress?.(bytesRead, totalBytes);
    if (text.length > 0) yield text;
  }
  const rest = decoder.end();
  if (rest.length > 0) yield rest;
}

/** A line over this length (checked at chunk ends, so give or take one chunk) is reported (`tooLong`) without its text. */
export const MAX_LINE_CHARS = 1 << 20;

export interface TextLine {
  line: number;
  text: string;
  /** The line was longer than MAX_LINE_CHARS; `text` is empty. */
  tooLong?: boolean;
}

/**
 * Lines of the text (without `\n` or `\r\n`), with 1-based line numbers, no final empty line;
 * in batches (the lines completed by one chunk), so per-line cost stays off the async path.
 */
export async function* splitLines(chunks: AsyncIterable<string>): AsyncGenerator<TextLine[]> {
  let pending = '';
  let dropping = false; // inside a line over the limit: skip to its end
  let line = 0;
  for await (const chunk of chunks) {
    const text = pending + chunk;
    const batch: TextLine[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      batch.push(dropping ? { line: ++line, text: '', tooLong: true } : { line: ++line, text: text.slice(start, end) });
      dropping = false;
      start = nl + 1;
    }
    pending = text.slice(start);
    if (pending.length > MAX_LINE_CHARS) {
      dropping = true;
      pending = '';
    }
    if (batch.length > 0) yield batch;
  }
  if (dropping) yield [{ line: ++line, text: '', tooLong: true }];
  else if (pending.length > 0) yield [{ line: ++line, text: pending.endsWith('\r') ? pending.slice(0, -1) : pending }];
}
