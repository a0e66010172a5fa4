//! Kaskade's built-in web console: static pages embedded in the binary and
//! a JSON API under `/api/`, mounted on the HTTP listener by [`router`].
//!
//! The pages are hand-written HTML, CSS and JavaScript modules
//! (`assets/`, embedded with `include_str!`): building needs no Node.js and
//! the browser loads nothing from elsewhere. The API answers from Kafka APIs
//! the broker handles in process ([`kafka`]), so what it shows is the
//! cluster's metadata and coordinators' view, with Kafka's error codes and
//! messages when the broker refuses; a background task samples throughput
//! and consumer lag into small ring buffers ([`history`]).

pub mod api;
pub mod assets;
pub mod error;
pub mod history;
pub mod kafka;
pub mod records;
pub mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post, put};
use kaskade_broker::Broker;

/// How the console runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time between throughput and lag samples.
    pub sample_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { sample_interval: Duration::from_secs(5) }
    }
}

/// What every console handler reaches.
#[derive(Debug)]
pub struct Console {
    pub kafka: kafka::Kafka,
    pub history: Arc<history::History>,
    /// When this node's console started (the node's uptime).
    pub started: Instant,
    pub options: Options,
}

/// The console's routes: `/` and `/assets/*` (the pages), `/api/*` (JSON).
/// Starts the sampler, which stops when the broker shuts down; must be
/// called inside a Tokio runtime.
pub fn router(broker: Arc<Broker>) -> axum::Router {
    router_with(broker, Options::default())
}

/// [`router`] with explicit options.
pub fn router_with(broker: Arc<Broker>, options: Options) -> axum::Router {
    let kafka = kafka::Kafka::new(broker);
    let history = Arc::new(history::History::default());
    tokio::spawn(history::run(kafka.clone(), history.clone(), options.sample_interval));
    let console = Arc::new(Console { kafka, history, started: Instant::now(), options });
    axum::Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*file}", get(assets::asset))
        .route("/api/overview", get(api::overview::get))
        .route("/api/topics", get(api::topics::list).post(api::topics::create))
        .route("/api/topics/{topic}", get(api::topics::describe).delete(api::topics::delete))
        .route("/api/topics/{topic}/configs", put(api::topics::alter_configs))
        .route("/api/topics/{topic}/messages", get(api::messages::browse).post(api::messages::produce))
        .route("/api/groups", get(api::groups::list))
        .route("/api/groups/{group}", get(api::groups::describe))
        .route("/api/groups/{group}/reset", post(api::groups::reset))
        .route("/api/transactions", get(api::transactions::list))
        .fallback(api::not_found)
        .with_state(console)
}
