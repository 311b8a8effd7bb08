//! redisprep: a byte-compatible drop-in for wepppy's `RedisPrep`, with a
//! cache-invalidation rules engine. The core (everything but `py`) has no
//! PyO3 in it and is tested with plain `cargo test`.

pub mod cluster;
pub mod conn;
pub mod divergence;
pub mod dump;
mod env;
pub mod errors;
pub mod event;
mod exec;
pub mod paths;
mod pid;
pub mod preflight;
pub mod prep;
pub mod pyjson;
pub mod replication;
pub mod rules;
pub mod stats;
mod value;

#[cfg(feature = "python")]
mod py;
