//! The console's pages, embedded in the binary.
//!
//! Every file is listed here by name, so a request can only ever get one of
//! them (no file system access, no path traversal).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// (name under `/assets/`, content type, content).
const FILES: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../assets/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("lib.js", "text/javascript; charset=utf-8", include_str!("../assets/lib.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_str!("../assets/overview.js")),
    ("topics.js", "text/javascript; charset=utf-8", include_str!("../assets/topics.js")),
    ("messages.js", "text/javascript; charset=utf-8", include_str!("../assets/messages.js")),
    ("groups.js", "text/javascript; charset=utf-8", include_str!("../assets/groups.js")),
    ("transactions.js", "text/javascript; charset=utf-8", include_str!("../assets/transactions.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../assets/favicon.svg")),
];

const INDEX: &str = include_str!("../assets/index.html");

pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX).into_response()
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
