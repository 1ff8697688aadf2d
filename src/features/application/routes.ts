import { Type, type Static, type TProperties } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { actorOf } from '../../platform/http/access.ts';
import { applicationIdParam, ifMatchVersion, instantParam } from '../../platform/http/request-input.ts';
import type { Permission } from '../../security/permissions.ts';
import { DomainError, invalidInput, type FieldError } from '../../domain/errors.ts';
import { annualRateFromPercent, annualRateRule } from '../../domain/annual-rate.ts';
import { eurosToCents } from '../../domain/money.ts';
import { defaultLockDays, type PropertyInput } from './decider.ts';
import type { ApplicationService, CommandContext, CommandResult } from './service.ts';
import { applicationStateView } from './view.ts';

const Euros = Type.Number({ description: 'euros, at most two decimals' });
const Text = Type.String({ maxLength: 200 });

const PropertyBody = Type.Object(
  {
    value: Euros,
    region: Text,
    province: Type.Optional(Text),
    type: Type.Optional(Text),
    energyClass: Type.Optional(Text),
  },
  { additionalProperties: false },
);

const SubmitBody = Type.Object(
  {
    applicant: Type.Object(
      {
        firstName: Text,
        lastName: Text,
        taxCode: Text,
        email: Text,
        phone: Type.Optional(Text),
        birthDate: Type.Optional(Type.String({ description: 'YYYY-MM-DD' })),
      },
      { additionalProperties: false },
    ),
    income: Type.Object({ monthlyNet: Euros, monthlyDebts: Type.Optional(Euros), employment: Text }, { additionalProperties: false }),
    property: PropertyBody,
    loan: Type.Object(
      {
        amount: Euros,
        termYears: Type.Integer(),
        rateType: Type.Unsafe<'fixed' | 'variable'>({ type: 'string', enum: ['fixed', 'variable'] }),
        publicGuarantee: Type.Optional(Type.Boolean({ description: 'a public guarantee lifts the loan-to-value cap from 80 % to 100 %' })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const CommandAccepted = Type.Object({
  applicationId: Type.String({ format: 'uuid' }),
  version: Type.Integer({ description: 'the stream version after the command' }),
  position: Type.Integer({ description: 'the global position of the last event written' }),
});

const IdParams = Type.Object({ id: Type.String() });
const IfMatchHeaders = Type.Object({ 'if-match': Type.Optional(Type.String({ description: 'the version the client last saw, "<version>"' })) });

/** The authenticated caller is the actor; the correlation id ties the events to the request. */
function commandContext(request: FastifyRequest): CommandContext {
  const expectedVersion = ifMatchVersion(request);
  return {
    correlationId: request.id,
    actor: actorOf(request),
    ...(expectedVersion !== undefined ? { expectedVersion } : {}),
    ...(request.ownerScope !== undefined ? { owner: request.ownerScope } : {}),
  };
}

const applicationId = (params: { id: string }): string => applicationIdParam(params.id);

/** Euros (at most two decimals) to cents, recording a field error instead when they are not. */
function cents(euros: number, path: string, errors: FieldError[]): number {
  const value = eurosToCents(euros);
  if (value === null) {
    errors.push({ path, message: 'must be an amount in euros with at most two decimals' });
    return Number.NaN;
  }
  return value;
}

function propertyInput(body: Static<typeof PropertyBody>, path: string, errors: FieldError[]): PropertyInput {
  return {
    valueCents: cents(body.value, `${path}.value`, errors),
    region: body.region,
    ...(body.province !== undefined ? { province: body.province } : {}),
    ...(body.type !== undefined ? { type: body.type } : {}),
    ...(body.energyClass !== undefined ? { energyClass: body.energyClass } : {}),
  };
}

function throwIfAny(errors: readonly FieldError[]): void {
  if (errors.length > 0) throw invalidInput(errors);
}

export const applicationRoutes: FastifyPluginAsyncTypebox<{ applications: ApplicationService }> = async (app, { applications }) => {
  const accepted = (reply: { header: (name: string, value: string) => unknown }, result: CommandResult) => {
    reply.header('etag', `"${result.version}"`);
    return result;
  };
  // Commands whose fields are all optional may be sent without a body.
  const bodyOptional = { preValidation: async (request: FastifyRequest) => void (request.body ??= {}) };
  const allowed = (permission: Permission) => ({ config: { permission } });
  const commandSchema = <Body extends TProperties>(summary: string, body: Body) => ({
    summary,
    tags: ['commands'],
    params: IdParams,
    headers: IfMatchHeaders,
    body: Type.Object(body, { additionalProperties: false }),
    response: { 200: CommandAccepted },
  });

  app.post(
    '/api/applications',
    {
      ...allowed('submitApplication'),
      schema: { summary: 'Submit a mortgage application', tags: ['commands'], body: SubmitBody, response: { 201: CommandAccepted } },
    },
    async (request, reply) => {
      const { applicant, income, property, loan } = request.body;
      const errors: FieldError[] = [];
      const command = {
        applicant,
        income: {
          monthlyNetCents: cents(income.monthlyNet, 'income.monthlyNet', errors),
          monthlyDebtsCents: cents(income.monthlyDebts ?? 0, 'income.monthlyDebts', errors),
          employment: income.employment,
        },
        property: propertyInput(property, 'property', errors),
        loan: {
          amountCents: cents(loan.amount, 'loan.amount', errors),
          termYears: loan.termYears,
          rateType: loan.rateType,
          publicGuarantee: loan.publicGuarantee ?? false,
        },
      };
      throwIfAny(errors);
      const result = await applications.submit(command, commandContext(request));
      reply.status(201).header('location', `/api/applications/${result.applicationId}`);
      return accepted(reply, result);
    },
  );

  app.post(
    '/api/applications/:id/income-approval',
    { ...allowed('approveIncome'), schema: commandSchema('Approve the declared income', { verifiedMonthlyNet: Euros, note: Type.Optional(Text) }) },
    async (request, reply) => {
      const body = request.body;
      const errors: FieldError[] = [];
      const verifiedMonthlyNetCents = cents(body.verifiedMonthlyNet, 'verifiedMonthlyNet', errors);
      throwIfAny(errors);
      const command = { type: 'ApproveIncome' as const, verifiedMonthlyNetCents, ...(body.note !== undefined ? { note: body.note } : {}) };
      return accepted(reply, await applications.execute(applicationId(request.params), command, commandContext(request)));
    },
  );

  app.post(
    '/api/applications/:id/rate-lock',
    {
      ...bodyOptional,
      ...allowed('lockRate'),
      schema: commandSchema('Lock the published rate', { lockDays: Type.Optional(Type.Integer({ default: defaultLockDays })) }),
    },
    async (request, reply) => {
      const body = request.body;
      const command = { type: 'LockRate' as const, lockDays: body.lockDays ?? defaultLockDays };
      return accepted(reply, await applications.execute(applicationId(request.params), command, commandContext(request)));
    },
  );

  app.post(
    '/api/applications/:id/rate',
    {
      ...allowed('changeRate'),
      schema: commandSchema('Change the rate', { annualRate: Type.Number({ description: 'percent, 3.875 means 3.875 %; at most 4 decimals' }), reason: Text }),
    },
    async (request, reply) => {
      const body = request.body;
      const annualRate = annualRateFromPercent(body.annualRate);
      if (annualRate === null) throw invalidInput([{ path: 'annualRate', message: annualRateRule }]);
      const command = { type: 'ChangeRate' as const, annualRate, reason: body.reason };
      return accepted(reply, await applications.execute(applicationId(request.params), command, commandContext(request)));
    },
  );

  app.put(
    '/api/applications/:id/property',
    { ...allowed('updateProperty'), schema: { ...commandSchema('Update the property details', {}), body: PropertyBody } },
    async (request, reply) => {
      const errors: FieldError[] = [];
      const property = propertyInput(request.body, 'property', errors);
      throwIfAny(errors);
      const command = { type: 'UpdatePropertyDetails' as const, property };
      return accepted(reply, await applications.execute(applicationId(request.params), command, commandContext(request)));
    },
  );

  app.post(
    '/api/applications/:id/withdrawal',
    { ...bodyOptional, ...allowed('withdrawApplication'), schema: commandSchema('Withdraw the application', { reason: Type.Optional(Text) }) },
    async (request, reply) => {
      const body = request.body;
      const command = { type: 'WithdrawApplication' as const, ...(body.reason !== undefined ? { reason: body.reason } : {}) };
      return accepted(reply, await applications.execute(applicationId(request.params), command, commandContext(request)));
    },
  );

  app.get(
    '/api/applications/:id/events',
    { ...allowed('readAuditTrail'), schema: { summary: 'The audit trail: every event of the application', tags: ['queries'], params: IdParams } },
    async (request) => {
      const events = await applications.auditTrail(applicationId(request.params));
      if (events.length === 0) throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', 'no such application');
      return events.map((event) => ({
        eventId: event.eventId,
        type: event.type,
        version: event.streamVersion,
        position: event.position,
        schemaVersion: event.schemaVersion,
        data: event.data,
        metadata: event.metadata,
        recordedAt: event.recordedAt.toISOString(),
      }));
    },
  );

  app.get(
    '/api/applications/:id/state',
    {
      ...allowed('readAuditTrail'),
      schema: {
        summary: 'The application as it was after a version or at an instant',
        tags: ['queries'],
        params: IdParams,
        querystring: Type.Object(
          {
            version: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$', description: 'stream version' })),
            asOf: Type.Optional(Type.String({ description: 'ISO 8601 instant' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const id = applicationId(request.params);
      const { version, asOf } = request.query;
      if (version !== undefined && asOf !== undefined) {
        throw invalidInput([{ path: 'querystring.asOf', message: 'give either version or asOf, not both' }]);
      }
      const asOfDate = asOf === undefined ? undefined : instantParam(asOf, 'querystring.asOf');
      const at = await applications.stateAt(id, {
        ...(version !== undefined ? { version: Number(version) } : {}),
        ...(asOfDate ? { asOf: asOfDate } : {}),
      });
      if (at.state.status === 'none') {
        throw new DomainError('not_found', 'APPLICATION_NOT_FOUND', asOfDate ? 'the application did not exist at that instant' : 'no such application');
      }
      if (version !== undefined && at.version !== Number(version)) {
        throw new DomainError('not_found', 'VERSION_NOT_FOUND', `the application has no version ${version}; its latest is ${at.version}`);
      }
      return { ...(asOfDate ? { asOf: asOfDate.toISOString() } : {}), ...applicationStateView(at.state, at.version) };
    },
  );
};
