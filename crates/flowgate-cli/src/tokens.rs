//! `flowgate tokens` (API tokens for a person: created and shown once, listed, revoked) and
//! `flowgate policy validate` (a replacement Cedar policy checked against Flowgate's schema).

use anyhow::Context;
use clap::Subcommand;
use flowgate_authz::Authz;
use flowgate_core::Email;
use flowgate_store::Store;

use crate::{BadInput, Outcome, output};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token for a person in the register. It is printed once and cannot be shown again.
    Create {
        /// The person's e-mail address.
        #[arg(long)]
        person: String,
        /// The last day the token works (YYYY-MM-DD); no expiry by default.
        #[arg(long)]
        expires: Option<chrono::NaiveDate>,
    },
    /// List every token (never its secret).
    List {
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Revoke a token by its id (the 16 characters after `fgt_`).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a Cedar policy file against Flowgate's schema. Exit 0 valid, 2 not.
    Validate { file: std::path::PathBuf },
}

pub async fn run(store: &Store, actor: &str, cmd: &TokensCommand) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now();
    match cmd {
        TokensCommand::Create { person, expires } => {
            let person = Email::parse(person).map_err(|e| BadInput(format!("--person: {e}")))?;
            if let Some(d) = expires
                && *d < now.date_naive()
            {
                return Err(BadInput(format!("--expires: {d} is in the past")).into());
            }
            let (token, info) = match store.create_token(&person, *expires, actor, now).await {
                Ok(t) => t,
                Err(flowgate_store::StoreError::Refused { id, message, .. }) => {
                    return Err(BadInput(format!("--person: '{id}' {message}")).into());
                }
                Err(e) => return Err(e.into()),
            };
            println!("{token}");
            eprintln!(
                "token {} for {} created{}; it is shown only this once: send it as `Authorization: Bearer <token>`",
                info.id,
                info.person,
                info.expires_on
                    .map(|d| format!(", valid until {d}"))
                    .unwrap_or_default()
            );
        }
        TokensCommand::List { format } => {
            let tokens = store.tokens().await?;
            match format {
                output::Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&tokens)?);
                }
                output::Format::Text => {
                    let mut table = output::table(["id", "person", "created", "expires", "state"]);
                    for row in tokens.iter().map(|t| {
                        vec![
                            t.id.clone(),
                            t.person.to_string(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            t.expires_on.map(|d| d.to_string()).unwrap_or_default(),
                            t.revoked_at
                                .map(|d| format!("revoked {}", d.format("%Y-%m-%d")))
                                .unwrap_or_else(|| "live".into()),
                        ]
                    }) {
                        table.add_row(row);
                    }
                    println!("{table}");
                }
            }
        }
        TokensCommand::Revoke { id } => {
            if store.revoke_token(id, actor, now).await? {
                println!("revoked token {id}");
            } else {
                return Err(BadInput(format!("no live token with id '{id}'")).into());
            }
        }
    }
    Ok(Outcome::Ok)
}

/// The policy in force: the file given, validated, or the one that ships with Flowgate.
pub fn load_policy(file: Option<&std::path::Path>) -> anyhow::Result<Authz> {
    match file {
        None => Ok(Authz::builtin()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the policy {}", path.display()))?;
            Ok(Authz::from_text(&text, &path.display().to_string())?)
        }
    }
}

pub fn policy(cmd: &PolicyCommand) -> anyhow::Result<Outcome> {
    let PolicyCommand::Validate { file } = cmd;
    let text =
        std::fs::read_to_string(file).map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    match Authz::from_text(&text, &file.display().to_string()) {
        Ok(a) => {
            println!(
                "{}: valid — {} policies, checked against Flowgate's schema",
                file.display(),
                a.len()
            );
            Ok(Outcome::Ok)
        }
        Err(e) => Err(BadInput(e.to_string()).into()),
    }
}
