import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf, checkOwner } from '../../platform/http/access.ts';
import { applicationIdParam } from '../../platform/http/request-input.ts';
import { textField } from '../../platform/http/text-input.ts';
import { DomainError, invalidInput } from '../../domain/errors.ts';
import type { SqlClient, SqlQueryable } from '../../platform/sql/sql-client.ts';
import type { UnitOfWork } from '../../platform/eventstore/session.ts';
import { idsIn } from '../data-subjects/index.ts';
import { sealBytes, sealedBytesSubject, sealedSubject, unsealBytes, type Sealed } from '../../privacy/sealing.ts';
import type { PersonalDataVault } from '../../privacy/vault.ts';
import type { SubjectKeys } from '../../privacy/subject-keys.ts';
import { applicationSubmitter } from '../application/index.ts';
import type { EventStore, StoredEvent } from '../../platform/eventstore/types.ts';
import { defineConsumer } from '../../platform/messaging/consumer.ts';
import { cancelJob, scheduleJob, type Job, type JobOutcome } from '../../platform/messaging/jobs.ts';
import { stampEvents, type Cause, type ServiceModule } from '../../platform/service.ts';
import { checkDocuments, type ApplicationFacts, type OverBudget } from './checks.ts';
import { documentsStreamId } from './events.ts';
import { createDocumentFileStore, type DocumentFileStore, type FileCipher } from './file-store.ts';
import { openPdfReaders, type PdfReading } from './pdf-reader.ts';
import { isPdf } from './pdf-text.ts';
import { documentKinds, samplePdf, sampleDefects, type DocumentKind, type SampleDefect } from './sample-pdfs.ts';
import { createEventCatalog } from '../../platform/eventstore/event-catalog.ts';
import type { LatestEventOf } from '../../platform/eventstore/event-definition.ts';
import { ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, MortgageApplicationSubmitted, PropertyDetailsUpdated } from '../application/index.ts';
import { PersonalDataErased } from '../data-subjects/index.ts';
import { documentsEventHistory } from './events.ts';
import type { DocumentsConfig } from './config.ts';

/** The Document service's own events, at their latest versions. */
const known = createEventCatalog(documentsEventHistory);
type Known = LatestEventOf<typeof documentsEventHistory>;
type KnownOf<T extends Known['type']> = Extract<Known, { type: T }>;

const validateQueue = 'documents.validate';
const actor = 'system:documents';

/** The declared facts the documents must support, and the names the sample documents print. */
export type DocumentFacts = ApplicationFacts & { readonly firstName: string; readonly lastName: string; readonly region: string };

/**
 * What the service keeps of an application: its facts, and the applicant as the submission
 * carried them, sealed with their key, so that their erasure leaves nothing readable here.
 */
type StoredFacts = Omit<DocumentFacts, 'taxCode' | 'firstName' | 'lastName'> & { readonly applicant: Sealed };

type Applicant = Static<typeof MortgageApplicationSubmitted.schema>['applicant'];

type ValidationJob = { readonly cause: Cause };

type DocumentsApplication = {
  facts: StoredFacts;
  status: 'open' | 'validated' | 'closed';
};

async function findApplication(db: SqlQueryable, applicationId: string): Promise<DocumentsApplication | undefined> {
  const [row] = await db.query<DocumentsApplication>('SELECT facts, status FROM mutuo_documents_applications WHERE application_id = $1', [applicationId]);
  return row;
}

/** What a document gives its check: its text (none when it cannot be opened), or the budget it went over. */
function checkedContent(reading: PdfReading): string | OverBudget {
  if (reading.status === 'read') return reading.text;
  return reading.status === 'unreadable' ? '' : reading;
}

/** The facts with the applicant opened, or undefined once their data is erased. */
async function openFacts(vault: PersonalDataVault, facts: StoredFacts): Promise<DocumentFacts | undefined> {
  const [applicant] = (await vault.open([facts.applicant])) as [Applicant | undefined];
  if (!applicant) return undefined;
  const { applicant: _sealed, ...rest } = facts;
  return { ...rest, taxCode: applicant.taxCode, firstName: applicant.firstName, lastName: applicant.lastName };
}

