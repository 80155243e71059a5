//! Method names as users write them, and finding one among descriptors.

use std::str::FromStr;

use prost_reflect::{DescriptorPool, MethodDescriptor};

use super::MethodError;

/// What `--call` names: a built-in call, or any method by its full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallName {
    /// `grpc.health.v1.Health/Check`, described by the binary itself.
    Health,
    /// `grpclb.v1.Echo/Echo` (the service of `grpclb serve`), described by the binary itself.
    Echo,
    /// Any method, described by reflection or the files given.
    Method(MethodName),
}

/// A fully-qualified method: `pkg.Service` and `Method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodName {
    pub service: String,
    pub method: String,
}

impl MethodName {
    /// The HTTP/2 path a call to it goes to: `/pkg.Service/Method`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }
}

impl std::fmt::Display for MethodName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.method)
    }
}

impl FromStr for MethodName {
    type Err = MethodError;

    /// Accepts `pkg.Service/Method`, `/pkg.Service/Method` and grpcurl's `pkg.Service.Method`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MethodError::BadName(s.to_string());
        let trimmed = s.trim().trim_start_matches('/');
        let (service, method) = match trimmed.split_once('/') {
            Some(parts) => parts,
            None => trimmed.rsplit_once('.').ok_or_else(bad)?,
        };
        let identifier = |part: &str| {
            !part.is_empty()
                && part.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        };
        if !identifier(service) || !identifier(method) || method.contains('.') {
            return Err(bad());
        }
        Ok(MethodName {
            service: service.to_string(),
            method: method.to_string(),
        })
    }
}

impl FromStr for CallName {
    type Err = MethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "health" => Ok(CallName::Health),
            "echo" => Ok(CallName::Echo),
            other => other.parse().map(CallName::Method),
        }
    }
}

impl CallName {
    /// The method this name stands for.
    pub fn method_name(&self) -> MethodName {
        let named = |service: &str, method: &str| MethodName {
            service: service.into(),
            method: method.into(),
        };
        match self {
            CallName::Health => named("grpc.health.v1.Health", "Check"),
            CallName::Echo => named("grpclb.v1.Echo", "Echo"),
            CallName::Method(name) => name.clone(),
        }
    }
}

/// How calls to a method flow, in the words `describe` prints.
pub fn streaming_kind(method: &MethodDescriptor) -> &'static str {
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => "unary",
        (true, false) => "client-streaming",
        (false, true) => "server-streaming",
        (true, true) => "bidirectional-streaming",
    }
}

/// Finds a unary method in `pool`; `origin` names where the descriptors came from.
pub fn find_unary(
    pool: &DescriptorPool,
    name: &MethodName,
    origin: &str,
) -> Result<MethodDescriptor, MethodError> {
    let method = find_method(pool, name, origin)?;
    match streaming_kind(&method) {
        "unary" => Ok(method),
        kind => Err(MethodError::Streaming {
            method: name.to_string(),
            service: name.service.clone(),
            kind,
        }),
    }
}

/// Finds a method of any kind in `pool`.
pub fn find_method(
    pool: &DescriptorPool,
    name: &MethodName,
    origin: &str,
) -> Result<MethodDescriptor, MethodError> {
    let service =
        pool.get_service_by_name(&name.service)
            .ok_or_else(|| MethodError::UnknownService {
                service: name.service.clone(),
                known: pool.services().map(|s| s.full_name().to_string()).collect(),
                origin: origin.to_string(),
            })?;
    let found = service.methods().find(|m| m.name() == name.method);
    found.ok_or_else(|| MethodError::UnknownMethod {
        service: name.service.clone(),
        method: name.method.clone(),
        known: service.methods().map(|m| m.name().to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::builtin_descriptors;

    fn name(s: &str) -> MethodName {
        s.parse().expect("a method name")
    }

    #[test]
    fn every_written_form_of_a_method_name_parses() {
        for written in [
            "grpclb.v1.Echo/Echo",
            "/grpclb.v1.Echo/Echo",
            "grpclb.v1.Echo.Echo",
        ] {
            assert_eq!(name(written).path(), "/grpclb.v1.Echo/Echo", "{written}");
        }
        for bad in [
            "",
            "Echo",
            "grpclb.v1.Echo/",
            "a b/C",
            "pkg.S/M/N",
            "pkg..S/M",
        ] {
            assert!(bad.parse::<MethodName>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn built_in_names_keep_their_meaning() {
        assert_eq!("health".parse::<CallName>().ok(), Some(CallName::Health));
        assert_eq!("echo".parse::<CallName>().ok(), Some(CallName::Echo));
        assert_eq!(
            CallName::Health.method_name().to_string(),
            "grpc.health.v1.Health/Check"
        );
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let pool = builtin_descriptors();
        let err =
            find_unary(&pool, &name("nope.v1.Svc/M"), "the built-in descriptors").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("grpclb.v1.Echo") && text.contains("grpc.health.v1.Health"),
            "{text}"
        );
        let err = find_unary(&pool, &name("grpclb.v1.Echo/Nope"), "x").unwrap_err();
        assert!(err.to_string().contains("Echo, WhoAmI"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn streaming_methods_are_refused_by_kind() {
        let pool = builtin_descriptors();
        let err = find_unary(&pool, &name("grpc.health.v1.Health/Watch"), "x").unwrap_err();
        assert!(err.to_string().contains("server-streaming"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
