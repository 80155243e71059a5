//! Reading certificates and keys from PEM files, with errors that name the
//! flag and file and never quote what a key file holds.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{TlsError, provider};

/// Reads a file; the error says which flag named it.
fn read(path: &Path, flag: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Unreadable {
        flag,
        path: path.to_path_buf(),
        reason: e.kind().to_string(),
    })
}

fn malformed(path: &Path, flag: &'static str, problem: impl Into<String>) -> TlsError {
    TlsError::Malformed {
        flag,
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// What kinds of PEM sections `bytes` holds, in order (for messages).
fn section_kinds(bytes: &[u8]) -> Vec<SectionKind> {
    let mut kinds = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        match item {
            Ok((kind, _)) => kinds.push(kind),
            Err(_) => break,
        }
    }
    kinds
}

/// Every certificate in a PEM file (a chain or a CA bundle); at least one.
pub fn certificates(
    path: &Path,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, flag)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        match item {
            Ok(cert) => certs.push(cert),
            Err(e) => {
                return Err(malformed(
                    path,
                    flag,
                    format!("not valid PEM ({})", pem_problem(&e)),
                ));
            }
        }
    }
    if certs.is_empty() {
        let problem = if section_kinds(&bytes).iter().any(|k| {
            matches!(
                k,
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
            )
        }) {
            "holds a private key, not a certificate (are the certificate and key files swapped?)"
        } else {
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        };
        return Err(malformed(path, flag, problem));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path, flag: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, flag)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let problem = if section_kinds(&bytes).contains(&SectionKind::Certificate) {
                "holds a certificate, not a private key (are the certificate and key files swapped?)"
            } else {
                "holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)"
            };
            Err(malformed(path, flag, problem))
        }
        // The error's own text could quote a line of the key: name its kind only.
        Err(e) => Err(malformed(
            path,
            flag,
            format!("is not a valid PEM private key ({})", pem_problem(&e)),
        )),
    }
}

/// A certificate chain with its key, checked to belong together.
pub fn certified_key(
    cert_path: &Path,
    cert_flag: &'static str,
    key_path: &Path,
    key_flag: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = certificates(cert_path, cert_flag)?;
    let key = private_key(key_path, key_flag)?;
    match CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider()) {
        Ok(_) => Ok((certs, key)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Usage(format!(
            "the key in {key_flag} {} does not match the certificate in {cert_flag} {}; \
             pass the key the certificate was issued for",
            key_path.display(),
            cert_path.display()
        ))),
        Err(rustls::Error::InvalidCertificate(e)) => Err(malformed(
            cert_path,
            cert_flag,
            format!("the first certificate cannot be parsed ({e})"),
        )),
        Err(_) => Err(malformed(
            key_path,
            key_flag,
            "is a key of a kind rustls cannot use (RSA, ECDSA P-256/P-384 and Ed25519 work)",
        )),
    }
}

/// A PEM error in words that quote nothing from the file.
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 is broken",
        pem::Error::Io(_) => "reading failed",
        pem::Error::NoItemsFound => "no PEM section",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    #[test]
    fn bad_files_are_named_and_never_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7SECRET";
        let broken_key = write(
            &dir,
            "broken.key",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret_body}\n"),
        );
        let text = private_key(&broken_key, "--key")
            .expect_err("broken")
            .to_string();
        assert!(
            text.contains("--key") && text.contains("broken.key"),
            "{text}"
        );
        assert!(!text.contains("SECRET"), "{text}");
        let garbage = write(&dir, "garbage.pem", "hello");
        let text = certificates(&garbage, "--cacert")
            .expect_err("garbage")
            .to_string();
        assert!(text.contains("no PEM certificate"), "{text}");
        let missing = dir.path().join("missing.pem");
        let text = certificates(&missing, "--cert")
            .expect_err("missing")
            .to_string();
        assert!(
            text.contains("cannot read --cert file") && text.contains("missing.pem"),
            "{text}"
        );
    }
}