/**
 * The documents are the applicant's personal data: each file is sealed with their key (the
 * subject their sealed applicant names), so that their erasure leaves any copy of it (a
 * backup) unreadable, as it does their events.
 */
function applicantsKeys(db: SqlQueryable, keys: SubjectKeys): FileCipher {
  return {
    async seal(applicationId, bytes) {
      const application = await findApplication(db, applicationId);
      const subjectId = application ? sealedSubject(application.facts.applicant) : undefined;
      const key = subjectId ? (await keys.keysOf([subjectId])).get(subjectId) : undefined;
      if (!subjectId || !key) throw new DomainError('rule', 'DOCUMENTS_CLOSED', "this application takes no more documents: its applicant's data was erased");
      return sealBytes(key, subjectId, bytes);
    },
    async open(_applicationId, bytes) {
      const subjectId = sealedBytesSubject(bytes);
      // Written before documents were sealed: as it is.
      if (subjectId === undefined) return bytes;
      const key = (await keys.keysOf([subjectId])).get(subjectId);
      if (!key) throw new DomainError('not_found', 'DOCUMENT_NOT_FOUND', "the document was erased with its applicant's data");
      return unsealBytes(key, bytes);
    },
  };
}

/** The latest upload of each kind, and the documents events in order. */
function documentsState(history: readonly StoredEvent[]) {
  const events = history.map((stored) => known.decode(stored.type, stored.schemaVersion, stored.data));
  const latest = new Map<DocumentKind, { sha256: string; fileName: string; sizeBytes: number; uploadedAt: string }>();
  let rejections = 0;
  let lastChecked: string | undefined;
  let verdict: KnownOf<'DocumentsValidated' | 'DocumentsRejected'> | undefined;
  for (const event of events) {
    if (event.type === 'DocumentUploaded') latest.set(event.data.kind, event.data);
    if (event.type === 'DocumentsRejected') rejections++;
    if (event.type === 'DocumentsValidated' || event.type === 'DocumentsRejected') {
      verdict = event;
      lastChecked = checkedSetKey(event.data.documents);
    }
  }
  return { latest, rejections, lastChecked, verdict };
}

const checkedSetKey = (documents: readonly { kind: string; sha256: string }[]) =>
  [...documents]
    .sort((a, b) => a.kind.localeCompare(b.kind))
    .map((document) => `${document.kind}:${document.sha256}`)
    .join(',');

/** What the Document service needs beside the platform: its settings and the vault whose keys seal the files. */
export type DocumentsNeeds = { readonly config: DocumentsConfig; readonly personalData: PersonalDataVault };

/**
 * The Document service: takes the applicant's PDFs, keeps them content-addressed on
 * disk, and once one of each kind is in, reads their text and checks them against the
 * declared facts (a job, off the request path). It writes only `documents-<id>` streams.
 */
/** What the service's consumer takes: declared on the bus before anything is published, so that it misses nothing. */
const consumes = {
  name: 'documents',
  events: [MortgageApplicationSubmitted, PropertyDetailsUpdated, ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, PersonalDataErased],
} as const;

