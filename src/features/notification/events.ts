import { Type } from '@sinclair/typebox';
import { defineEvent } from '../../platform/eventstore/event-definition.ts';

export const NotificationSent = defineEvent(
  'NotificationSent',
  1,
  Type.Object({
    applicationId: Type.String({ format: 'uuid' }),
    channel: Type.Literal('email'),
    template: Type.String(),
    /** The event this notification answers: sent once per event and channel. */
    answersEventId: Type.String({ format: 'uuid' }),
    answersEventType: Type.String(),
    messageId: Type.String(),
    sentAt: Type.String({ format: 'date-time' }),
  }),
);

export const notificationEventHistory = [NotificationSent] as const;

export const notificationStreamId = (applicationId: string): string => `notification-${applicationId}`;
