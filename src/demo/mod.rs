//! `grpclb demo`: everything on one machine. Local backends on distinct
//! loopback addresses stand in for pods, an in-process TCP proxy stands in
//! for the ClusterIP (one random backend per accepted connection, as
//! kube-proxy does), and both modes run against them ([`run`]).

mod pods;
mod proxy;
mod run;

pub use pods::{DemoPods, start_pods};
pub use proxy::ConnectionBalancer;
pub use run::{explanation, run};
