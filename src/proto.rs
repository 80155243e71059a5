//! Generated code for `proto/grpclb.proto` (the `grpclb.v1` service).

tonic::include_proto!("grpclb.v1");

/// The encoded descriptor set, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("grpclb_descriptor");
