//! Flags that do nothing in the mode chosen are refused, not ignored: a
//! user who passes `--connections 8` to a headless run expects eight
//! connections somewhere, and should learn that the flag does not apply.

use super::bench::{BenchArgs, ModeChoice};
use grpclb::Failure;

/// Refuses `bench` flags that the chosen `--mode` would ignore. (Sizes are
/// bounded with the load plan: `grpclb::load::MAX_PAYLOAD_BYTES`.)
pub fn check_bench(args: &BenchArgs) -> Result<(), Failure> {
    if args.mode == ModeChoice::Headless {
        if args.connections.is_some() {
            return Err(Failure::Usage(
                "--connections sets the connections to the Service address in --mode clusterip or both; \
                 a headless run holds one connection per pod. Add --mode both, or drop --connections"
                    .into(),
            ));
        }
        if args.clusterip_target.is_some() {
            return Err(Failure::Usage(
                "--clusterip-target is the Service address dialled by --mode clusterip or both; \
                 a headless run does not use it. Add --mode both, or drop --clusterip-target"
                    .into(),
            ));
        }
    }
    Ok(())
}