export const documentsModule: ServiceModule<DocumentsNeeds> = {
  name: 'documents',
  consumes,
  async start({ config, client, sessions, store, clock, newId, personalData }) {
    const files = createDocumentFileStore(config.directory, applicantsKeys(client, personalData.keys));
    const { maxRejections, reading } = config;
    // As many as the checks that run at once: a check never waits for a process.
    const readers = openPdfReaders(reading, reading.concurrency);

    const consumer = defineConsumer({
      ...consumes,
      async handle(event, session) {
        const { tx } = session;
        if (event.type === 'PersonalDataErased') {
          // Sealed with the destroyed key, the files are unreadable already; they go all the
          // same, so as not to keep what nobody can read. A crash before the commit delivers
          // the event again, and deleting what is gone already is nothing.
          for (const applicationId of idsIn(event.data.streams, 'application-')) await files.removeAll(applicationId);
          return;
        }
        const applicationId = event.partitionKey;
        switch (event.type) {
          case 'MortgageApplicationSubmitted': {
            const { income, property, loan } = event.data;
            const applicant = event.sealed?.applicant;
            if (!applicant) throw new Error('the submission carries no sealed applicant: personal data is never kept in the clear');
            const facts: StoredFacts = {
              applicant,
              region: property.region,
              monthlyNetCents: income.monthlyNetCents,
              loanAmountCents: loan.amountCents,
              propertyValueCents: property.valueCents,
              publicGuarantee: loan.publicGuarantee,
            };
            await tx.query(
              `INSERT INTO mutuo_documents_applications (application_id, facts, owner) VALUES ($1, $2::jsonb, $3) ON CONFLICT (application_id) DO NOTHING`,
              [applicationId, JSON.stringify(facts), event.metadata.actor],
            );
            return;
          }
          case 'PropertyDetailsUpdated':
            await tx.query(
              `UPDATE mutuo_documents_applications SET facts = jsonb_set(facts, '{propertyValueCents}', to_jsonb($2::bigint)) WHERE application_id = $1`,
              [applicationId, event.data.property.valueCents],
            );
            return;
          default:
            // Approved, rejected or withdrawn: no more uploads, and no check left to make.
            await tx.query(`UPDATE mutuo_documents_applications SET status = 'closed' WHERE application_id = $1`, [applicationId]);
            await cancelJob(session, validateQueue, applicationId);
        }
      },
    });

    async function validate(job: Job<ValidationJob>, outcome: JobOutcome) {
      const applicationId = job.key;
      const [application, history] = await Promise.all([findApplication(client, applicationId), store.readStream(documentsStreamId(applicationId))]);
      const state = documentsState(history);
      const facts = application ? await openFacts(personalData, application.facts) : undefined;
      const documents = documentKinds.flatMap((kind) => {
        const latest = state.latest.get(kind);
        return latest ? [{ kind, sha256: latest.sha256 }] : [];
      });
      // Not all three yet, this exact set was checked already, or uploads are closed: nothing to decide.
      if (
        !application ||
        !facts ||
        application.status !== 'open' ||
        documents.length < documentKinds.length ||
        checkedSetKey(documents) === state.lastChecked
      ) {
        await outcome.complete();
        return;
      }
      const contents = {} as Record<DocumentKind, string | OverBudget>;
      // One after another in the one process lent to the check: a check costs at most a core and that process's memory.
      await readers.withReader(async (reader) => {
        for (const { kind, sha256 } of documents) contents[kind] = checkedContent(await reader.read(await files.read(applicationId, sha256)));
      });
      const verdict = checkDocuments(facts, contents);
      const at = clock().toISOString();
      const findings = verdict.findings.map((finding) => ({ ...finding }));
      const rejections = state.rejections + 1;
      const final = rejections >= maxRejections;
      const decided: Known = verdict.valid
        ? { type: 'DocumentsValidated', data: { applicationId, documents, findings, validatedAt: at } }
        : {
            type: 'DocumentsRejected',
            data: {
              applicationId,
              documents,
              findings,
              reasons: verdict.findings.filter((finding) => !finding.passed).map((finding) => finding.message),
              rejections,
              final,
              rejectedAt: at,
            },
          };
      await outcome.complete(async (session) => {
        await session.append(documentsStreamId(applicationId), stampEvents(known, [decided], job.payload.cause, actor, clock(), newId), history.length);
        const status = verdict.valid ? 'validated' : final ? 'closed' : 'open';
        await session.tx.query('UPDATE mutuo_documents_applications SET status = $2 WHERE application_id = $1', [applicationId, status]);
      });
    }

    return {
      consumers: [consumer],
      jobs: [
        {
          queue: validateQueue,
          handle: validate,
          concurrency: reading.concurrency,
          // Each document's read, and the start of a process for it, are bounded by the time budget; the rest is the database's.
          leaseMs: 2 * documentKinds.length * reading.timeoutMs + 30_000,
        },
      ],
      routes: [
        (app) =>
          app.register(documentRoutes, {
            client,
            files,
            maxBytes: config.maxBytes,
            maxUploads: config.maxUploadsPerApplication,
            sandbox: config.sandbox,
            clock,
            newId,
            sessions,
            store,
            personalData,
          }),
      ],
      close: readers.close,
      describe: `documents: stored in ${config.directory}`,
    };
  },
};

