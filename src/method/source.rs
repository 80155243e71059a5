//! Where method descriptors come from: the server's reflection service, or
//! local files the user gives (`.proto` sources compiled in-process, or a
//! compiled FileDescriptorSet), or the built-in calls' own descriptors.

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;

use super::MethodError;

/// Where to read the descriptors of the services a target offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DescriptorSource {
    /// Ask the server (reflection v1, else v1alpha) on the first endpoint that answers.
    #[default]
    Reflection,
    /// Compile these `.proto` files; imports are looked up under `import_paths`
    /// (or, when none is given, the folder of each file).
    ProtoFiles {
        files: Vec<PathBuf>,
        import_paths: Vec<PathBuf>,
    },
    /// Read these encoded FileDescriptorSets (`protoc --descriptor_set_out`, `buf build -o`).
    Protosets(Vec<PathBuf>),
}

impl DescriptorSource {
    /// True when the descriptors come from the server, so a target must be dialled.
    pub fn needs_server(&self) -> bool {
        matches!(self, DescriptorSource::Reflection)
    }

    /// Loads the descriptors of a file source; `None` for reflection, which
    /// needs a server (see [`super::reflection`]).
    pub fn load_files(&self) -> Option<Result<DescriptorPool, MethodError>> {
        match self {
            DescriptorSource::Reflection => None,
            DescriptorSource::ProtoFiles {
                files,
                import_paths,
            } => Some(compile(files, import_paths)),
            DescriptorSource::Protosets(paths) => Some(read_protosets(paths)),
        }
    }

    /// How to name this source in messages ("the --proto files a.proto").
    pub fn describe(&self) -> String {
        let list = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            DescriptorSource::Reflection => "the server's reflection service".into(),
            DescriptorSource::ProtoFiles { files, .. } => format!("--proto {}", list(files)),
            DescriptorSource::Protosets(paths) => format!("--protoset {}", list(paths)),
        }
    }
}

/// Compiles `.proto` files with protox: no protoc is needed at run time.
fn compile(files: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, MethodError> {
    for file in files {
        if let Err(source) = std::fs::metadata(file) {
            return Err(MethodError::ReadFile {
                flag: "--proto",
                path: file.clone(),
                source,
            });
        }
    }
    let includes: Vec<PathBuf> = if import_paths.is_empty() {
        let mut folders: Vec<PathBuf> = files.iter().map(|f| folder_of(f)).collect();
        folders.dedup();
        folders
    } else {
        import_paths.to_vec()
    };
    let set = protox::compile(files, &includes).map_err(|e| MethodError::Compile(e.to_string()))?;
    DescriptorPool::from_file_descriptor_set(set).map_err(|e| MethodError::Compile(e.to_string()))
}

/// The folder a file lies in (`.` for a bare file name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads and links encoded FileDescriptorSets into one pool.
fn read_protosets(paths: &[PathBuf]) -> Result<DescriptorPool, MethodError> {
    let mut pool = DescriptorPool::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| MethodError::ReadFile {
            flag: "--protoset",
            path: path.clone(),
            source,
        })?;
        pool.decode_file_descriptor_set(bytes.as_slice())
            .map_err(|e| MethodError::Protoset {
                path: path.clone(),
                detail: e.to_string(),
            })?;
    }
    Ok(pool)
}

/// The descriptors of the built-in calls (`health`, `echo`), compiled into
/// the binary, so they need neither reflection nor files.
pub fn builtin_descriptors() -> DescriptorPool {
    let mut pool = DescriptorPool::new();
    for set in [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        crate::proto::FILE_DESCRIPTOR_SET,
    ] {
        // Generated at build time by protoc: these always decode and link.
        if let Err(e) = pool.decode_file_descriptor_set(set) {
            unreachable!("built-in descriptor set does not decode: {e}");
        }
    }
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto")
    }

    #[test]
    fn proto_files_compile_without_protoc() {
        let source = DescriptorSource::ProtoFiles {
            files: vec![proto_dir().join("grpclb.proto")],
            import_paths: vec![],
        };
        let pool = source
            .load_files()
            .expect("a file source")
            .expect("compiles");
        assert!(pool.get_service_by_name("grpclb.v1.Echo").is_some());
    }

    #[test]
    fn a_missing_proto_file_is_named() {
        let source = DescriptorSource::ProtoFiles {
            files: vec![proto_dir().join("nope.proto")],
            import_paths: vec![],
        };
        let err = source.load_files().expect("a file source").unwrap_err();
        assert!(err.to_string().contains("nope.proto"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_file_that_is_no_descriptor_set_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("not.pb");
        std::fs::write(&path, b"\xff\xff not protobuf").expect("write");
        let err = DescriptorSource::Protosets(vec![path])
            .load_files()
            .expect("a file source")
            .unwrap_err();
        assert!(matches!(err, MethodError::Protoset { .. }), "{err}");
        assert!(err.to_string().contains("--descriptor_set_out"), "{err}");
    }

    #[test]
    fn builtin_calls_are_described() {
        let pool = builtin_descriptors();
        assert!(pool.get_service_by_name("grpc.health.v1.Health").is_some());
        assert!(pool.get_service_by_name("grpclb.v1.Echo").is_some());
    }
}
