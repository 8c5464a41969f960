//! The HTTP side of a service's integration tests: one answer type (status, headers, the JSON
//! envelope) and one way to send a request, so every service's tests read answers alike.

use reqwest::{Client, Method, RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::Value;

/// An answer read whole: the body as text and as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Res {
    /// Sends `req` and reads the answer.
    pub async fn of(req: RequestBuilder) -> Result<Self, reqwest::Error> {
        let res = req.send().await?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Self {
            status,
            headers,
            body,
            text,
        })
    }

    /// The error envelope's `code` (empty when there is none).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The success envelope's `data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The fields the error's `details` name, in the answer's order.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Self::fields`] sorted, for answers whose order is not part of the contract.
    pub fn fields_sorted(&self) -> Vec<String> {
        let mut fields = self.fields();
        fields.sort();
        fields
    }
}

/// `method url`, with a bearer `token` and a JSON `body` when given.
pub fn request(
    http: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> RequestBuilder {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req
}

/// A test's client of one service: requests to paths under its base URL.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    pub http: Client,
    pub base_url: String,
}

impl ServiceClient {
    pub fn new(base_url: &str) -> Self {
        Self {
            http: Client::new(),
            base_url: base_url.to_owned(),
        }
    }

    /// `method path` as [`request`] makes it, read whole.
    ///
    /// # Panics
    /// When the request cannot be sent or its answer read: the test fails there.
    #[expect(
        clippy::expect_used,
        reason = "a test helper: a request that cannot be made fails the test"
    )]
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let url = format!("{}{path}", self.base_url);
        let req = request(&self.http, method, &url, token, body.as_ref());
        Res::of(req).await.expect("request")
    }
}
