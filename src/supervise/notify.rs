//! The child's side of systemd's notification protocol (`readiness: {notify: true}`,
//! `health_check: {watchdog: …}`): a datagram socket per run, named to the child by
//! `NOTIFY_SOCKET`, on which it sends `READY=1`, `STATUS=…` and `WATCHDOG=1`.
//!
//! The socket is in the abstract namespace (`@herder/<pid>/<child>/<incarnation>/<run>`), so a
//! child running as another user can reach it; what keeps strangers out is the sender's
//! credentials, which the kernel attaches to every datagram (`SO_PASSCRED`): a message
//! counts only if its sender is in the child's process group or session. A datagram over
//! [`MAX_MESSAGE`] bytes is refused whole, as systemd does. Descriptors sent along are
//! closed at once, which is what `BARRIER=1` (sent by `systemd-notify`) waits for. Other
//! assignments (`MAINPID=`, `FDSTORE=1`, `EXTEND_TIMEOUT_USEC=`, …) are ignored.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram as StdDatagram};

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, sockopt};
use tokio::net::UnixDatagram;

/// The largest message accepted, in bytes (systemd's limit, `PIPE_BUF`).
pub const MAX_MESSAGE: usize = 4096;

/// Descriptors a datagram may pass that are received (and closed); the kernel closes the rest.
const PASSED_FDS: usize = 8;

/// How much of a `STATUS=` text is kept, in characters.
pub const STATUS_CHARS: usize = 200;

/// One assignment of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `READY=1`.
    Ready,
    /// `STATUS=…`: free text for humans, cut to [`STATUS_CHARS`].
    Status(String),
    /// `WATCHDOG=1`: a keep-alive ping.
    Watchdog,
    /// `WATCHDOG=trigger`: the child asks to be treated as failed.
    WatchdogTrigger,
    /// `STOPPING=1`: the child is shutting down on its own.
    Stopping,
    /// `RELOADING=1`: the child reloads its configuration (until the next `READY=1`).
    Reloading,
    /// Anything else: its key, ignored.
    Ignored(String),
}

/// Parses a datagram: newline-separated `KEY=VALUE` assignments.
pub fn parse(datagram: &[u8]) -> Vec<Message> {
    let text = String::from_utf8_lossy(datagram);
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some(("READY", "1")) => Message::Ready,
            Some(("STATUS", value)) => Message::Status(value.chars().take(STATUS_CHARS).collect()),
            Some(("WATCHDOG", "1")) => Message::Watchdog,
            Some(("WATCHDOG", "trigger")) => Message::WatchdogTrigger,
            Some(("STOPPING", "1")) => Message::Stopping,
            Some(("RELOADING", "1")) => Message::Reloading,
            Some((key, _)) => Message::Ignored(key.chars().take(32).collect()),
            None => Message::Ignored(line.chars().take(32).collect()),
        })
        .collect()
}

/// A datagram as received: who sent it and what it said, or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The sender's pid, from the kernel (`None` if no credentials came with it).
    pub pid: Option<i32>,
    /// The assignments, or why the datagram was refused as a whole.
    pub messages: Result<Vec<Message>, String>,
}

/// A child's notification socket for one run.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    name: String,
}

