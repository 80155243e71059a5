//! Reading documents: every source (a file, or stdin) holds one or more
//! JSON documents, one per line or simply concatenated (what `kubectl logs`
//! of several pods, or `cat *.json`, gives).

use std::io::Read;

use serde_json::Value;

use super::MergeError;
use crate::plan::ReportSource;

/// No report comes near this; a larger input is a wrong file.
const MAX_INPUT: u64 = 1 << 30;

/// One JSON document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file (or `stdin`), with the document's number when the source
    /// holds several: `a.json`, `stdin (document 3)`.
    pub source: String,
    pub value: Value,
}

/// Reads every document of every source, in order.
pub fn read_all(sources: &[ReportSource]) -> Result<Vec<Document>, MergeError> {
    let mut documents = Vec::new();
    for source in sources {
        let (name, bytes) = read_source(source)?;
        documents.extend(documents_in(&name, &bytes)?);
    }
    Ok(documents)
}

fn read_source(source: &ReportSource) -> Result<(String, Vec<u8>), MergeError> {
    let mut bytes = Vec::new();
    let (name, result) = match source {
        ReportSource::Stdin => (
            "stdin".to_string(),
            std::io::stdin()
                .lock()
                .take(MAX_INPUT)
                .read_to_end(&mut bytes),
        ),
        ReportSource::File(path) => {
            let name = path.display().to_string();
            let result = std::fs::File::open(path)
                .and_then(|file| file.take(MAX_INPUT).read_to_end(&mut bytes));
            (name, result)
        }
    };
    match result {
        Ok(_) => Ok((name, bytes)),
        Err(e) => Err(MergeError::Unreadable {
            input: name,
            reason: e.to_string(),
        }),
    }
}

/// Splits a source into its documents.
pub fn documents_in(name: &str, bytes: &[u8]) -> Result<Vec<Document>, MergeError> {
    let mut values = Vec::new();
    for item in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        match item {
            Ok(value) => values.push(value),
            Err(e) => return Err(syntax_error(name, bytes, values.len(), &e)),
        }
    }
    if values.is_empty() {
        return Err(MergeError::Empty {
            input: name.to_string(),
        });
    }
    let several = values.len() > 1;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, value)| Document {
            source: if several {
                format!("{name} (document {})", i + 1)
            } else {
                name.to_string()
            },
            value,
        })
        .collect())
}

/// Tells text that is not JSON at all from JSON that is broken or cut off.
fn syntax_error(name: &str, bytes: &[u8], read: usize, e: &serde_json::Error) -> MergeError {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let at = format!("line {} column {}", e.line(), e.column());
    if read == 0 && !matches!(first, Some(b'{' | b'[')) {
        return MergeError::NotJson {
            input: name.to_string(),
            detail: format!("{e}"),
        };
    }
    let after = if read == 0 {
        String::new()
    } else {
        format!(
            " after {read} good document{}",
            if read == 1 { "" } else { "s" }
        )
    };
    let detail = if e.is_eof() {
        format!("the document ends early at {at}{after}: was the output cut off?")
    } else {
        format!("{e}{after}")
    };
    MergeError::Malformed {
        input: name.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_one_per_line_or_concatenated() {
        let one = documents_in("a.json", br#" {"x": 1} "#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].source, "a.json");
        let lines = documents_in("stdin", b"{\"x\": 1}\n{\"x\": 2}\n").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].source, "stdin (document 2)");
        let glued = documents_in("stdin", b"{\"x\": 1}{\"x\": 2}{\"x\": 3}").unwrap();
        assert_eq!(glued.len(), 3);
    }

    #[test]
    fn text_broken_json_and_nothing_are_told_apart() {
        let err = |bytes: &[u8]| documents_in("f", bytes).unwrap_err().to_string();
        assert!(err(b"hello").contains("f is not JSON"), "{}", err(b"hello"));
        assert!(err(b"{\"x\": ").contains("cut off"), "{}", err(b"{\"x\": "));
        assert!(err(b"{\"x\": 1} oops").contains("after 1 good document"));
        assert!(err(b"  \n").contains("holds no report"));
    }
}
