//! One file per subcommand: each runs a validated plan.

pub mod bench;
pub mod demo;
pub mod register;
pub mod resolve;
pub mod serve;
