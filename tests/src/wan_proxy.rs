//! A wide-area link in user space: a TCP proxy that delays every byte by half a round trip in
//! each direction and holds each connection, and all of them together, to a bandwidth cap.
//!
//! Why not netem: the kernel here has no `sch_netem` (`tc qdisc add ... netem` answers
//! "Specified qdisc kind is unknown"; only tbf and htb exist, which cap bandwidth but add no
//! delay). What this keeps of a real link: each request waits a round trip for its answer,
//! a connection moves at most its share of bandwidth, and what is in flight is bounded by the
//! bandwidth-delay product. What it does not: TCP's own slow start over the long RTT (the
//! client's TCP connection ends at this proxy, on loopback).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The link's shape.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub rtt: Duration,
    /// Bytes per second for one connection, each way.
    pub per_connection: u64,
    /// Bytes per second for all connections together, each way.
    pub total: u64,
}

pub struct WanProxy {
    port: u16,
}

/// A token bucket paced by the clock: `take(n)` waits until `n` bytes may pass.
struct Pacer {
    rate: u64,
    free_at: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Self {
            rate,
            free_at: Mutex::new(Instant::now()),
        }
    }

    fn take(&self, bytes: usize) {
        let until = {
            let mut free_at = self.free_at.lock().unwrap();
            let start = (*free_at).max(Instant::now());
            *free_at = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            *free_at
        };
        if let Some(wait) = until.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}

impl WanProxy {
    /// Forwards connections on a free localhost port to `upstream` (`host:port`) over `link`.
    pub fn start(upstream: &str, link: Link) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the WAN proxy");
        let port = listener.local_addr().expect("address").port();
        let upstream = upstream.to_string();
        let totals = Arc::new([Pacer::new(link.total), Pacer::new(link.total)]);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (upstream, totals) = (upstream.clone(), totals.clone());
                thread::spawn(move || connect(client, &upstream, link, totals));
            }
        });
        Self { port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn connect(client: TcpStream, upstream: &str, link: Link, totals: Arc<[Pacer; 2]>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let down = {
        let totals = totals.clone();
        thread::spawn(move || carry(server_read, client, link, &totals[1]))
    };
    carry(client_read, server, link, &totals[0]);
    let _ = down.join();
}

/// One direction: pieces are stamped when read, released half a round trip later, then paced.
fn carry(mut from: TcpStream, to: TcpStream, link: Link, total: &Pacer) {
    let delay = link.rtt / 2;
    // What may be in flight: the bandwidth-delay product, at least 256 KiB.
    let capacity = ((link.per_connection as f64 * delay.as_secs_f64()) as usize).max(256 << 10);
    let queue = Arc::new((Mutex::new(Flight::default()), Condvar::new()));
    let sender = {
        let queue = queue.clone();
        thread::spawn(move || deliver(to, &queue, link.per_connection))
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total.take(n);
        let (lock, ready) = &*queue;
        let mut flight = lock.lock().unwrap();
        while flight.bytes >= capacity && !flight.closed {
            flight = ready.wait(flight).unwrap();
        }
        if flight.closed {
            break;
        }
        flight.bytes += n;
        flight
            .pieces
            .push_back((Instant::now() + delay, buf[..n].to_vec()));
        ready.notify_all();
    }
    let (lock, ready) = &*queue;
    lock.lock().unwrap().ended = true;
    ready.notify_all();
    let _ = sender.join();
    let _ = from.shutdown(Shutdown::Read);
}

#[derive(Default)]
struct Flight {
    pieces: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    /// The reader is done: deliver what is left, then close.
    ended: bool,
    /// The receiver is gone: stop reading.
    closed: bool,
}

fn deliver(mut to: TcpStream, queue: &(Mutex<Flight>, Condvar), rate: u64) {
    let pacer = Pacer::new(rate);
    let (lock, ready) = queue;
    loop {
        let (due, piece) = {
            let mut flight = lock.lock().unwrap();
            loop {
                if let Some(front) = flight.pieces.pop_front() {
                    flight.bytes -= front.1.len();
                    ready.notify_all();
                    break front;
                }
                if flight.ended {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                flight = ready.wait(flight).unwrap();
            }
        };
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        pacer.take(piece.len());
        if to.write_all(&piece).is_err() {
            lock.lock().unwrap().closed = true;
            ready.notify_all();
            return;
        }
    }
}
