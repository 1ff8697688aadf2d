import type { ReadAnswer, ReadRequest } from './pdf-reader.ts';
import { extractPdfText, PdfOverBudgetError, PdfUnreadableError } from './pdf-text.ts';

/**
 * The process pdf-reader.ts starts to read PDFs in: it answers each document sent with
 * its text or what kept it from being read, and ends when the server lets go of it.
 */
async function answer({ bytes, limits }: ReadRequest): Promise<ReadAnswer> {
  try {
    return { status: 'read', text: await extractPdfText(bytes, limits) };
  } catch (error) {
    if (error instanceof PdfOverBudgetError) return { status: 'overBudget', budget: error.budget, limit: error.limit };
    if (error instanceof PdfUnreadableError) return { status: 'unreadable' };
    throw error;
  }
}

const send = (message: ReadAnswer) => process.send!(message);

process.on('message', (request: ReadRequest) => {
  // An error of no known kind ends this process, and the server takes the document as unreadable.
  void answer(request).then(send);
});
process.on('disconnect', () => process.exit());
send({ status: 'ready' });
