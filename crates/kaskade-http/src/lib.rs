//! Kaskade's HTTP listener, beside the Kafka listeners of `kaskade serve`.
//!
//! It serves `/health` (the process is alive: always 200), `/ready` (the
//! node serves Kafka clients: 200, else 503), `/metrics` (Prometheus' text
//! exposition format, rendered by a [`Probe`]) and, once mounted with
//! [`HttpServer::mount`], the routes of another router (the web console).
//! Everything else is 404.
//!
//! The listener starts before the broker has loaded its logs, so that
//! orchestrators see a live but not ready node during a long recovery; the
//! console's router, which needs the running broker, is mounted afterwards.
//!
//! Invariants: at most [`HttpLimits::max_connections`] connections are open
//! (further ones wait in the kernel's accept queue); a request body larger
//! than [`HttpLimits::max_request_bytes`] gets 413 before it is read;
//! rendering metrics runs on a blocking thread, never on an async worker.

mod limited;
mod probe;
mod server;

pub use probe::Probe;
pub use server::{AlreadyMounted, HttpError, HttpLimits, HttpServer};
