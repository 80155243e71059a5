//! Messages for the failures a user meets, each saying what to do.
//!
//! A 403 carries the exact Role and RoleBinding to apply (for the identity
//! named in the server's own message); a missing Service lists the Services
//! that do exist; an unreachable server names the URL and the settings to check.

use kube::core::Status;

/// The message for a 403 on EndpointSlices: the server's words, then the
/// Role and RoleBinding that grant get/list/watch on them in `namespace`.
pub fn forbidden(namespace: &str, service: &str, status: &Status) -> String {
    let subject = Subject::from_message(&status.message, namespace);
    let yaml = rbac_yaml(namespace, &subject);
    format!(
        "permission denied reading the EndpointSlices of Service {namespace}/{service} (403 Forbidden: {message})\n\
         grpclb needs get, list and watch on endpointslices (API group discovery.k8s.io) in namespace {namespace:?}. \
         Apply this Role and RoleBinding{guess}, then run again:\n\n{yaml}",
        message = status.message.trim(),
        guess = if subject.guessed {
            " (the subject is a guess: replace it with the identity grpclb runs as)"
        } else {
            ""
        },
    )
}

/// Who the server said it refused, as an RBAC subject.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: &'static str,
    name: String,
    /// The ServiceAccount's namespace (ServiceAccounts only).
    namespace: Option<String>,
    /// True when the message named nobody and this is the documented default.
    guessed: bool,
}

impl Subject {
    /// Reads `User "system:serviceaccount:ns:name" cannot ...` (or a plain
    /// user) out of the API server's message.
    fn from_message(message: &str, namespace: &str) -> Subject {
        let user = message
            .split_once("User \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(user, _)| user);
        match user {
            Some(user) => match user
                .strip_prefix("system:serviceaccount:")
                .and_then(|sa| sa.split_once(':'))
            {
                Some((ns, name)) => Subject {
                    kind: "ServiceAccount",
                    name: name.to_string(),
                    namespace: Some(ns.to_string()),
                    guessed: false,
                },
                None => Subject {
                    kind: "User",
                    name: user.to_string(),
                    namespace: None,
                    guessed: false,
                },
            },
            None => Subject {
                kind: "ServiceAccount",
                name: "grpclb".to_string(),
                namespace: Some(namespace.to_string()),
                guessed: true,
            },
        }
    }
}

/// The Role and RoleBinding, ready for `kubectl apply -f -`.
fn rbac_yaml(namespace: &str, subject: &Subject) -> String {
    let subject_yaml = match &subject.namespace {
        Some(ns) => format!(
            "- kind: {}\n  name: {}\n  namespace: {ns}",
            subject.kind,
            yaml_string(&subject.name)
        ),
        None => format!(
            "- kind: {}\n  name: {}\n  apiGroup: rbac.authorization.k8s.io",
            subject.kind,
            yaml_string(&subject.name)
        ),
    };
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: Role\n\
         metadata:\n  name: grpclb-endpointslices\n  namespace: {namespace}\n\
         rules:\n\
         - apiGroups: [\"discovery.k8s.io\"]\n  resources: [\"endpointslices\"]\n  verbs: [\"get\", \"list\", \"watch\"]\n\
         ---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: RoleBinding\n\
         metadata:\n  name: grpclb-endpointslices\n  namespace: {namespace}\n\
         subjects:\n{subject_yaml}\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: grpclb-endpointslices\n"
    )
}

/// Quotes a YAML scalar when it holds characters YAML would misread.
fn yaml_string(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// The message for a Service that does not exist; `existing` is `None` when
/// grpclb may not list Services there.
pub fn service_not_found(namespace: &str, service: &str, existing: Option<&[String]>) -> String {
    let listing = match existing {
        Some([]) => {
            format!("namespace {namespace:?} has no Services at all (is the namespace right?)")
        }
        Some(names) => format!("Services in namespace {namespace:?}: {}", names.join(", ")),
        None => format!(
            "grpclb may not list Services in {namespace:?}; run `kubectl get services -n {namespace}`"
        ),
    };
    format!(
        "Service {service:?} not found in namespace {namespace:?}. {listing}. Check the target's spelling: svc.namespace[:port]"
    )
}

/// The message when there are no slices and grpclb may not read the Service
/// to tell why.
pub fn no_slices_unknown_service(namespace: &str, service: &str) -> String {
    format!(
        "no EndpointSlices labelled kubernetes.io/service-name={service} in namespace {namespace:?}: \
         the Service does not exist there, or it has no selector. grpclb may not read Services to tell which; \
         run `kubectl get service {service} -n {namespace}`"
    )
}

/// The message for any other failure reaching the API server.
pub fn unreachable(server: &str, what: &str, err: &dyn std::error::Error) -> String {
    let err = with_causes(err);
    format!(
        "could not {what} from the Kubernetes API server at {server}: {err}. \
         Check --kubeconfig / --context (or KUBECONFIG), that the cluster is reachable from here, \
         and HTTPS_PROXY / NO_PROXY"
    )
}

/// An error and its causes, `outer: inner: root`, each said once.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The message for a 401: the credentials in the kubeconfig are not accepted.
pub fn unauthorized(server: &str, status: &Status) -> String {
    format!(
        "the Kubernetes API server at {server} rejected grpclb's credentials (401 Unauthorized: {}). \
         Refresh the kubeconfig's credentials (for example, run any kubectl command to log in again) or pick another --context",
        status.message.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(message: &str) -> Status {
        Status::failure(message, "Forbidden").with_code(403)
    }

    #[test]
    fn forbidden_names_the_service_account_from_the_message() {
        let message = forbidden(
            "shop",
            "echo",
            &status(
                "endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:ci:runner\" cannot list resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"shop\"",
            ),
        );
        assert!(message.contains("kind: Role\n"), "{message}");
        assert!(message.contains("namespace: shop"), "{message}");
        assert!(
            message.contains("verbs: [\"get\", \"list\", \"watch\"]"),
            "{message}"
        );
        assert!(
            message.contains("- kind: ServiceAccount\n  name: runner\n  namespace: ci"),
            "{message}"
        );
        assert!(!message.contains("is a guess"), "{message}");
    }

    #[test]
    fn forbidden_for_a_user_binds_the_user() {
        let message = forbidden(
            "default",
            "echo",
            &status("User \"jane@example.com\" cannot list"),
        );
        assert!(message.contains(
            "- kind: User\n  name: \"jane@example.com\"\n  apiGroup: rbac.authorization.k8s.io"
        ));
    }

    #[test]
    fn forbidden_without_a_name_says_the_subject_is_a_guess() {
        let message = forbidden("default", "echo", &status("forbidden"));
        assert!(message.contains("is a guess"));
        assert!(message.contains("name: grpclb\n  namespace: default"));
    }

    #[test]
    fn not_found_lists_existing_services() {
        let names = vec!["echo".to_string(), "echo-headless".to_string()];
        let message = service_not_found("default", "ecoh", Some(&names));
        assert!(message.contains("\"ecoh\" not found in namespace \"default\""));
        assert!(message.contains("echo, echo-headless"));
        assert!(
            service_not_found("default", "x", None).contains("kubectl get services -n default")
        );
    }
}
