//! `grpclb demo`: everything on one machine. Local backends on distinct
//! loopback addresses stand in for pods, an in-process TCP proxy stands in
//! for the ClusterIP (one random backend per accepted connection, as
//! kube-proxy does), and both modes run against them ([`run`]). With a
//! scenario, pods come and go while each mode runs ([`scenario`]), and the
//! explanation says what that did ([`story`]).

mod cluster;
mod pods;
mod proxy;
mod run;
mod scenario;
mod story;

pub use pods::{DemoPods, start_pods};
pub use proxy::ConnectionBalancer;
pub use run::{DemoRun, run};
