//! TLS in front of one of the harness's plain-HTTP servers (Hub, Model Registry): it accepts
//! TLS on a port of its own and copies each connection's bytes to the server and back,
//! 8 KiB at a time each way (tokio's copy buffers), so nothing is held beyond that.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

pub struct TlsFront {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Serves TLS with `config` on a free localhost port, for the server at `backend`.
    pub fn start(backend: SocketAddr, config: Arc<rustls::ServerConfig>) -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("cannot bind the TLS front");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = oneshot::channel();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("TLS front runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                let acceptor = TlsAcceptor::from(config);
                tokio::select! {
                    _ = stopped => {}
                    _ = accept_loop(listener, acceptor, backend) => {}
                }
            });
        });
        Self {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, backend: SocketAddr) {
    while let Ok((client, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends its own handshake: nothing to do.
            let Ok(mut client) = acceptor.accept(client).await else {
                return;
            };
            if let Ok(mut server) = TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
