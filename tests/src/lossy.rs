//! An HTTP/2 proxy in front of one node that loses replies: it forwards every gRPC call, and of the
//! item API's calls (`/tern.v1.Tern/…`) it never delivers one reply in `every`, though the node
//! answered, as a network losing the reply would. The caller's attempt times out and it retries a call
//! the node has already applied. Raft's and the other services' calls always get through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http_body_util::{Either, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Reply = Response<Either<Incoming, Empty<Bytes>>>;

/// The node behind the proxy is down (killed, restarting): the caller sees what it sees without a
/// proxy, an unavailable node, as gRPC's UNAVAILABLE.
fn unavailable() -> Result<Reply, std::convert::Infallible> {
    Ok(Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "14")
        .header("grpc-message", "the node behind the proxy is unreachable")
        .body(Either::Right(Empty::new()))
        .expect("a valid response"))
}

/// One node's lossy front.
pub struct LossyProxy {
    pub address: String,
    lost: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LossyProxy {
    /// Listens on a free loopback port and forwards to `target`, losing one item-API reply in `every`.
    pub async fn start(target: &str, every: u64) -> anyhow::Result<LossyProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let upstream: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).http2_only(true).build(connector);
        let (calls, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (target, counted) = (target.to_string(), lost.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (upstream, target, calls, lost) =
                    (upstream.clone(), target.clone(), calls.clone(), counted.clone());
                let service = service_fn(move |mut request: Request<Incoming>| {
                    let (upstream, calls, lost) = (upstream.clone(), calls.clone(), lost.clone());
                    let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                    let uri = format!("http://{target}{path}").parse().expect("a proxied URI");
                    *request.uri_mut() = uri;
                    async move {
                        let lose = path.starts_with("/tern.v1.Tern/")
                            && calls.fetch_add(1, Ordering::Relaxed) % every == every - 1;
                        let Ok(response) = upstream.request(request).await else {
                            return unavailable();
                        };
                        if lose {
                            // The node answered, so it applied the call; its reply never arrives.
                            lost.fetch_add(1, Ordering::Relaxed);
                            std::future::pending::<()>().await;
                        }
                        Ok(response.map(Either::Left))
                    }
                });
                tokio::spawn(http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(LossyProxy { address, lost, task })
    }

    /// Replies lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
