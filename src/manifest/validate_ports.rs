//! Checks of `ports:`: no port declared twice (in one child, by two children, or by the
//! replicas of one), and a warning for `update: start-first` on a port the child cannot
//! share (both incarnations would need it at once).

use foldhash::{HashMap, HashMapExt};

use super::diagnostic::{Code, Diagnostic};
use super::load::ManifestDoc;
use super::model::{PortSpec, Protocol, UpdateStrategy};

/// The problems of one manifest's ports.
pub fn check_ports(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let m = &*doc.manifest;
    for (index, port) in m.ports.iter().enumerate() {
        let pointer = format!("/ports/{index}");
        let twice = m.ports[..index]
            .iter()
            .any(|other| overlaps(&other.0, &port.0));
        if twice {
            out.push(doc.error_at(
                Code::Invalid,
                &pointer,
                format!("port {} is declared twice", port.0),
            ));
        }
        if m.replicas > 1 && !port.0.reuse_port {
            out.push(
                doc.error_at(
                    Code::Invalid,
                    &pointer,
                    format!(
                        "{} replicas cannot all own port {}",
                        m.replicas, port.0
                    ),
                )
                .with_hint("give each replica its own port, or set `reuse_port: true` if the program binds with SO_REUSEPORT"),
            );
        }
        if m.update == UpdateStrategy::StartFirst && !port.0.reuse_port {
            out.push(
                doc.error_at(
                    Code::Invalid,
                    &pointer,
                    format!(
                        "update: start-first needs port {} twice while the new incarnation starts",
                        port.0
                    ),
                )
                .with_hint("set `reuse_port: true` if the program binds with SO_REUSEPORT, or use `update: stop-first`")
                .warning(),
            );
        }
    }
}

/// Two children declaring the same port: an error on every later declaration.
pub fn check_port_owners<'a>(order: impl IntoIterator<Item = &'a ManifestDoc>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // (port, protocol) → the first declaration: its document and spec.
    let mut owners: HashMap<(u16, Protocol), Vec<(&ManifestDoc, &PortSpec)>> = HashMap::new();
    for doc in order {
        for (index, port) in doc.manifest.ports.iter().enumerate() {
            let declared = owners.entry((port.0.port, port.0.protocol)).or_default();
            let clash = declared.iter().find(|(owner, spec)| {
                owner.manifest.name != doc.manifest.name && overlaps(spec, &port.0)
            });
            match clash {
                Some((owner, _)) => {
                    let location = owner.spans.value("/ports");
                    out.push(
                        doc.error_at(
                            Code::Invalid,
                            &format!("/ports/{index}"),
                            format!(
                                "port {} is also declared by \"{}\"",
                                port.0, owner.manifest.name
                            ),
                        )
                        .with_hint(format!(
                            "\"{}\" declares it at {}:{}:{}; a port has one owner",
                            owner.manifest.name,
                            owner.file.display(),
                            location.line,
                            location.column
                        )),
                    );
                }
                None => declared.push((doc, &port.0)),
            }
        }
    }
    out
}

/// Whether two declarations name the same socket: same port and protocol, and the same
/// host or one of them on every address.
fn overlaps(a: &PortSpec, b: &PortSpec) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.host.is_none() || b.host.is_none() || a.host == b.host)
}
