//! Batched UDP receive and send (`recvmmsg(2)`, `sendmmsg(2)`): one system call moves up to
//! [`BATCH`] datagrams, so a busy media socket costs a fraction of a call per packet instead of
//! one or two. Linux only, like the node.
//!
//! This is the node's one `unsafe` module: it fills the kernel's `mmsghdr` arrays with pointers
//! into buffers it owns. Every pointer is rebuilt right before each call from `&mut self`, so
//! nothing points into memory that moved, and the kernel only writes within the lengths given.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest datagram kept whole; longer ones are truncated (and then fail SRTP or RTP checks).
pub const MAX_DATAGRAM: usize = 2048;

/// The buffers and kernel headers of one batch: datagram `i` lives in `bufs[i]`, its peer
/// address in `addrs[i]`, and `headers[i]` points at both (through `iovecs[i]`).
struct Slots {
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            bufs: Box::new([[0; MAX_DATAGRAM]; BATCH]),
            // SAFETY: all-zero is a valid `sockaddr_storage`, `iovec` and `mmsghdr` (plain C
            // structs of integers and null pointers).
            addrs: Box::new(unsafe { zeroed() }),
            iovecs: unsafe { zeroed() },
            headers: unsafe { zeroed() },
        }
    }
}

impl Slots {
    /// Points header `i` at its buffer (`len` bytes of it) and its address (`name_len` bytes),
    /// right before a call: the pointers are into `self`, so they are valid while `self` is
    /// borrowed by that call.
    fn point(&mut self, i: usize, len: usize, name_len: libc::socklen_t) {
        self.iovecs[i] = libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: len,
        };
        let header = &mut self.headers[i];
        header.msg_hdr.msg_name = std::ptr::from_mut(&mut self.addrs[i]).cast();
        header.msg_hdr.msg_namelen = name_len;
        header.msg_hdr.msg_iov = std::ptr::from_mut(&mut self.iovecs[i]);
        header.msg_hdr.msg_iovlen = 1;
        header.msg_hdr.msg_control = std::ptr::null_mut();
        header.msg_hdr.msg_controllen = 0;
        header.msg_hdr.msg_flags = 0;
        header.msg_len = 0;
    }
}

/// Buffers for one `recvmmsg` call.
#[derive(Default)]
pub struct RecvBatch {
    slots: Slots,
    received: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// Reads what is waiting on `fd` without blocking, up to [`BATCH`] datagrams. `Ok(0)`: none
    /// was waiting. Fewer than [`BATCH`] means the socket was drained when the call returned.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.received = 0;
        let name_len = socklen(size_of::<libc::sockaddr_storage>());
        for i in 0..BATCH {
            self.slots.point(i, MAX_DATAGRAM, name_len);
        }
        // SAFETY: `headers` holds BATCH headers pointed just above into `addrs`, `iovecs` and
        // `bufs`, all owned by `self`, alive and not moved during the call; lengths are their
        // real sizes. MSG_DONTWAIT: never blocks; no timeout pointer.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.slots.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        self.received = usize::try_from(n).unwrap_or(0).min(BATCH);
        Ok(self.received)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and where it came from (`None`: an address
    /// family other than IPv4/IPv6, skipped).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let len = usize::try_from(self.slots.headers[i].msg_len)
            .unwrap_or(0)
            .min(MAX_DATAGRAM);
        let source = from_storage(&self.slots.addrs[i])?;
        Some((&self.slots.bufs[i][..len], source))
    }
}

/// Datagrams queued for one socket, sent with one `sendmmsg` per [`BATCH`].
#[derive(Default)]
pub struct SendBatch {
    slots: Slots,
    lens: [usize; BATCH],
    addr_lens: [libc::socklen_t; BATCH],
    queued: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

/// What a [`SendBatch::flush`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams dropped (the send buffer was full, or the kernel refused one).
    pub dropped: usize,
}

impl SendBatch {
    /// True when [`BATCH`] datagrams wait: flush before pushing more.
    pub fn is_full(&self) -> bool {
        self.queued == BATCH
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.queued
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queues a copy of `contents` for `destination`. False (nothing queued) when the batch is
    /// full or `contents` is longer than [`MAX_DATAGRAM`].
    pub fn push(&mut self, destination: SocketAddr, contents: &[u8]) -> bool {
        if self.queued == BATCH || contents.len() > MAX_DATAGRAM {
            return false;
        }
        let i = self.queued;
        self.slots.bufs[i][..contents.len()].copy_from_slice(contents);
        self.lens[i] = contents.len();
        self.addr_lens[i] = to_storage(destination, &mut self.slots.addrs[i]);
        self.queued += 1;
        true
    }

    /// Sends everything queued on `fd`. A datagram the kernel refuses (full buffer, unreachable)
    /// is dropped, as the network would; the rest still go.
    pub fn flush(&mut self, fd: RawFd) -> Sent {
        let mut result = Sent::default();
        for i in 0..self.queued {
            self.slots.point(i, self.lens[i], self.addr_lens[i]);
        }
        let mut start = 0;
        while start < self.queued {
            let count = self.queued - start;
            // SAFETY: headers[start..queued] are pointed above into buffers owned by `self`
            // that stay alive and unmoved during the call; `count` does not exceed their
            // number.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.slots.headers[start..].as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // The first datagram failed (the error is for it alone): drop it, go on.
                result.dropped += 1;
                start += 1;
            } else {
                let n = usize::try_from(n).unwrap_or(0).min(count);
                result.sent += n;
                start += n;
            }
        }
        self.queued = 0;
        result
    }
}

