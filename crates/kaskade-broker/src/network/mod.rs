//! The network layer: listeners, one task per connection, request frames.
//!
//! ```ignore
//! let broker = Arc::new(Broker::new(config, topics, cluster_id, advertised));
//! let listeners = network::bind_config(&broker.config).await?;
//! for l in &listeners { println!("listening on {}", l.local_addr()); }
//! let (trigger, signal) = network::shutdown_channel();
//! let server = tokio::spawn(network::serve(broker, listeners, signal));
//! // ...
//! trigger.shutdown();
//! server.await?;
//! ```

use tokio::sync::watch;

pub mod connection;
pub mod controller;
pub mod fetch_frame;
pub mod frame;
pub mod listener;
pub mod outgoing;
pub mod socket_options;

pub use listener::{bind, bind_config, serve, BoundListener};

/// Tells the network layer to stop: stop accepting, let connections finish
/// the requests in flight, then return.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Starts the shutdown. Idempotent.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// Observes a [`ShutdownTrigger`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Waits until the shutdown starts. If the trigger is dropped without
    /// being used, this never returns.
    pub async fn wait(&mut self) {
        loop {
            if *self.0.borrow_and_update() {
                return;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether the shutdown has started.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }
}

/// A trigger and its signal.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn shutdown_signal() {
        let (trigger, mut signal) = shutdown_channel();
        assert!(!signal.is_shutdown());
        let mut waiting = signal.clone();
        let waiter = tokio::spawn(async move { waiting.wait().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        trigger.shutdown();
        waiter.await.unwrap();
        signal.wait().await;
        assert!(signal.is_shutdown());
        // A late clone sees it too.
        let mut late = signal.clone();
        late.wait().await;

        let (dropped, signal) = shutdown_channel();
        drop(dropped);
        let mut s = signal.clone();
        assert!(tokio::time::timeout(Duration::from_millis(20), s.wait()).await.is_err());
    }
}
