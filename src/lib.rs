//! `grpclb`: diagnose and benchmark gRPC load balancing.
//!
//! The data flow, one module per stage:
//! [`target`] → [`resolve`] → [`pool`] → [`pick`] → [`load`] → [`record`] →
//! [`report`] → [`verdict`]. [`serve`] is the backend to deploy and [`demo`]
//! runs everything on one machine.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod load;
pub mod method;
pub mod pick;
pub mod pool;
pub mod progress;
pub mod proto;
pub mod record;
pub mod register;
pub mod report;
pub mod resolve;
pub mod serve;
pub mod target;
pub mod verdict;
