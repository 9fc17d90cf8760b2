// The Node entry's declarations: the client and the CA side.
import { enroll, FailureLimit, PkiOperation, ScepError, type Step } from 'scepkit';

export function next(op: PkiOperation): string {
  const step: Step = op.step;
  switch (step.step) {
    case 'needFacts':
      return step.query.profileId;
    case 'callWebhook':
      return step.call.url;
    case 'answer':
      return String(step.body.byteLength);
    default:
      return step.step;
  }
}

export const limit = new FailureLimit();
export const refusal = limit.refused('192.0.2.1', 0)?.retryAfter;
export const client = enroll;
export const isError = (e: unknown) => e instanceof ScepError && e.status >= 400;
