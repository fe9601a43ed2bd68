//! `flowgate notices` (change notices, 2.5: raise, list, show, answer, done, withdraw, remind),
//! `flowgate outbox` (what is waiting to be sent, and retries) and `flowgate webhooks`. Each step
//! is authorised through the Cedar policy for the person given by `--actor`, as in the API.

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Subcommand;
use flowgate_authz::{Authz, NoticeAction as Permission, RegisterAction};
use flowgate_core::notice::{self, ChangeDraft, ChangeNotice, NoticeAction, NoticeState};
use flowgate_core::register::Register;
use flowgate_core::{DataItemId, Email, SystemId};
use flowgate_store::{NoticeFilter, Store, WebhookFor, WorkflowError};
use serde_json::json;

use crate::{BadInput, Outcome, output};

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    /// Raise a change notice against a source system: every system downstream is found and its
    /// IAO and IAAs are sent an e-mail (by the server's outbox worker).
    Raise {
        /// The system that changes.
        #[arg(long)]
        system: String,
        /// What changes, in a line.
        #[arg(long)]
        summary: String,
        /// More about it.
        #[arg(long)]
        details: Option<String>,
        /// The planned date (YYYY-MM-DD).
        #[arg(long)]
        planned: NaiveDate,
        /// Urgent: it may go ahead while systems downstream are not ready (2.5).
        #[arg(long)]
        urgent: bool,
        /// Only follow first-hop flows carrying this data item (repeat for several).
        #[arg(long = "data-item")]
        data_items: Vec<String>,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// List notices, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        system: Option<String>,
        /// Only notices asking the actor for an answer.
        #[arg(long)]
        mine: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// One notice: its notice period, each affected system's answer, who has not answered.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Answer for an affected system, as its IAO or an IAA: acknowledged, ready or not_ready.
    Answer {
        id: String,
        #[arg(long)]
        system: String,
        /// acknowledged, ready or not_ready.
        #[arg(long)]
        answer: String,
        /// Required with not_ready: what is still needed.
        #[arg(long)]
        note: Option<String>,
    },
    /// Record that the change was made (refused while a system is not ready, unless urgent).
    Done {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Withdraw a notice: the change will not happen.
    Withdraw {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Messages, newest first, with the counts of pending, delivered and failed.
    List {
        /// pending, delivered or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Send a message again at once (a failed one, or one waiting out its backoff).
    Retry { id: String },
    /// Delete messages delivered more than DAYS days ago (pending and failed ones stay).
    Prune {
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register a webhook for a person or a system; its signing secret is printed once.
    Create {
        #[arg(long)]
        url: String,
        #[arg(long, conflicts_with = "system", required_unless_present = "system")]
        person: Option<String>,
        #[arg(long)]
        system: Option<String>,
    },
    /// List webhooks (never their secrets).
    List {
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Disable a webhook.
    Disable { id: String },
}

/// The actor as a person: notice steps are taken by someone in the register.
fn person(actor: &str) -> Result<Email, BadInput> {
    Email::parse(actor).map_err(|_| {
        BadInput(format!(
            "--actor: '{actor}' is not an e-mail address; notices are raised and answered by a person in the register (--actor EMAIL or FLOWGATE_ACTOR)"
        ))
    })
}

fn check(decision: flowgate_authz::Decision, what: &str, who: &Email) -> anyhow::Result<()> {
    if decision.allowed {
        Ok(())
    } else {
        Err(BadInput(format!("{who} may not {what}: {decision}")).into())
    }
}

/// A refusal from the workflow or the store as a message naming the input.
fn refused(e: WorkflowError) -> anyhow::Error {
    match e {
        WorkflowError::Store(s) => s.into(),
        other => BadInput(other.to_string()).into(),
    }
}

pub async fn notices(
    store: &Store,
    actor: &str,
    authz: &Authz,
    cmd: &NoticesCommand,
) -> anyhow::Result<Outcome> {
    let now = Utc::now();
    let reg = store.load_register().await?;
    match cmd {
        NoticesCommand::Raise {
            system,
            summary,
            details,
            planned,
            urgent,
            data_items,
            format,
        } => {
            let who = person(actor)?;
            check(
                authz.decide_register(&reg, &who, RegisterAction::RaiseNotice)?,
                "raise a change notice",
                &who,
            )?;
            let draft = ChangeDraft {
                system: SystemId::parse(system).map_err(|e| BadInput(format!("--system: {e}")))?,
                summary: summary.clone(),
                details: details.clone(),
                planned_for: *planned,
                urgent: *urgent,
                data_items: data_items
                    .iter()
                    .map(|d| {
                        DataItemId::parse(d).map_err(|e| BadInput(format!("--data-item: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            };
            let n = store
                .raise_notice(who.as_str(), now, |id| {
                    notice::raise(id, draft, &who, &reg, now)
                })
                .await
                .map_err(refused)?;
            show(&n, *format)?;
            eprintln!(
                "{} raised: {} affected systems; their owners and administrators will be e-mailed by the server",
                n.id,
                n.affected.len()
            );
        }
        NoticesCommand::List {
            state,
            system,
            mine,
            limit,
            format,
        } => {
            let filter = NoticeFilter {
                state: state
                    .as_deref()
                    .map(NoticeState::parse)
                    .transpose()
                    .map_err(|e| BadInput(format!("--state: {e}")))?,
                system: system
                    .as_deref()
                    .map(SystemId::parse)
                    .transpose()
                    .map_err(|e| BadInput(format!("--system: {e}")))?,
                concerning: if *mine { Some(person(actor)?) } else { None },
                limit: *limit,
                offset: 0,
            };
            let (list, total) = store.notices(&filter).await?;
            match format {
                output::Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"total": total, "items": list}))?
                ),
                output::Format::Text => {
                    let mut t = output::table([
                        "id",
                        "system",
                        "planned",
                        "urgent",
                        "state",
                        "affected",
                        "unanswered",
                        "summary",
                    ]);
                    for n in &list {
                        t.add_row(vec![
                            n.id.to_string(),
                            n.change.system.to_string(),
                            n.change.planned_for.to_string(),
                            if n.change.urgent { "yes" } else { "" }.into(),
                            n.state.to_string(),
                            n.affected.len().to_string(),
                            n.unanswered().count().to_string(),
                            n.change.summary.clone(),
                        ]);
                    }
                    println!("{t}");
                    eprintln!("{} of {total} notices", list.len());
                }
            }
        }
        NoticesCommand::Show { id, format } => {
            let n = store
                .notice(id)
                .await?
                .ok_or_else(|| BadInput(format!("no change notice with id '{id}'")))?;
            show(&n, *format)?;
        }
        NoticesCommand::Answer {
            id,
            system,
            answer,
            note,
        } => {
            let who = person(actor)?;
            let system = SystemId::parse(system).map_err(|e| BadInput(format!("--system: {e}")))?;
            let readiness = notice::readiness_from_answer(answer)
                .map_err(|e| BadInput(format!("--answer: {e}")))?;
            check(
                authz.decide_answer(&reg, &who, system.as_str())?,
                &format!("answer for '{system}'"),
                &who,
            )?;
            let action = NoticeAction::Answer {
                system: system.clone(),
                readiness,
                note: note.clone(),
            };
            let t = step(store, &reg, id, &who, now, &action).await?;
            eprintln!("{}: '{system}' answered {readiness}", t.id);
        }
        NoticesCommand::Done { id, note } => {
            let n = close(store, authz, &reg, id, actor, Permission::RecordDone, note).await?;
            if !n.went_ahead_while_not_ready.is_empty() {
                eprintln!(
                    "{}: recorded done; it was urgent and went ahead while these were not ready: {}",
                    n.id,
                    n.went_ahead_while_not_ready
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                eprintln!("{}: recorded done", n.id);
            }
        }
        NoticesCommand::Withdraw { id, note } => {
            let n = close(store, authz, &reg, id, actor, Permission::Withdraw, note).await?;
            eprintln!("{}: withdrawn", n.id);
        }
    }
    Ok(Outcome::Ok)
}

async fn step(
    store: &Store,
    reg: &Register,
    id: &str,
    who: &Email,
    now: chrono::DateTime<Utc>,
    action: &NoticeAction,
) -> anyhow::Result<ChangeNotice> {
    let t = store
        .notice_transition(reg, id, None, who.as_str(), now, |n, reg| {
            notice::decide(n, action, who, reg, now)
        })
        .await
        .map_err(refused)?;
    Ok(t.notice)
}

async fn close(
    store: &Store,
    authz: &Authz,
    reg: &Register,
    id: &str,
    actor: &str,
    permission: Permission,
    note: &Option<String>,
) -> anyhow::Result<ChangeNotice> {
    let who = person(actor)?;
    let current = store
        .notice(id)
        .await?
        .ok_or_else(|| BadInput(format!("no change notice with id '{id}'")))?;
    check(
        authz.decide_notice(reg, &who, permission, &current)?,
        &format!("{} change notice {id}", permission.as_str()),
        &who,
    )?;
    let action = match permission {
        Permission::Withdraw => NoticeAction::Withdraw {
            reason: note.clone(),
        },
        _ => NoticeAction::Done { note: note.clone() },
    };
    step(store, reg, id, &who, Utc::now(), &action).await
}

fn show(n: &ChangeNotice, format: output::Format) -> anyhow::Result<()> {
    if format == output::Format::Json {
        let mut v = serde_json::to_value(n)?;
        v["notice_period_days"] = json!(n.notice_period_days());
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} {}change to {} on {}: {}",
        n.id,
        if n.change.urgent { "URGENT " } else { "" },
        n.change.system,
        n.change.planned_for,
        n.change.summary
    );
    if let Some(d) = &n.change.details {
        println!("  {d}");
    }
    println!(
        "  raised by {} on {}; notice given: {} days; {}",
        n.raised_by,
        n.raised_at.date_naive(),
        n.notice_period_days(),
        n.state
    );
    let mut t = output::table(["system", "depth", "via", "readiness", "note", "owner (IAO)"]);
    for a in &n.affected {
        t.add_row(vec![
            a.system.to_string(),
            a.depth.to_string(),
            if a.depth == 1 {
                a.flows
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                a.via
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            a.readiness.to_string(),
            a.note.clone().unwrap_or_default(),
            a.owner.as_ref().map(|o| o.to_string()).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    let unanswered: Vec<&str> = n.unanswered().map(|a| a.system.as_str()).collect();
    if !unanswered.is_empty() {
        println!("  not answered yet: {}", unanswered.join(", "));
    }
    if !n.went_ahead_while_not_ready.is_empty() {
        println!(
            "  went ahead (urgent) while not ready: {}",
            n.went_ahead_while_not_ready
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

pub async fn outbox(store: &Store, cmd: &OutboxCommand) -> anyhow::Result<Outcome> {
    match cmd {
        OutboxCommand::List {
            status,
            limit,
            format,
        } => {
            if let Some(s) = status
                && !matches!(s.as_str(), "pending" | "delivered" | "failed")
            {
                return Err(BadInput(format!(
                    "--status: '{s}' is not one of pending, delivered, failed"
                ))
                .into());
            }
            let (list, counts) = store.outbox(status.as_deref(), *limit, 0).await?;
            match format {
                output::Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"counts": counts, "items": list}))?
                ),
                output::Format::Text => {
                    let mut t = output::table([
                        "id",
                        "event",
                        "status",
                        "attempts",
                        "next attempt",
                        "last error",
                    ]);
                    for m in &list {
                        t.add_row(vec![
                            m.id.clone(),
                            m.event.clone(),
                            m.status.clone(),
                            m.attempts.to_string(),
                            if m.status == "pending" {
                                m.next_attempt_at.format("%Y-%m-%d %H:%M:%S").to_string()
                            } else {
                                String::new()
                            },
                            m.last_error.clone().unwrap_or_default(),
                        ]);
                    }
                    println!("{t}");
                    eprintln!(
                        "{} pending, {} delivered, {} failed",
                        counts.pending, counts.delivered, counts.failed
                    );
                }
            }
            Ok(if counts.failed > 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        OutboxCommand::Prune { days } => {
            if *days < 0 {
                return Err(BadInput(format!("--days: {days} is negative")).into());
            }
            let before = Utc::now() - chrono::Duration::days(*days);
            let n = store.prune_outbox(before).await?;
            eprintln!(
                "deleted {n} messages delivered before {}",
                before.date_naive()
            );
            Ok(Outcome::Ok)
        }
        OutboxCommand::Retry { id } => {
            if store.retry_outbox(id, Utc::now()).await? {
                eprintln!("{id}: queued to be sent again");
                Ok(Outcome::Ok)
            } else {
                Err(BadInput(format!("no undelivered message with id '{id}'")).into())
            }
        }
    }
}

pub async fn webhooks(
    store: &Store,
    actor: &str,
    cmd: &WebhooksCommand,
) -> anyhow::Result<Outcome> {
    match cmd {
        WebhooksCommand::Create {
            url,
            person,
            system,
        } => {
            let reg = store.load_register().await?;
            let target = match (person, system) {
                (Some(p), _) => {
                    let p = Email::parse(p).map_err(|e| BadInput(format!("--person: {e}")))?;
                    if reg.person(p.as_str()).is_none() {
                        return Err(
                            BadInput(format!("--person: no person '{p}' in the register")).into(),
                        );
                    }
                    WebhookFor::Person(p)
                }
                (None, Some(s)) => {
                    let s = SystemId::parse(s).map_err(|e| BadInput(format!("--system: {e}")))?;
                    if reg.system(s.as_str()).is_none() {
                        return Err(
                            BadInput(format!("--system: no system '{s}' in the register")).into(),
                        );
                    }
                    WebhookFor::System(s)
                }
                (None, None) => return Err(BadInput("give --person or --system".into()).into()),
            };
            let (hook, secret) = match store.create_webhook(url, &target, actor, Utc::now()).await {
                Ok(h) => h,
                Err(flowgate_store::StoreError::Refused { message, .. }) => {
                    return Err(BadInput(format!("--{message}")).into());
                }
                Err(e) => return Err(e).context("failed to register the webhook"),
            };
            println!("{secret}");
            eprintln!(
                "webhook {} → {} created; the secret above signs its deliveries (header Flowgate-Signature) and is shown only this once",
                hook.id, hook.url
            );
        }
        WebhooksCommand::List { format } => {
            let hooks = store.webhooks().await?;
            match format {
                output::Format::Json => println!("{}", serde_json::to_string_pretty(&hooks)?),
                output::Format::Text => {
                    let mut t = output::table(["id", "url", "for", "created", "disabled"]);
                    for h in &hooks {
                        t.add_row(vec![
                            h.id.clone(),
                            h.url.clone(),
                            h.person
                                .clone()
                                .or_else(|| h.system.as_ref().map(|s| format!("system {s}")))
                                .unwrap_or_default(),
                            h.created_at.date_naive().to_string(),
                            h.disabled_at
                                .map(|d| d.date_naive().to_string())
                                .unwrap_or_default(),
                        ]);
                    }
                    println!("{t}");
                }
            }
        }
        WebhooksCommand::Disable { id } => {
            if !store.disable_webhook(id, actor, Utc::now()).await? {
                return Err(BadInput(format!("no active webhook with id '{id}'")).into());
            }
            eprintln!("{id}: disabled");
        }
    }
    Ok(Outcome::Ok)
}
