// `scepkit/server` (the Worker's build): the CA side only.
import { decideHeld, PkiOperation, ScepError } from 'scepkit/server';
// @ts-expect-error the Worker's build has no client
import { enroll } from 'scepkit/server';

export const machine: typeof PkiOperation = PkiOperation;
export const decide = decideHeld;
export const error = ScepError;
void enroll;
