//! `grpclb`: diagnose and benchmark gRPC load balancing.
//!
//! The data flow, one module per stage:
//! [`target`] → [`resolve`] → [`pool`] → [`pick`] → [`load`] → [`record`] →
//! [`report`] → [`verdict`]. [`serve`] is the backend to deploy and [`demo`]
//! runs everything on one machine.

pub mod pick;
pub mod pool;
pub mod register;
pub mod resolve;
pub mod target;
