//! Who holds a declared port, checked before each start: the sockets of this network
//! namespace (`/proc/net/{tcp,tcp6,udp,udp6}`), and the process whose `/proc/PID/fd` links
//! to a blocking socket's inode.
//!
//! A TCP port is held by a listening socket, a UDP port by any bound one. A declaration
//! on every address (no `host`) is blocked by a holder on any address; one on a host, by a
//! holder on that address or on every address (`0.0.0.0`, `::`). Sockets of the child's own
//! processes (its other incarnations or replicas, known by their `HERDER_NAME`) do not
//! count: two of its incarnations overlap only where the manifest allows it (`reuse_port`,
//! which validation checks). herder only looks: it never signals a holder.
//!
//! While a port is held the check repeats with a bounded back-off ([`FIRST_RETRY`] doubling to
//! [`MAX_RETRY`]): the kernel has no notification for "a port was freed".
//!
//! Cost: the socket tables are read once per check (a few hundred bytes per socket); the
//! process scan (`/proc/*/fd`, O(processes × descriptors)) runs only when a socket blocks.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::manifest::model::{PortSpec, Protocol};

/// TCP state `LISTEN` in `/proc/net/tcp` (`include/net/tcp_states.h`).
const TCP_LISTEN: &str = "0A";

/// A port someone else holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The declaration it blocks, as written in status (`8080/tcp`).
    pub port: String,
    /// The holding process, when this herder can see it (not in another pid namespace,
    /// readable).
    pub pid: Option<i32>,
    /// Its command line, spaces between arguments, at most [`COMMAND_CHARS`] characters.
    pub command: Option<String>,
    /// The herder child it belongs to (its `HERDER_NAME`), when it is one.
    pub child: Option<String>,
}

