//! `payplane dlq list|replay|purge --queue <queue>` (events.md §6.4): inspect and move dead
//! letters of a consumer queue after a fix. Talks to RabbitMQ at `AMQP_URL`.

use clap::{Args, Subcommand};
use payplane_bus::dlq::{self, DlqMessage};
use payplane_kit::config::Env;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Show parked messages without removing them.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move parked messages back to the consumer queue (only that consumer sees them again).
    Replay {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        message_id: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only list what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete parked messages.
    Purge {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        message_id: Option<String>,
        /// Required: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct Target {
    /// Consumer queue whose `<queue>.dlq` to work on (admin.events, payments.events, profile.events).
    #[arg(long)]
    queue: String,
}

fn print(messages: &[DlqMessage]) {
    for m in messages {
        println!(
            "{}  {}  {}  {}  {}",
            m.message_id.as_deref().unwrap_or("-"),
            m.routing_key.as_deref().unwrap_or("-"),
            m.failure_class.as_deref().unwrap_or("-"),
            m.failed_at.as_deref().unwrap_or("-"),
            m.failure_reason.as_deref().unwrap_or("-"),
        );
    }
}

pub async fn run(cmd: DlqCommand) -> anyhow::Result<()> {
    let url = Env::from_process().string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let conn = payplane_bus::conn::connect(&url, "payplane-cli-dlq").await?;
    let channel = conn.create_channel().await?;
    match cmd {
        DlqCommand::List { target, limit } => {
            let messages = dlq::list(&channel, &target.queue, limit).await?;
            print(&messages);
            println!(
                "{} message(s) in {}.dlq shown",
                messages.len(),
                target.queue
            );
        }
        DlqCommand::Replay {
            target,
            message_id,
            limit,
            dry_run,
        } => {
            let messages = dlq::replay(
                &channel,
                &target.queue,
                message_id.as_deref(),
                limit,
                dry_run,
            )
            .await?;
            print(&messages);
            let verb = if dry_run { "would replay" } else { "replayed" };
            println!("{verb} {} message(s) to {}", messages.len(), target.queue);
        }
        DlqCommand::Purge {
            target,
            message_id,
            yes,
        } => {
            if !yes {
                anyhow::bail!("purge deletes messages for good; add --yes");
            }
            let n = dlq::purge(&channel, &target.queue, message_id.as_deref()).await?;
            println!("purged {n} message(s) from {}.dlq", target.queue);
        }
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}
