//! `kaskade txn ...`: list transactional ids and describe one, with the
//! columns of Kafka's `kafka-transactions.sh list` and `describe`.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::{print_json, write_stdout, OutputFormat, Table};
use kaskade_client::txn::{self, TransactionDescription};
use kaskade_client::Client;
use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: TxnCommand,
}

#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// List transactional ids: coordinator, producer id, state.
    List {
        /// Only transactions in this state (repeatable): Empty, Ongoing,
        /// PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort,
        /// PrepareEpochFence.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
    },
    /// Describe a transactional id: producer id and epoch, state, timeout,
    /// start and duration of the open transaction, its partitions.
    Describe {
        /// Transactional id.
        transactional_id: String,
    },
}

pub async fn run(args: TxnArgs, client: &Client) -> Result<i32> {
    match args.command {
        TxnCommand::List { states } => list(client, args.output, &states).await,
        TxnCommand::Describe { transactional_id } => describe(client, args.output, &transactional_id).await,
    }
}

async fn list(client: &Client, out: OutputFormat, states: &[String]) -> Result<i32> {
    let listed = txn::list_transactions(client, states).await?;
    match out {
        OutputFormat::Table => {
            let mut t = Table::new(["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]);
            for l in &listed {
                t.row([
                    l.transactional_id.clone(),
                    l.coordinator.to_string(),
                    wire_pid(l.producer_id).to_string(),
                    l.state.clone(),
                ]);
            }
            write_stdout(&t.render());
        }
        OutputFormat::Json => print_json(&Value::Array(
            listed
                .iter()
                .map(|l| {
                    json!({
                        "transactional_id": l.transactional_id,
                        "coordinator": l.coordinator.get(),
                        "producer_id": wire_pid(l.producer_id),
                        "state": l.state,
                    })
                })
                .collect(),
        )),
    }
    Ok(0)
}

/// A producer id as Kafka's tools print it: -1 for none.
fn wire_pid(id: Option<ProducerId>) -> i64 {
    id.map_or(-1, ProducerId::get)
}

/// A producer epoch as Kafka's tools print it: -1 for none.
fn wire_epoch(epoch: Option<ProducerEpoch>) -> i16 {
    epoch.map_or(-1, ProducerEpoch::get)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Kafka's `TopicPartition.toString`, comma-joined: `t-0,t-1`.
fn topic_partitions(d: &TransactionDescription) -> String {
    d.partitions.iter().map(TopicPartition::to_string).collect::<Vec<_>>().join(",")
}

/// The describe table, with `now` for the duration.
fn describe_table(d: &TransactionDescription, now: i64) -> String {
    let mut t = Table::new([
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]);
    let (start, duration) = match d.start_ms {
        Some(s) => (s.to_string(), (now - s).max(0).to_string()),
        None => ("None".to_string(), "None".to_string()),
    };
    t.row([
        d.coordinator.to_string(),
        d.transactional_id.clone(),
        wire_pid(d.producer_id).to_string(),
        wire_epoch(d.producer_epoch).to_string(),
        d.state.clone(),
        d.timeout_ms.to_string(),
        start,
        duration,
        topic_partitions(d),
    ]);
    t.render()
}

async fn describe(client: &Client, out: OutputFormat, id: &str) -> Result<i32> {
    let d = txn::describe_transaction(client, id).await?;
    let now = now_ms();
    match out {
        OutputFormat::Table => {
            write_stdout(&describe_table(&d, now));
        }
        OutputFormat::Json => print_json(&json!({
            "coordinator": d.coordinator.get(),
            "transactional_id": d.transactional_id,
            "producer_id": wire_pid(d.producer_id),
            "producer_epoch": wire_epoch(d.producer_epoch),
            "state": d.state,
            "timeout_ms": d.timeout_ms,
            "start_ms": d.start_ms,
            "duration_ms": d.start_ms.map(|s| (now - s).max(0)),
            "partitions": d.partitions.iter().map(|tp| json!({"topic": &*tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
        })),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_types::NodeId;

    #[test]
    fn describe_columns_as_kafka_transactions_sh() {
        let mut d = TransactionDescription {
            coordinator: NodeId(1),
            transactional_id: "tx".into(),
            producer_id: Some(ProducerId(1000)),
            producer_epoch: Some(ProducerEpoch(2)),
            state: "Ongoing".into(),
            timeout_ms: 60_000,
            start_ms: Some(5_000),
            partitions: vec![TopicPartition::new("a", 0), TopicPartition::new("a", 1), TopicPartition::new("b", 3)],
        };
        let s = describe_table(&d, 7_500);
        let lines: Vec<Vec<&str>> = s.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0][0], "CoordinatorId");
        assert_eq!(lines[0][8], "TopicPartitions");
        assert_eq!(lines[1], ["1", "tx", "1000", "2", "Ongoing", "60000", "5000", "2500", "a-0,a-1,b-3"]);
        d.start_ms = None;
        d.partitions.clear();
        d.state = "CompleteCommit".into();
        let s = describe_table(&d, 7_500);
        let row: Vec<&str> = s.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, ["1", "tx", "1000", "2", "CompleteCommit", "60000", "None", "None"]);
    }
}