/// How much of a holder's command line a reason quotes.
pub const COMMAND_CHARS: usize = 120;

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} is held by ", self.port)?;
        match self.pid {
            None => f.write_str("a process herder cannot see (another user or pid namespace)"),
            Some(pid) => {
                write!(f, "pid {pid}")?;
                if let Some(child) = &self.child {
                    write!(f, " (child {child})")?;
                }
                match &self.command {
                    Some(command) => write!(f, ": {command}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One row of a socket table that could hold a port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Socket {
    address: IpAddr,
    port: u16,
    inode: u64,
}

/// The first of `ports` that something holds, other than processes for which
/// `own(herder_name)` is true. `None` when every port is free, or when the socket tables
/// cannot be read (no `/proc`: then the kernel's `bind` is the only check, as without
/// a declaration).
pub fn holder(ports: &[PortSpec], own: impl Fn(&str) -> bool) -> Option<Holder> {
    if ports.is_empty() {
        return None;
    }
    let tcp = sockets(&["/proc/net/tcp", "/proc/net/tcp6"], Some(TCP_LISTEN));
    let udp = sockets(&["/proc/net/udp", "/proc/net/udp6"], None);
    let mut owners = None;
    for spec in ports {
        let table = match spec.protocol {
            Protocol::Tcp => &tcp,
            Protocol::Udp => &udp,
        };
        let wanted: Option<IpAddr> = spec.host.as_deref().and_then(|h| h.parse().ok());
        let blocking: BTreeSet<u64> = table
            .iter()
            .filter(|socket| socket.port == spec.port && overlaps(wanted, socket.address))
            .map(|socket| socket.inode)
            .collect();
        if blocking.is_empty() {
            continue;
        }
        // Which processes hold those sockets: one scan of /proc, shared by the ports.
        let owners = owners.get_or_insert_with(socket_owners);
        let holders: Vec<(i32, Option<String>)> = blocking
            .iter()
            .flat_map(|inode| owners.iter().filter(move |owner| owner.1 == *inode))
            .map(|&(pid, _)| (pid, herder_name(pid)))
            .collect();
        if !holders.is_empty()
            && holders
                .iter()
                .all(|(_, name)| name.as_deref().is_some_and(&own))
        {
            continue; // only the child's own processes: not a reason to wait
        }
        let found = holders
            .into_iter()
            .find(|(_, name)| !name.as_deref().is_some_and(&own));
        return Some(Holder {
            port: spec.to_string(),
            pid: found.as_ref().map(|(pid, _)| *pid),
            command: found.as_ref().and_then(|(pid, _)| command_line(*pid)),
            child: found.and_then(|(_, name)| name),
        });
    }
    None
}

/// The first check comes at once; while a port is held, the next after this, doubling…
pub const FIRST_RETRY: Duration = Duration::from_millis(100);
/// …up to this: a freed port is seen within 2 s, at one cheap check per 2 s while it is not.
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// Waits until none of `ports` is held by a process outside the child (the manifest
/// `manifest` with `replicas` replicas: its processes carry `HERDER_NAME` `manifest` or
/// `manifest-<index>`). Tells `report` each new holder, and `None` once free after one.
/// Returns `false` when `cancel` fires (or its sender is gone) first.
pub async fn wait_until_free(
    ports: Vec<PortSpec>,
    manifest: String,
    replicas: u32,
    mut report: impl FnMut(Option<String>),
    cancel: &mut oneshot::Receiver<()>,
) -> bool {
    let ports = Arc::new(ports);
    let mut delay = FIRST_RETRY;
    let mut last: Option<String> = None;
    loop {
        let (ports, manifest) = (Arc::clone(&ports), manifest.clone());
        let own = move |name: &str| is_own(name, &manifest, replicas);
        let found = tokio::task::spawn_blocking(move || holder(&ports, own))
            .await
            .unwrap_or_default()
            .map(|holder| holder.to_string());
        match found {
            None => {
                if last.is_some() {
                    report(None);
                }
                return true;
            }
            Some(text) => {
                if last.as_ref() != Some(&text) {
                    report(Some(text.clone()));
                    last = Some(text);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut *cancel => return false,
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Whether a process with `HERDER_NAME` `name` belongs to the manifest `manifest`.
fn is_own(name: &str, manifest: &str, replicas: u32) -> bool {
    name == manifest
        || (replicas > 1
            && name
                .strip_prefix(manifest)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|index| index.parse::<u32>().ok())
                .is_some_and(|index| index < replicas))
}

/// Whether a socket on `held` blocks a declaration on `wanted` (`None`: every address).
fn overlaps(wanted: Option<IpAddr>, held: IpAddr) -> bool {
    match wanted {
        None => true,
        Some(wanted) => held.is_unspecified() || held.to_canonical() == wanted.to_canonical(),
    }
}

/// The sockets of the tables at `paths`, only those in `state` when given.
fn sockets(paths: &[&str], state: Option<&str>) -> Vec<Socket> {
    paths
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| parse_row(line, state))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One row of `/proc/net/{tcp,udp}{,6}`: `sl local rem st tx:rx tr:when retr uid timeout inode …`.
fn parse_row(line: &str, state: Option<&str>) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, port) = fields.get(1)?.split_once(':')?;
    if state.is_some_and(|state| fields.get(3) != Some(&state)) {
        return None;
    }
    Some(Socket {
        address: parse_address(address)?,
        port: u16::from_str_radix(port, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// An address as the kernel prints it: the bytes of each 32-bit word in host order.
fn parse_address(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| {
        let text = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(text, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// `(pid, socket inode)` for every socket descriptor of every process this herder can read.
fn socket_owners() -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    for pid in super::proc::all_pids() {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok());
            if let Some(inode) = inode {
                out.push((pid, inode));
            }
        }
    }
    out
}

/// The `HERDER_NAME` in `pid`'s environment: the herder child it belongs to.
fn herder_name(pid: i32) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|byte| *byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(b"HERDER_NAME=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// `pid`'s command line, arguments (and control characters) turned into spaces, cut to
/// [`COMMAND_CHARS`].
fn command_line(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    // Arguments joined by spaces; control characters (a newline in a `-c` script) too.
    let joined: String = text
        .trim_end_matches('\0')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if joined.is_empty() {
        return None;
    }
    Some(joined.chars().take(COMMAND_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    fn tcp(port: u16, host: Option<&str>) -> PortSpec {
        PortSpec {
            port,
            protocol: Protocol::Tcp,
            host: host.map(str::to_owned),
            reuse_port: false,
        }
    }

    #[test]
    fn addresses_parse_as_the_kernel_prints_them() {
        let row = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_row(row, Some(TCP_LISTEN)),
            Some(Socket {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 8080,
                inode: 4242
            })
        );
        assert_eq!(parse_row(row, Some("01")), None, "not listening");
        assert_eq!(
            parse_address("00000000000000000000000001000000"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(parse_address("zz"), None);
    }

    #[test]
    fn a_host_is_blocked_by_its_own_address_and_by_every_address() {
        let loopback = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(overlaps(loopback, IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(overlaps(loopback, IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        assert!(overlaps(loopback, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!overlaps(loopback, "127.0.0.2".parse().unwrap()));
        assert!(overlaps(None, "127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn a_real_listener_is_found_with_its_pid_and_command_line() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = holder(&[tcp(port, None)], |_| false).expect("the listener holds it");
        assert_eq!(found.pid, Some(std::process::id() as i32), "{found}");
        assert!(found.command.is_some(), "{found}");
        assert!(
            found
                .to_string()
                .starts_with(&format!("port {port}/tcp is held by pid ")),
            "{found}"
        );
        // Another address on the same port is free; so is the port once closed.
        assert_eq!(holder(&[tcp(port, Some("127.0.0.2"))], |_| false), None);
        drop(listener);
        assert_eq!(holder(&[tcp(port, None)], |_| false), None);
    }

    #[test]
    fn replicas_are_the_childs_own_and_lookalikes_are_not() {
        assert!(is_own("web", "web", 1));
        assert!(is_own("web-1", "web", 2));
        assert!(!is_own("web-2", "web", 2), "no such replica");
        assert!(
            !is_own("web-1", "web", 1),
            "a child of its own, named web-1"
        );
        assert!(!is_own("webby", "web", 3));
    }

    #[tokio::test]
    async fn waiting_ends_when_the_port_is_freed_and_reports_the_holder_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let (_keep, mut cancel) = oneshot::channel();
        let waiter = tokio::spawn(async move {
            let report = move |holder| {
                let _ = reports_tx.send(holder);
            };
            wait_until_free(vec![tcp(port, None)], "web".into(), 1, report, &mut cancel).await
        });
        let first = reports.recv().await.expect("a holder is reported");
        assert!(first.is_some_and(|text| text.contains(&format!("port {port}/tcp"))));
        drop(listener);
        let freed = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(matches!(freed, Ok(Ok(true))), "{freed:?}");
        assert_eq!(reports.recv().await, Some(None), "then free, once");
        assert_eq!(reports.recv().await, None, "nothing more");
    }

    #[tokio::test]
    async fn a_cancel_ends_the_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cancel_tx, mut cancel) = oneshot::channel();
        let _ = cancel_tx.send(());
        let free = wait_until_free(vec![tcp(port, None)], "web".into(), 1, |_| {}, &mut cancel);
        let done = tokio::time::timeout(Duration::from_secs(10), free).await;
        assert_eq!(done, Ok(false));
        drop(listener);
    }

    #[test]
    fn a_bound_udp_socket_holds_its_port_and_tcp_does_not_see_it() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let udp = PortSpec {
            protocol: Protocol::Udp,
            ..tcp(port, Some("127.0.0.1"))
        };
        assert!(holder(std::slice::from_ref(&udp), |_| false).is_some());
        assert_eq!(holder(&[tcp(port, None)], |_| false), None);
    }
}
