//! `grpclb list` and `grpclb describe`: the services a source describes,
//! and the shape of one service, method or message, as views to print.

use prost_reflect::DescriptorPool;
use serde::Serialize;

use super::name::{MethodName, find_method};
use super::reflection::ReflectionClient;
use super::shape::{MessageShape, MethodShape, ServiceShape, messages_reachable};
use super::{DescriptorSource, MethodError};
use crate::resolve::ResolveOptions;
use crate::target::Target;

/// Descriptors from one source, with the services it names.
pub struct Catalog {
    /// Where the descriptors came from, for messages and the printed views.
    pub origin: String,
    pool: DescriptorPool,
    /// Services in the order the source names them.
    services: Vec<String>,
    /// Services the server names but could not describe, with why.
    undescribed: Vec<String>,
}

/// What `list` or `describe` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Discovery {
    /// `list`: every service.
    Listing(Listing),
    /// `describe`: one service, method or message.
    Description(Description),
}

impl Discovery {
    /// Proto-like text for people.
    pub fn text(&self) -> String {
        match self {
            Discovery::Listing(listing) => listing.text(),
            Discovery::Description(description) => description.text(),
        }
    }
}

/// Every service and its methods.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub source: String,
    pub services: Vec<ServiceShape>,
    /// Services the server lists but whose descriptors it did not give.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undescribed: Vec<String>,
}

/// One service, method or message, with every message type it uses.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<MethodShape>,
    pub messages: Vec<MessageShape>,
}

impl Catalog {
    /// The catalog behind `grpclb list` and `describe`: resolves `target`
    /// when the descriptors come from the server, then loads them.
    pub async fn discover(
        target: Option<&Target>,
        resolve: &ResolveOptions,
        source: &DescriptorSource,
        only: Option<&str>,
    ) -> Result<Catalog, MethodError> {
        let mut addresses = Vec::new();
        if source.needs_server() {
            let target = target.ok_or(MethodError::NoTarget)?;
            let resolution = crate::resolve::start(target, resolve).await?;
            addresses.extend(resolution.initial.iter().map(|e| e.address.clone()));
        }
        Catalog::load(source, &addresses, only.map(reflection_symbol)).await
    }

    /// Reads the descriptors of `source`. For reflection, `only` limits what is
    /// fetched to one symbol (a service or message) and its imports; `addresses`
    /// are tried in order until one answers.
    pub async fn load(
        source: &DescriptorSource,
        addresses: &[String],
        only: Option<&str>,
    ) -> Result<Catalog, MethodError> {
        if let Some(files) = source.load_files() {
            let pool = files?;
            let services = pool.services().map(|s| s.full_name().to_string()).collect();
            return Ok(Catalog {
                origin: source.describe(),
                pool,
                services,
                undescribed: Vec::new(),
            });
        }
        let client = ReflectionClient::connect(addresses).await?;
        let mut wanted = match only {
            Some(symbol) => vec![symbol.to_string()],
            None => client.services().await?,
        };
        let listed = wanted.clone();
        let mut undescribed = Vec::new();
        // A server may list a service it cannot describe: leave it out, say so.
        let pool = loop {
            match client.descriptors(&wanted).await {
                Ok(pool) => break pool,
                Err(MethodError::UnknownService { service, .. })
                    if only.is_none() && wanted.contains(&service) =>
                {
                    wanted.retain(|s| *s != service);
                    undescribed.push(format!("{service}: the server did not give its descriptor"));
                }
                Err(other) => return Err(other),
            }
        };
        let services = match only {
            Some(_) => pool.services().map(|s| s.full_name().to_string()).collect(),
            None => listed.into_iter().filter(|s| wanted.contains(s)).collect(),
        };
        Ok(Catalog {
            origin: client.origin(),
            pool,
            services,
            undescribed,
        })
    }

    /// The descriptors, for finding a method to call.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The listing (no symbol) or the description of `symbol`.
    pub fn view(&self, symbol: Option<&str>) -> Result<Discovery, MethodError> {
        match symbol {
            None => Ok(Discovery::Listing(self.listing())),
            Some(symbol) => self.describe(symbol).map(Discovery::Description),
        }
    }

    /// Every service with its methods.
    pub fn listing(&self) -> Listing {
        Listing {
            source: self.origin.clone(),
            services: self
                .services
                .iter()
                .filter_map(|name| self.pool.get_service_by_name(name))
                .map(|s| ServiceShape::of(&s))
                .collect(),
            undescribed: self.undescribed.clone(),
        }
    }

    /// `pkg.Service`, `pkg.Service/Method` or `pkg.Message` with the messages it uses.
    pub fn describe(&self, symbol: &str) -> Result<Description, MethodError> {
        let source = self.origin.clone();
        if symbol.contains('/') {
            let name: MethodName = symbol.parse()?;
            let method = find_method(&self.pool, &name, &self.origin)?;
            return Ok(Description {
                source,
                service: None,
                method: Some(MethodShape::of(&method)),
                messages: messages_reachable(&[method.input(), method.output()]),
            });
        }
        if let Some(service) = self.pool.get_service_by_name(symbol) {
            let roots: Vec<_> = service
                .methods()
                .flat_map(|m| [m.input(), m.output()])
                .collect();
            return Ok(Description {
                source,
                service: Some(ServiceShape::of(&service)),
                method: None,
                messages: messages_reachable(&roots),
            });
        }
        if let Some(message) = self.pool.get_message_by_name(symbol) {
            return Ok(Description {
                source,
                service: None,
                method: None,
                messages: messages_reachable(&[message]),
            });
        }
        Err(MethodError::UnknownService {
            service: symbol.to_string(),
            known: self
                .pool
                .services()
                .map(|s| s.full_name().to_string())
                .collect(),
            origin: self.origin.clone(),
        })
    }
}

/// The symbol reflection is asked for to describe `symbol`: a method's service.
pub fn reflection_symbol(symbol: &str) -> &str {
    symbol
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or(symbol)
}

impl Listing {
    /// Services and their methods in proto syntax.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for service in &self.services {
            out.push_str(&format!("{}\n", service.name));
            for method in &service.methods {
                out.push_str(&format!("  {}\n", method.text()));
            }
        }
        for missing in &self.undescribed {
            out.push_str(&format!("(not described) {missing}\n"));
        }
        out.push_str(&format!("(from {})", self.source));
        out
    }
}

impl Description {
    /// The service or method, then each message, in proto syntax.
    pub fn text(&self) -> String {
        let mut blocks = Vec::new();
        if let Some(service) = &self.service {
            let methods: Vec<String> = service
                .methods
                .iter()
                .map(|m| format!("  {}", m.text()))
                .collect();
            blocks.push(format!(
                "service {} {{\n{}\n}}",
                service.name,
                methods.join("\n")
            ));
        }
        if let Some(method) = &self.method {
            blocks.push(format!(
                "{} is {}:\n  {}",
                method.name,
                method.kind,
                method.text()
            ));
        }
        blocks.extend(self.messages.iter().map(MessageShape::text));
        blocks.push(format!("(from {})", self.source));
        blocks.join("\n\n")
    }
}
