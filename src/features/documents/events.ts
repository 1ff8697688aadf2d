import { Type } from '@sinclair/typebox';
import { defineEvent } from '../../platform/eventstore/event-definition.ts';

const Uuid = Type.String({ format: 'uuid' });
const Instant = Type.String({ format: 'date-time' });
const Kind = Type.Union([Type.Literal('id_card'), Type.Literal('payslip'), Type.Literal('appraisal')]);
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const DocumentUploaded = defineEvent(
  'DocumentUploaded',
  1,
  Type.Object({
    applicationId: Uuid,
    kind: Kind,
    sha256: Sha256,
    sizeBytes: Type.Integer({ minimum: 1 }),
    fileName: Type.String(),
    uploadedAt: Instant,
  }),
);

const Finding = Type.Object({
  kind: Kind,
  check: Type.String(),
  passed: Type.Boolean(),
  found: Type.Union([Type.String(), Type.Null()]),
  expected: Type.String(),
  message: Type.String(),
});

/** The set of documents checked: the latest upload of each kind. */
const Checked = Type.Array(Type.Object({ kind: Kind, sha256: Sha256 }));

export const DocumentsValidated = defineEvent(
  'DocumentsValidated',
  1,
  Type.Object({ applicationId: Uuid, documents: Checked, findings: Type.Array(Finding), validatedAt: Instant }),
);

export const DocumentsRejected = defineEvent(
  'DocumentsRejected',
  1,
  Type.Object({
    applicationId: Uuid,
    documents: Checked,
    findings: Type.Array(Finding),
    reasons: Type.Array(Type.String()),
    /** How many times this application's documents were rejected, this one included. */
    rejections: Type.Integer({ minimum: 1 }),
    /** No corrected upload is taken after a final rejection: the application is rejected. */
    final: Type.Boolean(),
    rejectedAt: Instant,
  }),
);

export const documentsEventHistory = [DocumentUploaded, DocumentsValidated, DocumentsRejected] as const;

export const documentsStreamId = (applicationId: string): string => `documents-${applicationId}`;
