// The CA side of the core (what a SCEP endpoint needs), exported by the Node and workerd entries only: the
// browser build of the wasm leaves it out.
export {
  validateProfile,
  storedProfile,
  updatedProfile,
  serverCaCaps,
  readRequest,
  certRep,
  ServerKey,
  ServerIdentity,
  PkiOperation,
  decideHeld,
  newEnrollment,
  crlRenewal,
  raCertificate,
  FailureLimit,
  clientKey,
  failureLimits,
} from '#core';
