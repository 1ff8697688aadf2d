/** The Document service's settings, read once by the composition root (app/config.ts). */
export type DocumentsConfig = {
  /** Whether the sandbox's sample documents are served (never in production). */
  readonly sandbox: boolean;
  readonly directory: string;
  readonly maxBytes: number;
  readonly maxRejections: number;
  /** Uploads one application takes in all, whatever their kind; more answer 422. */
  readonly maxUploadsPerApplication: number;
  /** What reading one PDF may cost; a document over any of them is refused with a finding that names it. */
  readonly reading: {
    readonly timeoutMs: number;
    /** The resident memory of the process that reads the documents. */
    readonly memoryMb: number;
    readonly maxPages: number;
    /** The bytes its compressed streams unpack to, all of them together. */
    readonly maxInflatedBytes: number;
    /** Checks run at once, each reading its documents in a process lent to it alone: as many reading processes are kept. */
    readonly concurrency: number;
  };
};
