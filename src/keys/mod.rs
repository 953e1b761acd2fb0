//! API keys as strings: their format (generate, parse, checksum), the keyed hash that is
//! stored instead of the secret, and (in `verifier`) the verification path, and (in `standing`) whether a key's owner still lets it work;
//! `tokens` caches management tokens (built like keys) for the management API.

pub mod format;
pub mod hash;
pub mod standing;
pub mod tokens;
pub mod verifier;

pub use format::{Environment, GeneratedKey, GeneratedToken, ParsedKey, ParsedToken};
pub use hash::KeyHasher;