/// Asks for `bytes` of receive and send buffer on `fd`: first past the system's caps
/// (`SO_RCVBUFFORCE`, allowed with CAP_NET_ADMIN), else within them. Returns what the kernel
/// granted (it reports twice the usable size, see socket(7)), receive then send.
pub fn set_buffers(fd: RawFd, bytes: usize) -> io::Result<(usize, usize)> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt_int(fd, force, value).is_err() {
            setsockopt_int(fd, plain, value)?;
        }
    }
    Ok((
        getsockopt_int(fd, libc::SO_RCVBUF)?,
        getsockopt_int(fd, libc::SO_SNDBUF)?,
    ))
}

fn setsockopt_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::from_ref(&value).cast(),
            socklen(size_of::<libc::c_int>()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: RawFd, option: libc::c_int) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    let mut len = socklen(size_of::<libc::c_int>());
    // SAFETY: the kernel writes at most `len` bytes into the live c_int `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(usize::try_from(value).unwrap_or(0))
    } else {
        Err(io::Error::last_os_error())
    }
}

fn socklen(len: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX)
}

/// Writes `addr` into `storage` as the C socket address; returns its length.
fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for `sockaddr_in`.
            unsafe {
                std::ptr::from_mut(storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            socklen(size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for `sockaddr_in6`.
            unsafe {
                std::ptr::from_mut(storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            socklen(size_of::<libc::sockaddr_in6>())
        }
    }
}

/// The address the kernel wrote into `storage`, if IPv4 or IPv6.
fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a `sockaddr_in` here.
            let sin = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the kernel wrote a `sockaddr_in6` here.
            let sin6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn an_empty_socket_reads_as_zero_datagrams_not_an_error() {
        let (_a, b) = pair();
        let mut batch = RecvBatch::default();
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap(), 0);
        assert!(batch.get(0).is_none());
    }

    #[test]
    fn one_call_sends_many_datagrams_to_their_own_destinations_and_one_call_reads_them() {
        let (a, b) = pair();
        let (_c, d) = pair();
        let mut send = SendBatch::default();
        for i in 0..40u8 {
            if send.is_full() {
                assert_eq!(send.flush(a.as_raw_fd()).sent, BATCH);
            }
            let to = if i % 2 == 0 { &b } else { &d };
            assert!(send.push(to.local_addr().unwrap(), &[i; 100]));
        }
        assert_eq!(send.len(), 8);
        assert_eq!(
            send.flush(a.as_raw_fd()),
            Sent {
                sent: 8,
                dropped: 0
            }
        );
        assert!(send.is_empty());

        let mut recv = RecvBatch::default();
        let mut seen = Vec::new();
        for socket in [&b, &d] {
            let n = recv.recv(socket.as_raw_fd()).unwrap();
            assert_eq!(n, 20);
            for i in 0..n {
                let (data, from) = recv.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                assert_eq!(data.len(), 100);
                seen.push(data[0]);
            }
            assert_eq!(recv.recv(socket.as_raw_fd()).unwrap(), 0);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());
    }

    #[test]
    fn a_full_batch_refuses_more_and_oversized_datagrams_are_refused() {
        let mut send = SendBatch::default();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!send.push(to, &[0; MAX_DATAGRAM + 1]));
        for _ in 0..BATCH {
            assert!(send.push(to, b"x"));
        }
        assert!(!send.push(to, b"x"));
    }

    #[test]
    fn socket_buffers_grow_to_what_was_asked_or_the_system_cap() {
        let (a, _b) = pair();
        let asked = 1 << 20;
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(asked);
        let (rcv, _snd) = set_buffers(a.as_raw_fd(), asked).unwrap();
        // The kernel reports twice the usable size. Forced (CAP_NET_ADMIN) it grants `asked`;
        // otherwise up to `net.core.rmem_max`. Either way more than the 208 KiB default here.
        assert!(
            rcv >= 2 * asked.min(cap),
            "granted {rcv}, asked {asked}, cap {cap}"
        );
    }

    #[test]
    fn ipv6_addresses_round_trip_through_the_c_form() {
        let addr: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        to_storage(addr, &mut storage);
        assert_eq!(from_storage(&storage), Some(addr));
    }
}