type DocumentRoutesOptions = {
  readonly client: SqlClient;
  readonly files: DocumentFileStore;
  readonly maxBytes: number;
  readonly maxUploads: number;
  readonly sandbox: boolean;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly sessions: UnitOfWork;
  /** The application's documents stream, read outside any session. */
  readonly store: Pick<EventStore, 'readStream'>;
  readonly personalData: PersonalDataVault;
};

/** How long an upload right after a submission waits for the Document service to hear of the application. */
const knownWithinMs = 2_000;

const Params = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const documentRoutes: FastifyPluginAsyncTypebox<DocumentRoutesOptions> = async (app, options) => {
  const { client, files, clock, newId } = options;
  await app.register(multipart, { limits: { fileSize: options.maxBytes, files: 1, fields: 4, parts: 5 } });

  /**
   * The application as this service knows it. Whether it exists and whose it is come from
   * its own stream, in one query, so that one that does not exist and someone else's (for
   * an applicant) are answered alike and at once; only the caller's own then waits, up to
   * `knownWithinMs`, for this service to hear of a submission still on its way.
   */
  async function knownApplication(request: FastifyRequest, applicationId: string): Promise<DocumentsApplication> {
    const submitter = await applicationSubmitter(client, applicationId);
    if (submitter === undefined) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
    checkOwner(request, submitter ?? undefined);
    const deadline = Date.now() + knownWithinMs;
    for (;;) {
      const application = await findApplication(client, applicationId);
      if (application) return application;
      if (Date.now() > deadline) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Counted from the application's stream, which every process of the service shares. */
  async function checkUploadsLeft(db: SqlQueryable, applicationId: string): Promise<void> {
    const [row] = await db.query<{ uploads: number }>(
      `SELECT count(*)::int AS uploads FROM mutuo_events WHERE stream_id = $1 AND event_type = 'DocumentUploaded'`,
      [documentsStreamId(applicationId)],
    );
    if ((row?.uploads ?? 0) >= options.maxUploads) {
      throw new DomainError('rule', 'DOCUMENTS_UPLOAD_LIMIT_REACHED', `this application has had its ${options.maxUploads} uploads, the most one takes`);
    }
  }

  app.post(
    '/api/applications/:id/documents',
    {
      config: { permission: 'uploadDocument' },
      schema: {
        summary: 'Upload a document (multipart: kind = id_card | payslip | appraisal, file = the PDF)',
        consumes: ['multipart/form-data'],
        params: Params,
      },
    },
    async (request, reply) => {
      const applicationId = applicationIdParam(request.params.id);
      const application = await knownApplication(request, applicationId);
      let kind: string | undefined;
      let upload: { bytes: Buffer } | undefined;
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw invalidInput([{ path: part.fieldname, message: 'unexpected file; send the PDF as "file"' }]);
          upload = { bytes: await part.toBuffer() };
        } else if (part.fieldname === 'kind') {
          kind = textField('kind', part.value);
        }
      }
      const errors = [];
      if (!documentKinds.includes(kind as DocumentKind)) errors.push({ path: 'kind', message: `must be one of ${documentKinds.join(', ')}` });
      if (!upload || upload.bytes.length === 0) errors.push({ path: 'file', message: 'a PDF file is required' });
      else if (!isPdf(upload.bytes)) errors.push({ path: 'file', message: 'must be a PDF' });
      if (errors.length > 0 || !upload) throw invalidInput(errors);
      if (application.status === 'validated') {
        throw new DomainError('rule', 'DOCUMENTS_ALREADY_VALIDATED', 'the documents of this application are validated already');
      }
      if (application.status === 'closed') {
        throw new DomainError('rule', 'DOCUMENTS_CLOSED', 'this application takes no more documents');
      }
      // Before the file is written, so that uploads past the limit leave nothing on disk.
      await checkUploadsLeft(client, applicationId);
      // The file first, then the event: a crash in between leaves an unreferenced file, never an event without its file.
      const stored = await files.save(applicationId, upload.bytes);
      const now = clock();
      const cause: Cause = { correlationId: request.id, causationId: null };
      // Not the name the client gave the file: free text, it may name the person, and the
      // event outlives their erasure in the clear.
      const uploaded: Known = {
        type: 'DocumentUploaded',
        data: {
          applicationId,
          kind: kind as DocumentKind,
          sha256: stored.sha256,
          sizeBytes: stored.sizeBytes,
          fileName: `${kind}.pdf`,
          uploadedAt: now.toISOString(),
        },
      };
      const result = await options.sessions.run(async (session) => {
        const { tx } = session;
        // Again under the application's row lock: uploads arriving at once, in any process, are counted one after another.
        await tx.query('SELECT 1 FROM mutuo_documents_applications WHERE application_id = $1 FOR UPDATE', [applicationId]);
        await checkUploadsLeft(tx, applicationId);
        const appended = await session.append(documentsStreamId(applicationId), stampEvents(known, [uploaded], cause, actorOf(request), now, newId), 'any');
        const payload: ValidationJob = { cause };
        await scheduleJob(session, { queue: validateQueue, key: applicationId, payload, dueAt: now });
        return appended;
      });
      return reply
        .status(202)
        .send({ applicationId, kind, sha256: stored.sha256, sizeBytes: stored.sizeBytes, version: result.nextVersion, position: result.lastPosition });
    },
  );

  app.get(
    '/api/applications/:id/documents',
    { config: { permission: 'readApplication' }, schema: { summary: 'The uploaded documents and the outcome of their last check', params: Params } },
    async (request) => {
      const applicationId = applicationIdParam(request.params.id);
      const application = await knownApplication(request, applicationId);
      const state = documentsState(await options.store.readStream(documentsStreamId(applicationId)));
      return {
        applicationId,
        status: application.status,
        documents: [...state.latest].map(([kind, document]) => ({ kind, ...document })),
        ...(state.verdict ? { lastCheck: { outcome: state.verdict.type === 'DocumentsValidated' ? 'validated' : 'rejected', ...state.verdict.data } } : {}),
      };
    },
  );

  if (!options.sandbox) return;
  app.get(
    '/api/sandbox/applications/:id/documents/:kind',
    {
      // It prints the applicant's name and tax code: the same access as an upload.
      config: { permission: 'uploadDocument' },
      schema: {
        summary: 'Sandbox: a sample PDF of this kind that matches the application, or carries the given defect',
        params: Type.Object({ id: Type.String({ format: 'uuid' }), kind: Type.Union(documentKinds.map((kind) => Type.Literal(kind))) }),
        querystring: Type.Object({ defect: Type.Optional(Type.Union(sampleDefects.map((defect) => Type.Literal(defect)))) }),
      },
    },
    async (request, reply) => {
      const application = await knownApplication(request, applicationIdParam(request.params.id));
      const defect: SampleDefect = request.query.defect ?? 'none';
      const facts = await openFacts(options.personalData, application.facts);
      if (!facts) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      const pdf = await samplePdf(request.params.kind, facts, defect);
      return reply
        .type('application/pdf')
        .header('content-disposition', `attachment; filename="${request.params.kind}${defect === 'none' ? '' : `-${defect}`}.pdf"`)
        .send(Buffer.from(pdf));
    },
  );
};
