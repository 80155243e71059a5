//! The JSON requests a run sends: one document (`--data '{…}'` or
//! `--data @file.json`) or many (`--data-lines file.jsonl`), read and
//! encoded once before the run.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost_reflect::MessageDescriptor;

use super::MethodError;
use super::json::encode_json;

/// Where the request JSON comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RequestData {
    /// No `--data`: every call sends the empty message `{}`.
    #[default]
    Empty,
    /// `--data '{…}'`: the JSON itself.
    Inline(String),
    /// `--data @FILE`: one JSON document in a file.
    File(PathBuf),
    /// `--data-lines FILE`: one JSON document per line, sent in turn.
    Lines(PathBuf),
}

impl RequestData {
    /// Reads `--data` (`@FILE` names a file, anything else is JSON) and `--data-lines`.
    pub fn from_flags(data: Option<&str>, lines: Option<&Path>) -> RequestData {
        match (data, lines) {
            (_, Some(path)) => RequestData::Lines(path.to_path_buf()),
            (Some(text), None) => match text.strip_prefix('@') {
                Some(path) => RequestData::File(PathBuf::from(path)),
                None => RequestData::Inline(text.to_string()),
            },
            (None, None) => RequestData::Empty,
        }
    }

    /// True when the user gave any JSON.
    pub fn is_given(&self) -> bool {
        *self != RequestData::Empty
    }

    /// Every request, encoded as `message`, in the order they are sent.
    pub fn encode(&self, message: &MessageDescriptor) -> Result<Vec<Bytes>, MethodError> {
        match self {
            RequestData::Empty => Ok(vec![encode_json("{}", "the empty request", message)?]),
            RequestData::Inline(json) => Ok(vec![encode_json(json, "--data", message)?]),
            RequestData::File(path) => {
                let json = read(path, "--data @")?;
                let origin = format!("--data @{}", path.display());
                Ok(vec![encode_json(&json, &origin, message)?])
            }
            RequestData::Lines(path) => {
                let text = read(path, "--data-lines")?;
                let requests = text
                    .lines()
                    .enumerate()
                    .filter(|(_, line)| !line.trim().is_empty())
                    .map(|(i, line)| {
                        let origin = format!("--data-lines {} line {}", path.display(), i + 1);
                        encode_json(line, &origin, message)
                    })
                    .collect::<Result<Vec<Bytes>, MethodError>>()?;
                if requests.is_empty() {
                    return Err(MethodError::NoLines(path.clone()));
                }
                Ok(requests)
            }
        }
    }
}

fn read(path: &Path, flag: &'static str) -> Result<String, MethodError> {
    std::fs::read_to_string(path).map_err(|source| MethodError::ReadFile {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::builtin_descriptors;

    fn echo_request() -> MessageDescriptor {
        builtin_descriptors()
            .get_message_by_name("grpclb.v1.EchoRequest")
            .expect("EchoRequest")
    }

    #[test]
    fn data_flags_choose_the_source() {
        assert_eq!(RequestData::from_flags(None, None), RequestData::Empty);
        assert_eq!(
            RequestData::from_flags(Some("@r.json"), None),
            RequestData::File("r.json".into())
        );
        assert_eq!(
            RequestData::from_flags(Some("{}"), None),
            RequestData::Inline("{}".into())
        );
    }

    #[test]
    fn lines_are_encoded_in_order_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"payload\":\"YQ==\"}\n\n{\"payload\":\"Yg==\"}\n").expect("write");
        let requests = RequestData::Lines(path.clone())
            .encode(&echo_request())
            .expect("encodes");
        assert_eq!(
            requests,
            [
                Bytes::from_static(b"\x0a\x01a"),
                Bytes::from_static(b"\x0a\x01b")
            ]
        );
        std::fs::write(&path, "{}\n{\"payload\": 3}\n").expect("write");
        let err = RequestData::Lines(path)
            .encode(&echo_request())
            .unwrap_err();
        assert!(
            err.to_string().contains("r.jsonl line 2: field payload"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_lines_file_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty.jsonl");
        std::fs::write(&path, "\n\n").expect("write");
        let err = RequestData::Lines(path)
            .encode(&echo_request())
            .unwrap_err();
        assert!(matches!(err, MethodError::NoLines(_)), "{err}");
    }
}
