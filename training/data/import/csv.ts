// Streaming RFC 4180 parser: quoted fields, doubled quotes inside them, delimiters and line breaks
// inside quotes, CRLF or LF line ends. Works chunk by chunk, so a record may span chunks; memory is
// bounded by the longest record (`MAX_RECORD_CHARS`).

/** A record longer than this is reported as an error (usually an unbalanced quote) and skipped. */
export const MAX_RECORD_CHARS = 1 << 20;

export type CsvRow = { line: number; fields: string[] } | { line: number; error: string };

const QUOTE = 34;
const CR = 13;
const LF = 10;

/**
 * Records of delimited text. `line` is the 1-based line where a record starts (a record with a
 * quoted line break spans several). Blank lines are skipped.
 */
export async function* parseDelimited(chunks: AsyncIterable<string>, delimiter = ','): AsyncGenerator<CsvRow> {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new RangeError(`the CSV delimiter must be one character other than a quote or line break, got '${delimiter}'`);
  }
  const delim = delimiter.charCodeAt(0);
  let fields: string[] = [];
  let field = '';
  let quoted = false; // inside a quoted field
  let wasQuoted = false; // the current field was quoted and its closing quote was seen
  let stray = false; // text after a closing quote: the record is malformed
  let tooLong = false; // over MAX_RECORD_CHARS: reported, its text dropped
  let size = 0;
  let line = 1; // line of the next character
  let start = 1; // line where the current record started
  let skipLf = false; // a CR ended a record; a following LF belongs to it
  let pendingQuote = false; // a quoted field's quote ended the last chunk

  const finish = (): CsvRow | undefined => {
    fields.push(field);
    let row: CsvRow | undefined = { line: start, fields };
    if (tooLong) {
      row = { line: start, error: `line ${start}: record longer than ${MAX_RECORD_CHARS} characters; check for a quote left open` };
    } else if (stray) {
      row = { line: start, error: `line ${start}: text after a closing quote in field ${fields.length}; quote the whole field and double quotes inside it ("")` };
    } else if (fields.length === 1 && field === '' && !wasQuoted) {
      row = undefined; // a blank line
    }
    fields = [];
    field = '';
    wasQuoted = false;
    stray = false;
    tooLong = false;
    size = 0;
    return row;
  };

  for await (const chunk of chunks) {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (quoted) {
        const q = chunk.indexOf('"', i);
        if (q < 0) {
          const part = chunk.slice(i);
          field += part;
          line += countNewlines(part);
          size += part.length;
          i = n;
        } else {
          const part = chunk.slice(i, q);
          field += part;
          line += countNewlines(part);
          size += part.length;
          // A quote at the chunk's end may be the first of a doubled pair: decide on the next chunk.
          if (q + 1 === n) {
            quoted = false;
            wasQuoted = true;
            i = n;
            pendingQuote = true;
          } else if (chunk.charCodeAt(q + 1) === QUOTE) {
            field += '"';
            i = q + 2;
          } else {
            quoted = false;
            wasQuoted = true;
            i = q + 1;
          }
        }
        if (size > MAX_RECORD_CHARS) {
          // Keep parsing to find where the record ends, but stop holding its text.
          tooLong = true;
          field = '';
        }
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (pendingQuote) {
        pendingQuote = false;
        if (c === QUOTE) {
          // The quote that ended the last chunk was doubled: still inside the quoted field.
          field += '"';
          quoted = true;
          wasQuoted = false;
          i++;
          continue;
        }
      }
      if (skipLf) {
        skipLf = false;
        if (c === LF) {
          i++;
          continue;
        }
      }
      if (c === delim) {
        fields.push(field);
        field = '';
        wasQuoted = false;
        i++;
      } else if (c === LF || c === CR) {
        const row = finish();
        line++;
        start = line;
        if (c === CR) skipLf = true;
        i++;
        if (row) yield row;
      } else if (c === QUOTE && field === '' && !wasQuoted) {
        quoted = true;
        i++;
      } else {
        // Take the run of plain characters up to the next special one in one slice.
        let j = i + 1;
        while (j < n) {
          const d = chunk.charCodeAt(j);
          if (d === delim || d === LF || d === CR) break;
          j++;
        }
        if (wasQuoted) stray = true;
        field += chunk.slice(i, j);
        size += j - i;
        i = j;
        if (size > MAX_RECORD_CHARS) {
          tooLong = true;
          field = '';
        }
      }
    }
  }
  if (quoted) {
    // An open quote swallows the rest of the file: one error, at the line where it opened.
    yield { line: start, error: `line ${start}: a quoted field is not closed before the end of the file; add the closing quote (")` };
    return;
  }
  if (fields.length > 0 || field !== '' || wasQuoted) {
    const row = finish();
    if (row) yield row;
  }
}


function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) count++;
  return count;
}