impl NotifySocket {
    /// Binds the socket of run `run` of incarnation `incarnation` of `child`.
    pub fn bind(child: &str, incarnation: u64, run: u64) -> io::Result<Self> {
        let name = format!("herder/{}/{child}/{incarnation}/{run}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes())?;
        let std = StdDatagram::bind_addr(&address)?;
        socket::setsockopt(&std, sockopt::PassCred, &true).map_err(io::Error::from)?;
        std.set_nonblocking(true)?;
        Ok(Self {
            socket: UnixDatagram::from_std(std)?,
            name,
        })
    }

    /// The value of `NOTIFY_SOCKET` for the child (`@` marks the abstract namespace).
    pub fn env_value(&self) -> String {
        format!("@{}", self.name)
    }

    /// The next datagram.
    pub async fn recv(&self) -> io::Result<Datagram> {
        loop {
            self.socket.readable().await?;
            match self
                .socket
                .try_io(tokio::io::Interest::READABLE, || self.recv_now())
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    fn recv_now(&self) -> io::Result<Datagram> {
        // One byte more than allowed, to tell "exactly the limit" from "over it".
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        // Room for the credentials and a few descriptors (`BARRIER=1` sends one); more are
        // cut by the kernel (MSG_CTRUNC closes them), the ones that fit are closed below.
        let mut cmsg = nix::cmsg_space!(nix::libc::ucred, [RawFd; PASSED_FDS]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<()>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut pid = None;
        for cmsg in msg.cmsgs().ok().into_iter().flatten() {
            match cmsg {
                ControlMessageOwned::ScmCredentials(creds) => pid = Some(creds.pid()),
                ControlMessageOwned::ScmRights(fds) => {
                    // Closed at once: that is what `BARRIER=1` waits for, and a child
                    // cannot fill herder's descriptor table by sending some.
                    for fd in fds {
                        // SAFETY: the kernel just installed `fd` in this process for us
                        // alone; nothing else knows the number.
                        drop(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
                _ => {}
            }
        }
        // With MSG_TRUNC the length is the datagram's, even when the buffer was smaller.
        let len = msg.bytes;
        let messages = if len > MAX_MESSAGE {
            Err(format!(
                "a notification of {len} bytes is over the limit of {MAX_MESSAGE}"
            ))
        } else {
            Ok(parse(&buf[..len]))
        };
        Ok(Datagram { pid, messages })
    }
}

/// Whether the process `sender` belongs to the child whose process group (and session) is
/// `child_pgid`: it is in that process group or that session.
pub fn is_childs(sender: i32, child_pgid: i32) -> bool {
    super::proc::stat(sender)
        .is_some_and(|stat| stat.pgrp == child_pgid || stat.session == child_pgid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_and_unknown_ones_are_named() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=serving 3 clients\nMAINPID=12\n\nWATCHDOG=1"),
            [
                Message::Ready,
                Message::Status("serving 3 clients".into()),
                Message::Ignored("MAINPID".into()),
                Message::Watchdog,
            ]
        );
        assert_eq!(parse(b"READY=0"), [Message::Ignored("READY".into())]);
        assert_eq!(parse(b"WATCHDOG=trigger"), [Message::WatchdogTrigger]);
        assert_eq!(
            parse(b"RELOADING=1\nSTOPPING=1"),
            [Message::Reloading, Message::Stopping]
        );
        let long = format!("STATUS={}", "x".repeat(1000));
        assert_eq!(
            parse(long.as_bytes()),
            [Message::Status("x".repeat(STATUS_CHARS))]
        );
    }

    #[tokio::test]
    async fn a_datagram_comes_with_its_senders_pid_and_an_oversized_one_is_refused() {
        let socket = NotifySocket::bind("test", 1, 1).unwrap();
        let name = socket.env_value();
        let address = SocketAddr::from_abstract_name(&name.as_bytes()[1..]).unwrap();
        let sender = StdDatagram::unbound().unwrap();
        sender
            .send_to_addr(b"READY=1\nSTATUS=up", &address)
            .unwrap();
        let got = socket.recv().await.unwrap();
        assert_eq!(got.pid, Some(std::process::id() as i32));
        assert_eq!(
            got.messages,
            Ok(vec![Message::Ready, Message::Status("up".into())])
        );
        let exact = format!("STATUS={}", "y".repeat(MAX_MESSAGE - 7));
        sender.send_to_addr(exact.as_bytes(), &address).unwrap();
        assert!(
            socket.recv().await.unwrap().messages.is_ok(),
            "the limit itself is fine"
        );
        sender
            .send_to_addr(&vec![b'z'; MAX_MESSAGE + 1], &address)
            .unwrap();
        let refused = socket.recv().await.unwrap().messages;
        assert!(
            refused
                .as_ref()
                .is_err_and(|why| why.contains("4097 bytes")),
            "{refused:?}"
        );
        // This test process is in its own process group, not in a child's made up pid's.
        assert!(is_childs(
            std::process::id() as i32,
            nix::unistd::getpgrp().as_raw()
        ));
        assert!(!is_childs(std::process::id() as i32, i32::MAX));
    }
}
