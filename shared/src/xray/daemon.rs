//! The X-Ray daemon the subsegments go to: its address, and one socket per process.

use super::{DAEMON_ADDRESS, Subsegment};
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;

/// The daemon's address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or Lambda's
/// `udp:host:port tcp:host:port` form (the UDP one is used).
pub fn daemon_address(value: &str) -> Option<SocketAddr> {
    value
        .split_whitespace()
        .filter(|part| !part.starts_with("tcp:"))
        .find_map(|part| part.strip_prefix("udp:").unwrap_or(part).parse().ok())
}

/// The X-Ray daemon, reached over UDP from a socket bound once per process.
#[derive(Debug)]
pub struct Daemon {
    socket: UdpSocket,
    address: SocketAddr,
}

impl Daemon {
    /// A socket that sends to the daemon at `address` without ever blocking.
    pub fn connect(address: SocketAddr) -> std::io::Result<Self> {
        let any: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(any)?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket, address })
    }

    pub(super) fn send(&self, subsegment: &Subsegment) {
        if let Err(e) = self
            .socket
            .send_to(subsegment.datagram().as_bytes(), self.address)
        {
            tracing::debug!(error = %e, "an X-Ray subsegment was not sent");
        }
    }
}

/// The process's daemon: set up on the first traced call, none without
/// `AWS_XRAY_DAEMON_ADDRESS`.
pub(super) fn daemon() -> Option<&'static Daemon> {
    static DAEMON: OnceLock<Option<Daemon>> = OnceLock::new();
    DAEMON
        .get_or_init(|| {
            let address = daemon_address(&std::env::var(DAEMON_ADDRESS).ok()?)?;
            Daemon::connect(address)
                .inspect_err(|e| tracing::warn!(error = %e, "no socket for the X-Ray daemon"))
                .ok()
        })
        .as_ref()
}
