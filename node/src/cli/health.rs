//! `tern health URL`: a container's health check. An image built `FROM scratch` has no shell and no
//! curl, so the binary checks itself: an HTTP GET of a role's metrics endpoint, exit 0 on a 2xx answer.

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The URL to ask, e.g. `http://127.0.0.1:9101/metrics` (a node's, cache's or replicator's metrics).
    pub url: hyper::Uri,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

/// Asks the URL once; an error unless it answers 2xx in time.
pub async fn check(args: &HealthArgs) -> anyhow::Result<()> {
    let ask = async {
        let authority = args.url.authority().context("the URL needs a host and port")?.clone();
        let stream = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::get(args.url.clone())
            .header(hyper::header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        if !response.status().is_success() {
            bail!("{} answered {}", args.url, response.status());
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_millis(args.timeout_ms), ask)
        .await
        .with_context(|| format!("{} did not answer within {} ms", args.url, args.timeout_ms))?
}
