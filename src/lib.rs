//! `grpclb`: diagnose and benchmark gRPC load balancing.
//!
//! The data flow, one module per stage, each importing only the stages
//! before it:
//! [`target`] → [`resolve`] → [`pool`] → [`pick`] → [`load`] → [`record`] →
//! [`verdict`] → [`report`].
//!
//! Each subcommand's flow is one module that runs a validated [`plan`]:
//! [`bench`] (resolve, pool, identify, run each mode, judge), [`watch`]
//! (`grpclb resolve`), [`serve`], [`register`], [`demo`] and [`merge`]
//! (reports of many clients added and judged as one). A [`Failure`]
//! says why a flow could not run, with the exit code that says so.

pub mod bench;
pub mod demo;
pub mod etcd;
mod failure;
pub mod load;
pub mod merge;
pub mod metadata;
pub mod method;
pub mod pick;
pub mod plan;
pub mod pool;
pub mod proto;
pub mod record;
pub mod register;
pub mod report;
pub mod resolve;
pub mod serve;
pub mod signal;
pub mod status;
pub mod target;
pub mod tls;
pub mod verdict;
pub mod watch;

pub use failure::Failure;
