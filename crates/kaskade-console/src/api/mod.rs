//! The console's JSON API, one module per page.

pub mod groups;
pub mod messages;
pub mod overview;
pub mod topics;
pub mod transactions;

use std::sync::Arc;

use axum::http::Uri;

use crate::error::ConsoleError;
use crate::Console;

/// The handlers' shared state.
pub type State = axum::extract::State<Arc<Console>>;

/// Unknown paths: 404 with a JSON body naming the path.
pub async fn not_found(uri: Uri) -> ConsoleError {
    ConsoleError::NotFound(format!("no such path: {}", uri.path()))
}
