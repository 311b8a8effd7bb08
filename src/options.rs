//! The `configure()` options, declared once: the [`Options`] struct, and
//! [`OPTIONS`] (each name with its Python type) for the binding, the stub
//! check and the docs.

use crate::errors::{CoreError, CoreResult};

macro_rules! options {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty => $kind:ident ),* $(,)?) => {
        /// What a caller may override (`redisprep.configure(...)`); `None`
        /// means "from the environment, else the default".
        #[derive(Clone, Debug, Default)]
        pub struct Options { $( $(#[$doc])* pub $name: Option<$ty>, )* }

        /// Every option as `(name, kind)`, in declaration order.
        pub const OPTIONS: &[(&str, Kind)] = &[ $( (stringify!($name), Kind::$kind), )* ];

        impl Options {
            /// Set one option by name (`None` leaves it to the environment).
            pub fn set(&mut self, name: &str, value: Option<OptionValue>) -> CoreResult<()> {
                match name {
                    $( stringify!($name) => {
                        self.$name = value.map(|v| v.convert(name)).transpose()?;
                        Ok(())
                    } )*
                    _ => Err(CoreError::Config(format!("unknown option {name:?}"))),
                }
            }
        }
    };
}

/// The Python type of an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
}

impl Kind {
    /// The Python annotation (`str`, `int`, `float`, `bool`).
    pub fn python(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
        }
    }
}

/// A value given for an option.
#[derive(Clone, Debug)]
pub enum OptionValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Conversion of an [`OptionValue`] to an option's Rust type.
pub trait FromOption: Sized {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self>;
}

impl OptionValue {
    fn convert<T: FromOption>(self, name: &str) -> CoreResult<T> {
        T::from_option(self, name)
    }
}

fn wrong(name: &str, want: &str) -> CoreError {
    CoreError::Config(format!("{name} must be {want}"))
}

impl FromOption for String {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self> {
        match v {
            OptionValue::Str(s) => Ok(s),
            _ => Err(wrong(name, "a str")),
        }
    }
}

impl FromOption for i64 {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self> {
        match v {
            OptionValue::Int(i) => Ok(i),
            _ => Err(wrong(name, "an int")),
        }
    }
}

impl FromOption for u32 {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self> {
        match v {
            OptionValue::Int(i) => u32::try_from(i).map_err(|_| wrong(name, "0 or more")),
            _ => Err(wrong(name, "an int")),
        }
    }
}

impl FromOption for f64 {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self> {
        match v {
            OptionValue::Float(f) => Ok(f),
            // an int is a number of seconds too (lossless for any sane value)
            #[allow(clippy::cast_precision_loss)]
            OptionValue::Int(i) => Ok(i as f64),
            _ => Err(wrong(name, "a number")),
        }
    }
}

impl FromOption for bool {
    fn from_option(v: OptionValue, name: &str) -> CoreResult<Self> {
        match v {
            OptionValue::Bool(b) => Ok(b),
            _ => Err(wrong(name, "a bool")),
        }
    }
}

options! {
    /// `redis://`, `rediss://`, `unix://` or `redis+cluster://h:p,h:p`.
    url: String => Str,
    /// The prep hashes' DB (standalone only): `REDISPREP_PREP_DB`, default 0.
    prep_db: i64 => Int,
    /// TCP connect + handshake limit: `REDISPREP_CONNECT_TIMEOUT`, default 5 s.
    connect_timeout: f64 => Float,
    /// Reply limit per request: `REDISPREP_TIMEOUT`, default 10 s.
    timeout: f64 => Float,
    /// Retries after a broken pooled connection: `REDISPREP_RETRIES`, default 2.
    retries: u32 => Int,
    /// fsync each dump: `REDISPREP_FSYNC`, default off.
    fsync: bool => Bool,
    /// Publish invalidation events: `REDISPREP_EVENTS`, default off.
    events: bool => Bool,
    /// `REDISPREP_EVENTS_CHANNEL`, default `redisprep:invalidations`.
    events_channel: String => Str,
    /// CA bundle for `rediss://` (standalone only): `REDISPREP_TLS_CA`.
    tls_ca_file: String => Str,
    /// Replicas that must acknowledge each write: `REDISPREP_MIN_REPLICAS`, default 0.
    min_replicas: i64 => Int,
    /// How long a write waits for them: `REDISPREP_REPLICA_TIMEOUT`, default 1 s.
    replica_timeout: f64 => Float,
    /// A secrets file holding the password (instead of `REDIS_PASSWORD_FILE`).
    password_file: String => Str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_set_by_name_with_their_kind() {
        let mut o = Options::default();
        o.set("timeout", Some(OptionValue::Int(3))).unwrap();
        assert_eq!(o.timeout, Some(3.0));
        o.set("retries", Some(OptionValue::Int(1))).unwrap();
        assert_eq!(o.retries, Some(1));
        assert!(o.set("retries", Some(OptionValue::Int(-1))).is_err());
        assert!(o
            .set("fsync", Some(OptionValue::Str("yes".into())))
            .is_err());
        assert!(o.set("nope", None).is_err());
        assert_eq!(OPTIONS.len(), 12);
        assert_eq!(OPTIONS[0], ("url", Kind::Str));
    }
}
