//! Errors as the server answers them: JSON `{error, error_type}` with TEI's status codes and
//! error types (400 `empty` / `validation`, 413 `validation` for a payload or batch too large,
//! 422 `validation` / `tokenizer` for input too long or not tokenizable, 429 `overloaded`,
//! 503 `unhealthy`, 500 `backend`), plus 404 / 405 / 408 / 504 for the HTTP cases TEI leaves
//! out.

use crate::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    error: &'a str,
    error_type: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
        }
    }
    /// 400: the request is malformed (bad JSON, a wrong type, an unknown option value).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation", message)
    }
    /// 400: nothing to work on (no inputs, an empty text or prompt).
    pub fn empty(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "empty", message)
    }
    /// 413: the body or the batch is larger than the server accepts.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "validation", message)
    }
    /// 422: an input is too long for the model.
    pub fn too_long(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }
    /// 429: the queue is full.
    pub fn overloaded(limit: usize) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            format!(
                "model is overloaded: {limit} requests are already queued or running \
                 (--max-concurrent-requests); retry later"
            ),
        )
    }
    /// 503: the models are still loading (or the server is shutting down).
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", message)
    }
    /// 404: a route or model this server does not have.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 504: the request ran longer than `--request-timeout`.
    pub fn timeout(secs: f64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than the server's limit of {secs} s (--request-timeout)"
            ),
        )
    }
    /// The body as sent.
    pub fn json(&self) -> String {
        serde_json::to_string(&Body {
            error: &self.message,
            error_type: self.error_type,
        })
        .expect("strings serialise")
    }
}

impl From<Error> for ApiError {
    /// A library error: what the caller sent is wrong (400 / 422) or the backend failed (500).
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Tokenizer(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "tokenizer", msg),
            // The model's template refused or failed on the conversation the client sent.
            Error::ChatTemplate { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "chat_template", msg)
            }
            Error::InvalidArgument(m) if m.contains("longer than") || m.contains("exceeds") => {
                Self::too_long(msg)
            }
            Error::InvalidArgument(m) if m.contains("empty") || m.contains("no tokens") => {
                Self::empty(msg)
            }
            Error::InvalidArgument(_) | Error::Image { .. } => Self::bad_request(msg),
            Error::Limit { .. } => Self::too_large(msg),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({
            "error": self.message,
            "error_type": self.error_type,
        }));
        (self.status, body).into_response()
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
