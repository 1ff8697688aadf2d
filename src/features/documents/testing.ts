import { createDeflate } from 'node:zlib';

/** A PDF written out object by object (object 1 is the catalog), with its cross-reference table. */
function pdfOf(objects: readonly (string | Buffer)[][]): Uint8Array {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  const add = (part: string | Buffer) => {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
    parts.push(bytes);
    length += bytes.length;
  };
  objects.forEach((pieces, i) => {
    offsets.push(length);
    add(`${i + 1} 0 obj\n`);
    pieces.forEach(add);
    add('\nendobj\n');
  });
  const xref = length;
  add(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`);
  add(offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join(''));
  add(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

/** `size` bytes of zeros, deflated as they are made, so that the test never holds them. */
async function deflatedZeros(size: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  const megabyte = Buffer.alloc(1_048_576);
  for (let left = size; left > 0; left -= megabyte.length) {
    if (!deflate.write(left >= megabyte.length ? megabyte : megabyte.subarray(0, left))) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await ended;
  return Buffer.concat(chunks);
}

/** A one-page PDF whose content stream (FlateDecode) inflates to `inflatedBytes` of zeros: a few hundred kilobytes that unpack to hundreds of megabytes. */
export async function inflationBombPdf(inflatedBytes: number): Promise<Uint8Array> {
  const content = await deflatedZeros(inflatedBytes);
  return pdfOf([
    ['<< /Type /Catalog /Pages 2 0 R >>'],
    ['<< /Type /Pages /Kids [3 0 R] /Count 1 >>'],
    ['<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>'],
    [`<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`, content, '\nendstream'],
  ]);
}

/** A PDF of `count` pages, each a line of text, which share one content stream: 20,000 pages take about 2 MB. */
export function manyPagesPdf(count: number): Uint8Array {
  const firstPage = 5;
  const pages = Array.from({ length: count }, (_, i) => `${firstPage + i} 0 R`);
  const text = 'BT /F1 12 Tf 56 780 Td (A page of many) Tj ET';
  return pdfOf([
    ['<< /Type /Catalog /Pages 2 0 R >>'],
    [`<< /Type /Pages /Kids [${pages.join(' ')}] /Count ${count} >>`],
    ['<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'],
    [`<< /Length ${text.length} >>\nstream\n${text}\nendstream`],
    ...pages.map(() => ['<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> >>']),
  ]);
}
