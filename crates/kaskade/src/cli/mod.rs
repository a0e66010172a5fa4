//! The client subcommands of `kaskade`: `topic`, `produce`, `consume`, `group`,
//! `txn`, `cluster`.
//! They speak only the standard Kafka protocol (versions negotiated with
//! ApiVersions), so they work against Kaskade and Apache Kafka alike.

pub mod cluster;
pub mod consume;
pub mod group;
pub mod hints;
pub mod output;
pub mod produce;
pub mod topic;
pub mod txn;

use clap::Subcommand;

use kaskade_client::Client;

/// Client commands; `main` flattens these next to `serve`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create, list, describe, alter and delete topics.
    Topic(topic::TopicArgs),
    /// Produce one record per line of standard input.
    Produce(produce::ProduceArgs),
    /// Print records from a topic (--group G: as a member of consumer group G).
    Consume(consume::ConsumeArgs),
    /// List, describe (offsets and lag), reset offsets of, and delete consumer groups.
    Group(group::GroupArgs),
    /// List and describe transactions (transactional ids).
    Txn(txn::TxnArgs),
    /// The controller quorum (status) and the brokers (brokers) of the cluster.
    Cluster(cluster::ClusterArgs),
}

/// Run a client command against `bootstrap` (`host:port[,host:port...]`).
/// Errors are printed to stderr here, Kafka error code name and hint
/// included; the result is the process exit code (0 ok, 1 failed).
pub async fn run(cmd: ClientCommand, bootstrap: &str) -> anyhow::Result<i32> {
    let result = async {
        let client = Client::new(bootstrap)?;
        match cmd {
            ClientCommand::Topic(args) => topic::run(args, &client).await,
            ClientCommand::Produce(args) => produce::run(args, &client).await,
            ClientCommand::Consume(args) => consume::run(args, &client).await,
            ClientCommand::Group(args) => group::run(args, &client).await,
            ClientCommand::Txn(args) => txn::run(args, &client).await,
            ClientCommand::Cluster(args) => cluster::run(args, &client).await,
        }
    }
    .await;
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {}", hints::report(e));
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The shape main.rs gives these commands.
    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, global = true, env = "KASKADE_BOOTSTRAP", default_value = "localhost:9092")]
        bootstrap_server: String,
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kaskade").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn topic_create() {
        let cli = parse(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact",
            "--if-not-exists",
            "--output",
            "json",
            "--bootstrap-server",
            "h:1",
        ])
        .unwrap();
        assert_eq!(cli.bootstrap_server, "h:1");
        let ClientCommand::Topic(t) = cli.command else { panic!() };
        assert_eq!(t.output, output::OutputFormat::Json);
        match t.command {
            topic::TopicCommand::Create { name, partitions, replication_factor, config, if_not_exists } => {
                assert_eq!(name, "orders");
                assert_eq!(partitions, Some(3));
                assert_eq!(replication_factor, Some(1));
                assert_eq!(
                    config,
                    vec![("retention.ms".into(), "1000".into()), ("cleanup.policy".into(), "compact".into())]
                );
                assert!(if_not_exists);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["topic", "create", "x", "--partitions", "0"]).is_err());
        assert!(parse(&["topic", "create", "x", "--config", "novalue"]).is_err());
    }

    #[test]
    fn topic_other_commands() {
        let cli = parse(&["topic", "--output", "json", "list", "--internal"]).unwrap();
        let ClientCommand::Topic(t) = cli.command else { panic!() };
        assert_eq!(t.output, output::OutputFormat::Json);
        assert!(matches!(t.command, topic::TopicCommand::List { internal: true }));

        let cli = parse(&["topic", "describe"]).unwrap();
        let ClientCommand::Topic(t) = cli.command else { panic!() };
        assert_eq!(t.output, output::OutputFormat::Table);
        assert!(matches!(t.command, topic::TopicCommand::Describe { ref names } if names.is_empty()));

        let cli = parse(&["topic", "delete", "a", "--if-exists"]).unwrap();
        let ClientCommand::Topic(t) = cli.command else { panic!() };
        assert!(matches!(t.command, topic::TopicCommand::Delete { ref names, if_exists: true } if names == &["a"]));
        assert!(parse(&["topic", "delete"]).is_err());

        let cli =
            parse(&["topic", "alter", "a", "--partitions", "6", "--config", "k=v", "--delete-config", "d"]).unwrap();
        let ClientCommand::Topic(t) = cli.command else { panic!() };
        match t.command {
            topic::TopicCommand::Alter { name, partitions, config, delete_config } => {
                assert_eq!((name.as_str(), partitions), ("a", Some(6)));
                assert_eq!(config, vec![("k".into(), "v".into())]);
                assert_eq!(delete_config, vec!["d".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn produce_args() {
        let cli = parse(&["produce", "t"]).unwrap();
        let ClientCommand::Produce(p) = cli.command else { panic!() };
        assert_eq!(p.acks, -1);
        assert_eq!(p.compression, produce::CompressionArg::None);
        assert_eq!(p.partition, None);
        assert!(p.key_separator.is_none());

        let cli = parse(&[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--header",
            "a=1",
            "--header",
            "b=2",
            "--partition",
            "2",
            "--acks",
            "1",
            "--compression",
            "zstd",
            "--batch-size",
            "100",
            "--linger-ms",
            "0",
        ])
        .unwrap();
        let ClientCommand::Produce(p) = cli.command else { panic!() };
        assert_eq!(p.key_separator.as_deref(), Some(":"));
        assert_eq!(p.headers.len(), 2);
        assert_eq!(p.partition, Some(2));
        assert_eq!(p.acks, 1);
        assert_eq!(p.compression, produce::CompressionArg::Zstd);
        assert_eq!(p.batch_size, 100);
        assert!(parse(&["produce", "t", "--acks", "2"]).is_err());
        assert!(parse(&["produce", "t", "--compression", "brotli"]).is_err());
    }

    #[test]
    fn consume_args() {
        let cli = parse(&["consume", "t"]).unwrap();
        let ClientCommand::Consume(c) = cli.command else { panic!() };
        assert!(!c.from_beginning && c.offset.is_none() && c.max_messages.is_none() && c.timeout_ms.is_none());
        assert_eq!(c.format, consume::RecordOutput::Text);

        let cli = parse(&[
            "consume",
            "t",
            "--offset",
            "5",
            "--partition",
            "1",
            "--max-messages",
            "10",
            "--timeout-ms",
            "1000",
            "--print-key",
            "--print-headers",
            "--print-timestamp",
            "--print-partition",
            "--print-offset",
            "--format",
            "json",
        ])
        .unwrap();
        let ClientCommand::Consume(c) = cli.command else { panic!() };
        assert_eq!(c.offset, Some(consume::StartOffset::At(5)));
        assert_eq!((c.partition, c.max_messages, c.timeout_ms), (Some(1), Some(10), Some(1000)));
        assert!(c.print_key && c.print_headers && c.print_timestamp && c.print_partition && c.print_offset);
        assert_eq!(c.format, consume::RecordOutput::Json);

        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "latest"]).is_err());
        assert!(parse(&["consume", "t", "--offset", "-1"]).is_err());
        assert!(parse(&["consume", "t", "--group", "g", "--partition", "1"]).is_err());
        let cli = parse(&["consume", "t", "--group", "g", "--from-beginning"]).unwrap();
        let ClientCommand::Consume(c) = cli.command else { panic!() };
        assert_eq!(c.group.as_deref(), Some("g"));

        let cli = parse(&["group", "reset-offsets", "g", "--topic", "t", "--shift-by", "-3"]).unwrap();
        let ClientCommand::Group(g) = cli.command else { panic!() };
        assert!(matches!(g.command, group::GroupCommand::ResetOffsets { shift_by: Some(-3), execute: false, .. }));
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t"]).is_err());
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"]).is_err());
        assert!(parse(&["group", "describe"]).is_err());
    }

    #[test]
    fn isolation_and_txn_args() {
        let cli = parse(&["consume", "t"]).unwrap();
        let ClientCommand::Consume(c) = cli.command else { panic!() };
        assert_eq!(c.isolation, consume::Isolation::ReadUncommitted);
        for name in ["read_committed", "read-committed"] {
            let cli = parse(&["consume", "t", "--isolation", name]).unwrap();
            let ClientCommand::Consume(c) = cli.command else { panic!() };
            assert_eq!(c.isolation, consume::Isolation::ReadCommitted);
            assert_eq!(c.isolation.level(), 1);
        }
        assert!(parse(&["consume", "t", "--isolation", "serializable"]).is_err());

        let cli = parse(&["txn", "list", "--state", "Ongoing", "--state", "CompleteAbort", "-o", "json"]).unwrap();
        let ClientCommand::Txn(t) = cli.command else { panic!() };
        assert_eq!(t.output, output::OutputFormat::Json);
        assert!(matches!(t.command, txn::TxnCommand::List { ref states } if states == &["Ongoing", "CompleteAbort"]));
        let cli = parse(&["txn", "describe", "tx-1"]).unwrap();
        let ClientCommand::Txn(t) = cli.command else { panic!() };
        assert!(matches!(t.command, txn::TxnCommand::Describe { ref transactional_id } if transactional_id == "tx-1"));
        assert!(parse(&["txn", "describe"]).is_err());
        assert!(parse(&["txn"]).is_err());
    }

    #[test]
    fn cluster_args() {
        let cli = parse(&["cluster", "status"]).unwrap();
        let ClientCommand::Cluster(c) = cli.command else { panic!() };
        assert!(matches!(c.command, cluster::ClusterCommand::Status));
        assert_eq!(c.output, output::OutputFormat::Table);
        let cli = parse(&["cluster", "brokers", "-o", "json"]).unwrap();
        let ClientCommand::Cluster(c) = cli.command else { panic!() };
        assert!(matches!(c.command, cluster::ClusterCommand::Brokers));
        assert_eq!(c.output, output::OutputFormat::Json);
        assert!(parse(&["cluster"]).is_err());
        assert!(parse(&["cluster", "nodes"]).is_err());
    }
}
