//! A TCP proxy in front of a registry that counts the bytes on the wire each way, and can cap
//! their rate: the way to show how much a rerun sent, or to make one blob's upload last
//! longer than a token. Counts everything, headers included, so assertions need a little slack.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub struct CountingProxy {
    port: u16,
    counters: Arc<Counters>,
}

/// How long a lingering proxy takes to deliver what it had buffered from a client that died.
const LINGER: Duration = Duration::from_millis(1500);
/// What it buffers from a client: 16 MiB, in reads of up to 64 KiB.
const LINGER_PIECES: usize = 256;

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    /// Bumped by `reset`: only connections opened since count.
    generation: AtomicU64,
    stopped: AtomicBool,
    /// When the capped link is next free: each write books its share of time after it.
    link_free_at: std::sync::Mutex<Option<Instant>>,
}

impl Counters {
    /// Counts `n` bytes one way for a connection opened in `generation`.
    fn count(&self, up: bool, generation: u64, n: u64) {
        if generation == self.generation.load(Ordering::SeqCst) {
            let counter = if up { &self.up } else { &self.down };
            counter.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// Waits until `bytes` may pass at `rate` bytes/s, all connections sharing the rate.
    fn pace(&self, bytes: u64, rate: u64) {
        let until = {
            let mut free_at = self.link_free_at.lock().unwrap();
            let start = free_at.map_or(Instant::now(), |t| t.max(Instant::now()));
            let until = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            *free_at = Some(until);
            until
        };
        if let Some(wait) = until.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}

impl CountingProxy {
    /// Forwards connections on a free localhost port to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Self {
        Self::start_throttled(upstream, None)
    }

    /// The same, with client-to-upstream bytes held to about `bytes_per_sec` over all
    /// connections together.
    pub fn start_throttled(upstream: &str, bytes_per_sec: Option<u64>) -> Self {
        Self::start_with(upstream, bytes_per_sec, false)
    }

    /// A proxy that buffers up to 16 MiB from each client and, when a client dies, goes on
    /// delivering what it buffered for about 1.5 s before it closes the registry's side, as
    /// a load balancer in front of a registry may: a rerun started at once meets an upload
    /// that is still growing.
    pub fn start_lingering(upstream: &str) -> Self {
        Self::start_with(upstream, None, true)
    }

    fn start_with(upstream: &str, bytes_per_sec: Option<u64>, linger: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let counters = Arc::new(Counters::default());
        let (upstream, shared) = (upstream.to_string(), counters.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, shared) = (upstream.clone(), shared.clone());
                thread::spawn(move || serve(client, &upstream, shared, bytes_per_sec, linger));
            }
        });
        Self { port, counters }
    }

    /// `127.0.0.1:PORT`, to use in image references instead of the registry's own.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes sent by clients towards the registry (requests and upload bodies).
    pub fn bytes_up(&self) -> u64 {
        self.counters.up.load(Ordering::SeqCst)
    }

    /// Bytes sent by the registry back to clients.
    pub fn bytes_down(&self) -> u64 {
        self.counters.down.load(Ordering::SeqCst)
    }

    /// Waits until at least `bytes` went towards the registry, while `child` runs.
    pub fn wait_for_bytes_up(&self, bytes: u64, child: &mut std::process::Child) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.bytes_up() < bytes {
            let ended = child.try_wait().expect("child status");
            assert!(
                ended.is_none(),
                "the child ended before {bytes} bytes were sent"
            );
            assert!(Instant::now() < deadline, "no progress through the proxy");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The count towards the registry once what a killed client left in socket buffers has
    /// drained through.
    pub fn settled_bytes_up(&self) -> u64 {
        loop {
            let seen = self.bytes_up();
            thread::sleep(Duration::from_millis(300));
            if self.bytes_up() == seen {
                return seen;
            }
        }
    }

    /// Starts counting again from zero, for connections opened from now on only: bytes a
    /// killed client left in flight do not count towards the next run.
    pub fn reset(&self) {
        self.counters.generation.fetch_add(1, Ordering::SeqCst);
        self.counters.up.store(0, Ordering::SeqCst);
        self.counters.down.store(0, Ordering::SeqCst);
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.counters.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: a thread each way. A registry that is down closes the client's connection
/// at once, as a refused connection would fail it.
fn serve(
    client: TcpStream,
    upstream: &str,
    counters: Arc<Counters>,
    rate: Option<u64>,
    linger: bool,
) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let down = {
        let counters = counters.clone();
        thread::spawn(move || pump(server_read, client, &counters, false, None))
    };
    match linger {
        true => pump_lingering(client_read, server, &counters),
        false => pump(client_read, server, &counters, true, rate),
    }
    let _ = down.join();
}

/// Client to registry through a buffer; once the client is gone, what is left in the buffer
/// still goes to the registry, spread over [`LINGER`].
fn pump_lingering(mut from: TcpStream, to: TcpStream, counters: &Counters) {
    let generation = counters.generation.load(Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(LINGER_PIECES);
    let gone = Arc::new(AtomicBool::new(false));
    let writer = {
        let gone = gone.clone();
        let Ok(mut to_w) = to.try_clone() else { return };
        thread::spawn(move || {
            for piece in rx {
                if gone.load(Ordering::SeqCst) {
                    thread::sleep(LINGER / LINGER_PIECES as u32);
                }
                if to_w.write_all(&piece).is_err() {
                    break;
                }
            }
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tx.send(buf[..n].to_vec()).is_err() {
            break;
        }
        counters.count(true, generation, n as u64);
    }
    gone.store(true, Ordering::SeqCst);
    drop(tx);
    let _ = writer.join();
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

fn pump(mut from: TcpStream, mut to: TcpStream, counters: &Counters, up: bool, rate: Option<u64>) {
    let generation = counters.generation.load(Ordering::SeqCst);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        counters.count(up, generation, n as u64);
        if let Some(rate) = rate {
            counters.pace(n as u64, rate);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
