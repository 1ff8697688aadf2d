import { constants, createInflate } from 'node:zlib';
import { extractText, getDocumentProxy } from 'unpdf';
import { DomainError } from '../../domain/errors.ts';

/** The bytes are not a PDF that can be opened (malformed, truncated, encrypted): invalid input, so a 400. */
export class PdfUnreadableError extends DomainError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid', 'PDF_UNREADABLE', message);
    this.name = 'PdfUnreadableError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** What reading one PDF may cost: `pages` and `inflatedBytes` are checked here, `time` and `memory` by the process that runs this (pdf-reader.ts). */
export type PdfBudget = 'pages' | 'inflatedBytes' | 'time' | 'memory';

export type PdfLimits = { readonly maxPages: number; readonly maxInflatedBytes: number };

/** The PDF is over one of its limits: it is not read any further. */
export class PdfOverBudgetError extends Error {
  constructor(
    readonly budget: PdfBudget,
    readonly limit: number,
  ) {
    super(`the PDF is over its ${budget} budget of ${limit}`);
    this.name = 'PdfOverBudgetError';
  }
}

const PDF_MAGIC = [0x25, 0x50, 0x44, 0x46, 0x2d]; // "%PDF-"

/** Whether the bytes start with the PDF header. Only a cheap sniff: the file may still be malformed. */
export function isPdf(bytes: Uint8Array): boolean {
  return bytes.length >= PDF_MAGIC.length && PDF_MAGIC.every((byte, i) => bytes[i] === byte);
}

const streamKeyword = Buffer.from('stream');
const endStreamKeyword = Buffer.from('endstream');

/**
 * The data of every stream, found by its keywords rather than by the objects' /Length
 * (which a file may leave out or get wrong, and pdf.js then looks for `endstream` too).
 */
function* streamData(pdf: Buffer): Generator<Buffer> {
  let from = 0;
  for (;;) {
    const keyword = pdf.indexOf(streamKeyword, from);
    if (keyword < 0) return;
    from = keyword + streamKeyword.length;
    if (pdf.toString('latin1', Math.max(keyword - 3, 0), keyword) === 'end') continue;
    let start = from;
    if (pdf[start] === 0x0d) start++;
    if (pdf[start] === 0x0a) start++;
    const end = pdf.indexOf(endStreamKeyword, start);
    from = end < 0 ? pdf.length : end;
    yield pdf.subarray(start, from);
  }
}

/** Whether the data starts with a zlib header (RFC 1950): FlateDecode's data does, and pdf.js inflates nothing else. */
function isZlib(data: Buffer): boolean {
  const [method, flags] = data;
  return method !== undefined && flags !== undefined && (method & 0x0f) === 8 && ((method << 8) | flags) % 31 === 0;
}

/** The bytes the data inflates to, counted as they come (never held), or just over `limit` once past it. */
async function inflatedSize(data: Buffer, limit: number): Promise<number> {
  // A truncated or damaged stream still counts for what came out of it, as pdf.js reads that much.
  const inflate = createInflate({ finishFlush: constants.Z_SYNC_FLUSH, chunkSize: 65_536 });
  inflate.end(data);
  let size = 0;
  try {
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) break;
    }
  } catch {
    // Damaged past this point: what came out so far is what pdf.js would read.
  }
  return size;
}

/**
 * Refuses a PDF whose compressed streams inflate, together, to more than `limit` bytes:
 * a few hundred kilobytes of deflated zeros unpack to gigabytes, which pdf.js would hold
 * in memory. This looks at the file before pdf.js does.
 */
async function checkInflatedBytes(bytes: Uint8Array, limit: number): Promise<void> {
  let remaining = limit;
  for (const data of streamData(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) {
    if (!isZlib(data)) continue;
    remaining -= await inflatedSize(data, remaining);
    if (remaining < 0) throw new PdfOverBudgetError('inflatedBytes', limit);
  }
}

/**
 * The text of every page, pages joined by newlines. A valid PDF without a text layer
 * (a scan) gives an empty string; a file that cannot be opened throws PdfUnreadableError,
 * one over its limits PdfOverBudgetError, before its pages are read.
 */
export async function extractPdfText(bytes: Uint8Array, limits: PdfLimits): Promise<string> {
  if (!isPdf(bytes)) throw new PdfUnreadableError('the file is not a PDF (no %PDF- header)');
  await checkInflatedBytes(bytes, limits.maxInflatedBytes);
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js takes ownership of the buffer and detaches it, so it gets a copy, not the caller's bytes (and a Uint8Array, which a Buffer is not to it).
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  } catch (error) {
    const reason = error instanceof Error && error.name === 'PasswordException' ? 'it is encrypted' : 'it is malformed';
    throw new PdfUnreadableError(`the PDF cannot be opened: ${reason}`, { cause: error });
  }
  try {
    // The page count comes from the page tree, before any page is read; pdf.js reads exactly that many.
    if (pdf.numPages > limits.maxPages) throw new PdfOverBudgetError('pages', limits.maxPages);
    const { text } = await extractText(pdf, { mergePages: true });
    return text;
  } catch (error) {
    if (error instanceof PdfOverBudgetError) throw error;
    throw new PdfUnreadableError('the text of the PDF cannot be read', { cause: error });
  } finally {
    await pdf.destroy();
  }
}
