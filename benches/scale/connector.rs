//! The kernel's proc connector: exec and exit events of every process with their `CLOCK_MONOTONIC`
//! timestamps, over a netlink socket (root only).

use super::*;

/// `CLOCK_MONOTONIC` now, in ns: the clock of the kernel's exec timestamps.
pub(crate) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    now.tv_sec.unsigned_abs() * 1_000_000_000 + now.tv_nsec.unsigned_abs()
}

/// A process event from the kernel, with its `CLOCK_MONOTONIC` timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProcEvent {
    Exec { pid: i32, at: u64 },
    Exit { pid: i32, at: u64 },
}

/// A netlink socket subscribed to the proc connector's events.
pub(crate) struct Connector(OwnedFd);

/// `linux/connector.h` and `linux/cn_proc.h`.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HEADER: usize = 16;
const CN_MSG_HEADER: usize = 20;

impl Connector {
    /// A netlink socket listening to the proc connector, or `None` without the privilege.
    pub(crate) fn connect() -> Option<Self> {
        // SAFETY: plain socket calls on a descriptor this function owns; every buffer
        // passed is a live local of the stated length.
        unsafe {
            let raw = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_CONNECTOR,
            );
            if raw < 0 {
                return None;
            }
            let fd = OwnedFd::from_raw_fd(raw);
            let mut address: libc::sockaddr_nl = std::mem::zeroed();
            address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            address.nl_pid = std::process::id();
            address.nl_groups = CN_IDX_PROC;
            let bound = libc::bind(
                fd.as_raw_fd(),
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            if bound < 0 {
                return None;
            }
            let mut message = [0u8; NLMSG_HEADER + CN_MSG_HEADER + 4];
            let length = message.len() as u32;
            message[0..4].copy_from_slice(&length.to_ne_bytes());
            message[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
            message[12..16].copy_from_slice(&std::process::id().to_ne_bytes());
            message[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
            message[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
            message[32..34].copy_from_slice(&4u16.to_ne_bytes());
            message[36..40].copy_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
            let sent = libc::send(fd.as_raw_fd(), message.as_ptr().cast(), message.len(), 0);
            if sent < 0 {
                return None;
            }
            let timeout = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            // Room for a burst of 10,000 exits while the reader thread catches up.
            let size: libc::c_int = 64 << 20;
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            Some(Self(fd))
        }
    }

    /// Reads events on a thread of its own (so none are lost while the bench waits on
    /// herder) and hands them over.
    pub(crate) fn listen(self) -> mpsc::Receiver<ProcEvent> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                // SAFETY: recv writes at most `buffer.len()` bytes into `buffer`.
                let received = unsafe {
                    libc::recv(
                        self.0.as_raw_fd(),
                        buffer.as_mut_ptr().cast(),
                        buffer.len(),
                        0,
                    )
                };
                let Ok(received) = usize::try_from(received) else {
                    continue; // the 1 s receive timeout, EINTR or ENOBUFS
                };
                for event in proc_events(&buffer[..received]) {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// The exec and exit events in a datagram of netlink messages.
fn proc_events(mut datagram: &[u8]) -> Vec<ProcEvent> {
    let u32_at = |bytes: &[u8], at: usize| {
        bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut events = Vec::new();
    while datagram.len() >= NLMSG_HEADER {
        let length = (u32_at(datagram, 0) as usize).max(NLMSG_HEADER);
        let message = &datagram[..length.min(datagram.len())];
        // proc_event: what, cpu, timestamp_ns, then the process_pid of exec and exit.
        let event = NLMSG_HEADER + CN_MSG_HEADER;
        let at =
            u64::from(u32_at(message, event + 8)) | (u64::from(u32_at(message, event + 12)) << 32);
        let pid = u32_at(message, event + 16) as i32;
        match u32_at(message, event) {
            PROC_EVENT_EXEC => events.push(ProcEvent::Exec { pid, at }),
            PROC_EVENT_EXIT => events.push(ProcEvent::Exit { pid, at }),
            _ => {}
        }
        datagram = datagram.get((length + 3) & !3..).unwrap_or_default();
    }
    events
}
