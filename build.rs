//! Compiles `proto/grpclb.proto` with the protoc shipped by
//! `protoc-bin-vendored`, so a fresh machine needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("grpclb_descriptor.bin"))
        .compile_protos(&["proto/grpclb.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/grpclb.proto");
    Ok(())
}
