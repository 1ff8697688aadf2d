import { assertNever } from '../../domain/errors.ts';

export const templateNames = [
  'application-received',
  'documents-rejected',
  'rate-lock-expired',
  'application-approved',
  'application-rejected',
  'application-withdrawn',
] as const;

export type TemplateName = (typeof templateNames)[number];

/** Templates that close an application: nothing is sent for it after one of these. */
export const finalTemplates: ReadonlySet<TemplateName> = new Set<TemplateName>(['application-approved', 'application-rejected', 'application-withdrawn']);

export type EmailFacts = {
  readonly firstName: string;
  readonly lastName: string;
  readonly applicationId: string;
  readonly amountCents?: number;
  readonly termYears?: number;
  readonly contractNumber?: string;
  readonly reason?: string | null;
  readonly reasons?: readonly string[];
};

export type RenderedEmail = { readonly subject: string; readonly text: string };

/** `20000000` → `200.000,00 €`, in integer arithmetic so no cent is ever rounded away. */
export function formatEuroCents(amountCents: number): string {
  if (!Number.isSafeInteger(amountCents)) throw new RangeError(`amountCents must be a safe integer, got ${amountCents}`);
  const absoluteCents = Math.abs(amountCents);
  const cents = absoluteCents % 100;
  const euros = String((absoluteCents - cents) / 100).replace(/\B(?=(\d{3})+$)/g, '.');
  return `${amountCents < 0 ? '-' : ''}${euros},${String(cents).padStart(2, '0')} €`;
}

export function renderEmail(template: TemplateName, facts: EmailFacts): RenderedEmail {
  const reference = facts.applicationId.slice(0, 8);
  const email = (subject: string, paragraphs: readonly string[]): RenderedEmail => {
    const body = [
      `Dear ${facts.firstName} ${facts.lastName},`,
      ...paragraphs,
      `Application reference: ${facts.applicationId}`,
      'Kind regards,\nMutuo Mortgage Services',
    ];
    return { subject: `${subject} (ref. ${reference})`, text: `${body.join('\n\n')}\n` };
  };

  switch (template) {
    case 'application-received': {
      const amountCents = required(template, 'amountCents', facts.amountCents);
      const termYears = required(template, 'termYears', facts.termYears);
      return email('We have received your mortgage application', [
        `thank you for applying to Mutuo. We have received your application for a mortgage of ` +
          `${formatEuroCents(amountCents)} over ${termYears} ${termYears === 1 ? 'year' : 'years'}.`,
        'We will now verify your documents and income, and we will write to you at each step.',
      ]);
    }
    case 'documents-rejected': {
      const reasons = facts.reasons ?? [];
      return email('Your documents need to be corrected', [
        reasons.length === 0
          ? 'we could not accept some of the documents you uploaded.'
          : `we could not accept some of the documents you uploaded, for these reasons:\n\n${reasons.map((reason) => `- ${reason}`).join('\n')}`,
        'Please upload corrected documents in your application area so that we can continue.',
      ]);
    }
    case 'rate-lock-expired':
      return email('Your interest rate lock has expired', [
        'the interest rate we locked for your mortgage has expired before the contract could be signed.',
        'To continue, please lock a new rate (relock) in your application area. The new rate follows current market conditions.',
      ]);
    case 'application-approved': {
      const contractNumber = required(template, 'contractNumber', facts.contractNumber);
      return email('Your mortgage has been approved', [
        'we are pleased to inform you that your mortgage application has been approved.',
        `Your contract number is ${contractNumber}. Please quote it in any correspondence with us.`,
      ]);
    }
    case 'application-rejected':
      // A reason recorded before reasons were sealed is not copied into a message's job: the record has it.
      return email('The outcome of your mortgage application', [
        'we regret to inform you that we are unable to grant the mortgage you applied for.',
        facts.reason ? `Reason: ${facts.reason}` : 'The reason is recorded with your application; you may ask us for it.',
      ]);
    case 'application-withdrawn':
      return email('Your mortgage application has been withdrawn', [
        facts.reason ? `your mortgage application has been withdrawn. Reason given: ${facts.reason}` : 'your mortgage application has been withdrawn.',
        'If you did not request this, please contact us.',
      ]);
    default:
      return assertNever(template);
  }
}

/** A missing fact is a bug upstream: better no email than one that reads "undefined". */
function required<T>(template: TemplateName, fact: keyof EmailFacts, value: T | undefined): T {
  if (value === undefined) throw new Error(`template ${template} needs the fact ${fact}`);
  return value;
}
