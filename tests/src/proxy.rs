//! A TCP proxy in user space that a test cuts and heals: the kernel here has no `netem`, so traffic
//! between regions goes through one of these. A cut closes every open connection and drops new ones
//! at once (a reset link); a heal lets new connections through again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One proxied link: connections to `address` reach `target` while the link is up.
pub struct Proxy {
    pub address: String,
    pub target: String,
    cut: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: &str) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (link_cut, link_cuts, to) = (cut.clone(), cuts.subscribe(), target.to_string());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if link_cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (to, mut cuts) = (to.clone(), link_cuts.clone());
                // Only cuts from now on close this connection.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&to).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Ok(Proxy { address, target: target.into(), cut, cuts, task })
    }

    /// Cuts the link: open connections close, new ones are dropped.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Heals the link.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
