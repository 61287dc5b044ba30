//! The listener: warp's filter served by hyper with the limits a public
//! server needs, which `warp::serve` does not expose.
//!
//! - at most `max_connections` connections at once; further clients wait in
//!   the kernel's accept queue (no file descriptor is spent on them), so a
//!   flood of idle connections cannot exhaust the process's descriptors and
//!   block `/healthz`;
//! - request headers must arrive within `header_timeout`, bodies within
//!   [`super::BODY_TIMEOUT`];
//! - on shutdown, requests in flight get `shutdown_deadline` to finish, then
//!   every connection is closed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warp::http::{HeaderMap, Method, Response};
use warp::hyper::Body;
use warp::Filter;

use crate::service::App;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub shutdown_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// An accepted connection holding one of the connection slots.
struct Conn {
    stream: TcpStream,
    remote: SocketAddr,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The warp filter of one connection: every request goes to [`super::respond`].
pub fn filter(
    app: Arc<App>,
    remote: Option<SocketAddr>,
) -> impl Filter<Extract = (Response<Body>,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body| {
                let app = app.clone();
                async move {
                    let incoming = super::Incoming {
                        method,
                        path: path.as_str().to_owned(),
                        query,
                        headers,
                        remote,
                        body: Box::pin(body),
                    };
                    super::respond(&app, incoming).await
                }
            },
        )
}

/// Serves `app` on `listener` until `shutdown` completes, then for at most
/// the shutdown deadline.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let incoming =
        futures_util::stream::unfold((listener, slots), |(listener, slots)| async move {
            let slot = slots.clone().acquire_owned().await.ok()?;
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        let conn = Conn {
                            stream,
                            remote,
                            _slot: slot,
                        };
                        return Some((Ok::<_, std::io::Error>(conn), (listener, slots)));
                    }
                    Err(e) => {
                        // Out of descriptors or memory: wait, never give up listening.
                        tracing::warn!(error = %e, "accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    let make = warp::hyper::service::make_service_fn(move |conn: &Conn| {
        let svc = warp::service(filter(app.clone(), Some(conn.remote)));
        async move { Ok::<_, Infallible>(svc) }
    });
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let server = hyper::Server::builder(hyper::server::accept::from_stream(incoming))
        .http1_header_read_timeout(limits.header_timeout)
        .serve(make)
        .with_graceful_shutdown(signal);
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(limits.shutdown_deadline).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r?,
        _ = deadline => tracing::warn!(
            seconds = limits.shutdown_deadline.as_secs(),
            "requests still in flight at the shutdown deadline were cut off"
        ),
    }
    Ok(())
}
