//! grpc-web for browsers beside plain gRPC, the web page's GETs, and the stamp of each
//! request's arrival: the first of our layers.

use std::future::Future;
use std::pin::Pin;

use super::Pages;

/// When a request reached our first layer, in its extensions: tonic's server starts the
/// client's `grpc-timeout` at the same moment, so a deadline of ours counted from here
/// ends no later than tonic's (the gateway's upstream deadline does).
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub tokio::time::Instant);

fn is_grpc_web<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc-web"))
}

/// grpc-web for browsers, without tonic-web's refusal of every other HTTP/1.1 request:
/// plain HTTP/1.1 (the auth service's JWKS) goes straight to the routes, and GET/HEAD to
/// the web page when there is one. Also stamps each request with its [`Arrival`]; every
/// grpc-web answer carries `Cache-Control: no-store`.
#[derive(Clone)]
pub struct WebLayer {
    pages: Option<Pages>,
}

impl WebLayer {
    pub fn new(pages: Option<Pages>) -> Self {
        Self { pages }
    }
}

impl<S: Clone> tower::Layer<S> for WebLayer {
    type Service = Web<S>;
    fn layer(&self, inner: S) -> Web<S> {
        Web {
            web: tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), inner.clone()),
            plain: inner,
            pages: self.pages.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Web<S> {
    web: tonic_web::GrpcWebService<S>,
    plain: S,
    pages: Option<Pages>,
}

type Body = tonic::body::Body;

impl<S> tower::Service<http::Request<Body>> for Web<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // A page for a browser's GET; a grpc-web GET goes on to tonic-web (which refuses it).
        if let Some(pages) = &self.pages
            && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            && !is_grpc_web(&req)
        {
            let page = pages(&req);
            return Box::pin(std::future::ready(Ok(page)));
        }
        req.extensions_mut().insert(Arrival(tokio::time::Instant::now()));
        let grpc_web = is_grpc_web(&req);
        let preflight = req.method() == http::Method::OPTIONS;
        if req.version() == http::Version::HTTP_2 || grpc_web || preflight {
            let web = self.web.clone();
            Box::pin(async move {
                let mut res = tower::ServiceExt::<http::Request<Body>>::oneshot(web, req).await?;
                if grpc_web {
                    // An answer is one caller's (their page, their wallet): no cache, the
                    // browser's or one between, may keep it for anyone to read again.
                    res.headers_mut()
                        .entry(http::header::CACHE_CONTROL)
                        .or_insert(http::HeaderValue::from_static("no-store"));
                }
                Ok(res)
            })
        } else {
            let clone = self.plain.clone();
            let mut plain = std::mem::replace(&mut self.plain, clone);
            Box::pin(async move { plain.call(req).await })
        }
    }
}
