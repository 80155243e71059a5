//! Several listen addresses in one `grpclb serve` process, so one process
//! can stand in for many pods: comma-separated addresses and IPv4 ranges
//! such as `127.0.1.1-127.0.4.250:50051`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use super::{ServeError, bind};

/// Most addresses one process listens on.
pub const MAX_LISTEN: usize = 10_000;

/// Parses `--listen`: `IP:port`, `[IPv6]:port`, `FIRST-LAST:port` (IPv4,
/// inclusive), or a comma-separated list of those. Errors say what is
/// wrong and show an example.
pub fn parse_listen(spec: &str) -> Result<Vec<SocketAddr>, String> {
    let mut addresses = Vec::new();
    for item in spec.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "--listen {spec:?} has an empty item between commas"
            ));
        }
        match item.parse::<SocketAddr>() {
            Ok(address) => addresses.push(address),
            Err(_) => addresses.extend(parse_range(item)?),
        }
        if addresses.len() > MAX_LISTEN {
            return Err(format!(
                "--listen {spec:?} names more than {MAX_LISTEN} addresses; split them over several processes"
            ));
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(addresses.len());
    if let Some(twice) = addresses
        .iter()
        .find(|a| a.port() != 0 && !seen.insert(**a))
    {
        return Err(format!("--listen names {twice} twice"));
    }
    Ok(addresses)
}

/// `A.B.C.D-E.F.G.H:port`, inclusive.
fn parse_range(item: &str) -> Result<Vec<SocketAddr>, String> {
    let invalid = || {
        format!(
            "--listen {item:?} is not an IP:port address or an IPv4 range; \
             write e.g. 0.0.0.0:50051, 127.0.0.1:0 or 127.0.1.1-127.0.4.250:50051"
        )
    };
    let (range, port) = item.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let (first, last) = range.split_once('-').ok_or_else(invalid)?;
    let first: Ipv4Addr = first.trim().parse().map_err(|_| invalid())?;
    let last: Ipv4Addr = last.trim().parse().map_err(|_| invalid())?;
    let (first, last) = (u32::from(first), u32::from(last));
    if last < first {
        return Err(format!(
            "--listen {item:?}: the range runs backwards; put the lower address first"
        ));
    }
    if (last - first) as usize >= MAX_LISTEN {
        return Err(format!(
            "--listen {item:?} spans more than {MAX_LISTEN} addresses; split it over several processes"
        ));
    }
    Ok((first..=last)
        .map(|ip| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        .collect())
}

/// Binds every address. With port 0 and several addresses, all share the
/// port the first one got where it is free there too, so that one port
/// names them all.
pub async fn bind_all(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, ServeError> {
    let mut listeners = Vec::with_capacity(addresses.len());
    let mut shared_port = None;
    for &address in addresses {
        let listener = match (address.port(), shared_port) {
            (0, Some(port)) => match bind(SocketAddr::new(address.ip(), port)).await {
                Ok(listener) => listener,
                Err(_) => bind(address).await?,
            },
            _ => bind(address).await?,
        };
        if address.port() == 0 && shared_port.is_none() {
            shared_port = listener.local_addr().ok().map(|a| a.port());
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The name of listener `index` of `count`: the name itself for one
/// listener, `name-1`, `name-2`, … for several.
pub fn listener_name(name: &str, index: usize, count: usize) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{name}-{}", index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists_expand_in_order() {
        let addresses = parse_listen("127.0.1.1-127.0.1.3:50051, 127.0.2.1:0").expect("valid");
        let text: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            text,
            [
                "127.0.1.1:50051",
                "127.0.1.2:50051",
                "127.0.1.3:50051",
                "127.0.2.1:0"
            ]
        );
        let many = parse_listen("127.0.1.1-127.0.4.250:50051").expect("valid");
        assert_eq!(many.len(), 3 * 256 + 250);
        assert_eq!(
            many.last().map(|a| a.to_string()).as_deref(),
            Some("127.0.4.250:50051")
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, fragment) in [
            ("nowhere", "not an IP:port"),
            ("127.0.0.2-127.0.0.1:1", "backwards"),
            ("10.0.0.0-10.255.255.255:1", "more than"),
            ("127.0.0.1:1,,127.0.0.2:1", "empty item"),
            ("127.0.0.1:1,127.0.0.1:1", "twice"),
            ("127.0.0.1-127.0.0.9", "not an IP:port"),
        ] {
            let error = parse_listen(spec).expect_err(spec);
            assert!(error.contains(fragment), "{spec}: {error}");
        }
    }

    #[tokio::test]
    async fn port_zero_is_shared_by_every_address() {
        let addresses = parse_listen("127.0.7.1-127.0.7.3:0").expect("valid");
        let listeners = bind_all(&addresses).await.expect("bound");
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("address").port())
            .collect();
        assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
    }
}
