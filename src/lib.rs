//! redisprep: a byte-compatible drop-in for wepppy's `RedisPrep`, with a
//! cache-invalidation rules engine. The core (everything but `py`) has no
//! PyO3 in it and is tested with plain `cargo test`.

pub mod backend;
pub mod divergence;
pub mod dump;
mod env;
pub mod errors;
pub mod event;
pub mod fields;
mod invalidate;
pub mod layout;
pub mod mutation;
mod options;
pub mod password;
pub mod paths;
mod pid;
pub mod preflight;
pub mod prep;
pub mod pyjson;
pub mod replication;
pub mod rules;
pub mod settings;
pub mod stats;
mod value;
mod write;

#[cfg(feature = "python")]
mod py;
