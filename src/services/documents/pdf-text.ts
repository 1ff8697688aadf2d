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

const PDF_MAGIC = [0x25, 0x50, 0x44, 0x46, 0x2d]; // "%PDF-"

/** Whether the bytes start with the PDF header. Only a cheap sniff: the file may still be malformed. */
export function isPdf(bytes: Uint8Array): boolean {
  return bytes.length >= PDF_MAGIC.length && PDF_MAGIC.every((byte, i) => bytes[i] === byte);
}

/**
 * The text of every page, pages joined by newlines. A valid PDF without a text layer
 * (a scan) gives an empty string; a file that cannot be opened throws PdfUnreadableError.
 */
export async function extractPdfText(bytes: Uint8Array): Promise<string> {
  if (!isPdf(bytes)) throw new PdfUnreadableError('the file is not a PDF (no %PDF- header)');
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js takes ownership of the buffer and detaches it, so it gets a copy, not the caller's bytes.
    pdf = await getDocumentProxy(bytes.slice(), { verbosity: 0 });
  } catch (error) {
    const reason = error instanceof Error && error.name === 'PasswordException' ? 'it is encrypted' : 'it is malformed';
    throw new PdfUnreadableError(`the PDF cannot be opened: ${reason}`, { cause: error });
  }
  try {
    const { text } = await extractText(pdf, { mergePages: true });
    return text;
  } catch (error) {
    throw new PdfUnreadableError('the text of the PDF cannot be read', { cause: error });
  } finally {
    await pdf.destroy();
  }
}
