//! scepkit: SCEP (RFC 8894) for browsers, Cloudflare Workers and Node, as one sans-IO core.
//!
//! The core takes bytes, facts, keys, randomness and the current time as arguments and returns bytes and
//! decisions; the JS shells do all I/O.

pub mod algorithms;
pub mod caps;
pub mod client;
pub mod csr;
pub mod envelope;
pub mod error;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod message;
pub mod pkcs12;
pub mod signed;
pub mod transport;
pub mod wire;

// The CA side, left out of the browser build (`--no-default-features --features wasm`).
#[cfg(feature = "server")]
pub mod certificate_authority;
#[cfg(feature = "server")]
pub mod challenge_page;
#[cfg(feature = "server")]
pub mod crl;
#[cfg(feature = "server")]
pub mod failure_limit;
#[cfg(feature = "server")]
pub mod mobileconfig;
#[cfg(feature = "server")]
pub mod names;
#[cfg(feature = "server")]
pub mod pki_operation;
#[cfg(feature = "server")]
pub mod policy;
#[cfg(feature = "server")]
pub mod profile;
#[cfg(feature = "server")]
pub mod registration_authority;
#[cfg(feature = "server")]
pub mod retention;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod webhook;

pub use error::{ErrorKind, FailInfo, Result, ScepError};

#[cfg(feature = "wasm")]
pub mod wasm;
