//! etcd access shared by the etcd resolver and registration: connecting
//! (endpoints, credentials, TLS, timeouts, backoff) and the value formats
//! a registered key holds.

pub mod connect;
pub mod value;

pub use connect::{EtcdError, EtcdOptions};
pub use value::{Metadata, ValueFormat};
