//! `flowgate`: the command line of Flowgate. Thin: it parses arguments, reads and writes files,
//! and calls the crates that hold the rules (`flowgate-core`), the formats (`flowgate-exchange`)
//! and the database (`flowgate-store`).

mod audit_cmd;
mod bench;
mod check;
mod demo;
mod edit;
mod generate;
mod impact;
mod import;
mod notices;
mod output;
mod tokens;
mod view;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use flowgate_core::register::RecordKind;
use flowgate_store::Store;

/// Flowgate: the Information Asset Register and the gate for sharing and integrating data
/// between a university's information systems (DPA CoP 06).
#[derive(Debug, Parser)]
#[command(name = "flowgate", version, about, long_about = None)]
struct Cli {
    /// The database: sqlite://PATH (created when missing) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "FLOWGATE_DATABASE_URL", default_value = flowgate_store::DEFAULT_URL)]
    database_url: String,

    /// Who is making the change, for the audit log (an e-mail address). Defaults to `cli:<user>`.
    #[arg(long, global = true, env = "FLOWGATE_ACTOR")]
    actor: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// `flowgate serve`: where to listen, the policy, and where notifications go.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// A Cedar policy to use instead of the one that ships with Flowgate (validated first).
    #[arg(long, env = "FLOWGATE_POLICY")]
    policy: Option<std::path::PathBuf>,
    /// The address people reach this server at, for the links in e-mails (default: http://LISTEN).
    #[arg(long, env = "FLOWGATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// The SMTP server e-mail is sent through; without one, e-mail waits in the outbox.
    #[arg(long, env = "FLOWGATE_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "FLOWGATE_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    /// none, starttls or tls.
    #[arg(long, env = "FLOWGATE_SMTP_TLS", default_value = "starttls")]
    smtp_tls: flowgate_server::notify::SmtpTls,
    #[arg(long, env = "FLOWGATE_SMTP_USER")]
    smtp_user: Option<String>,
    #[arg(long, env = "FLOWGATE_SMTP_PASSWORD", hide_env_values = true)]
    smtp_password: Option<String>,
    /// The sender of Flowgate's e-mail.
    #[arg(
        long,
        env = "FLOWGATE_MAIL_FROM",
        default_value = "Flowgate <flowgate@localhost>"
    )]
    mail_from: String,
    /// Remind those who have not answered a change notice this many days before its date.
    #[arg(long, env = "FLOWGATE_REMIND_DAYS", default_value_t = 7)]
    remind_days: i64,
    /// For local demos only: sign in by choosing a person from the register. Refused unless
    /// --listen is a loopback address; every page says it is on.
    #[arg(long)]
    dev_sign_in: bool,
    /// The university's OpenID Connect identity provider (its issuer URL) for single sign-on.
    /// Its callback is PUBLIC_URL/sign-in/callback.
    #[arg(long, env = "FLOWGATE_OIDC_ISSUER", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    #[arg(long, env = "FLOWGATE_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    #[arg(long, env = "FLOWGATE_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the demo university register into an empty database, then serve it with development
    /// sign-in on 127.0.0.1:8080 (choose a person to be) until interrupted.
    Demo {
        /// Only load the register; do not start the server.
        #[arg(long)]
        load_only: bool,
        /// Where the demo server listens (loopback only).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Add or update records from a folder of CSV files, an .xlsx workbook or a .json export.
    /// All or nothing: one bad row and nothing is written.
    Import {
        /// A folder holding people.csv, systems.csv, data_items.csv, flows.csv (any subset), an
        /// .xlsx workbook with sheets of those names, or a .json document written by export.
        path: std::path::PathBuf,
    },
    /// Write the whole register as JSON (to standard output by default), CSV files or a workbook.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Where to write: a file for json and xlsx, a folder for csv.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// List the records of one kind as a table.
    List {
        #[arg(value_enum)]
        kind: KindArg,
        /// Show at most this many rows (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one record; a system's page shows its owner, its DPIA and its flows in and out.
    Show {
        #[arg(value_enum)]
        kind: KindArg,
        /// The id (an e-mail address for a person).
        id: String,
    },
    /// Change fields of one record, e.g. `flowgate set system sits dpia_status=approved`.
    /// The change is checked like an import row and recorded in the audit log.
    Set {
        #[arg(value_enum)]
        kind: KindArg,
        id: String,
        /// FIELD=VALUE pairs, with the CSV column names; an empty value clears an optional field.
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// Assess a sharing / integration request against the principles (P1–P3) and the Code's
    /// other checks. Exit 0 proceed, 1 rejected, 3 needs review, 2 bad input.
    Check {
        /// The request: {"requester", "justification", "source", "target", "data_items": [...],
        /// "intended_use", "access"?: "read_only" | "read_write"}.
        #[arg(required_unless_present = "rules")]
        request: Option<std::path::PathBuf>,
        /// Assess as of this date (YYYY-MM-DD); today by default.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
        /// List the rules, with their ids and clauses, instead.
        #[arg(long)]
        rules: bool,
    },
    /// Assess every active flow as if it were requested today: the register's legacy debt.
    /// Exit 1 when any flow is rejected.
    Lint {
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Which systems depend on SYSTEM, directly or through others, and who owns them: who must
    /// be told before it changes (2.4, 2.5). Exit 2 for an unknown system.
    Impact {
        system: String,
        /// Only follow first-hop flows carrying this data item (repeat for several).
        #[arg(long = "data-item")]
        data_items: Vec<String>,
        /// Stop at this depth (1: direct dependants only).
        #[arg(long)]
        depth: Option<u32>,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
    /// Measure Flowgate on the register in the database.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the HTTP server — the JSON API under /api/v1, its OpenAPI document at
    /// /api/v1/openapi.json and Swagger UI at /api/docs — until interrupted.
    Serve(ServeArgs),
    /// Change notices (2.5): raise one against a source system, list, show, answer for an
    /// affected system, record done, withdraw. Steps are authorised for --actor EMAIL.
    #[command(subcommand)]
    Notices(notices::NoticesCommand),
    /// The outbox of e-mails and webhook calls: what is pending, delivered or failed; retry one.
    #[command(subcommand)]
    Outbox(notices::OutboxCommand),
    /// Webhooks, for a person or a system, signed with HMAC-SHA256.
    #[command(subcommand)]
    Webhooks(notices::WebhooksCommand),
    /// API tokens: create one for a person (shown once), list them, revoke one.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// The authorization policy: check a replacement against Flowgate's schema.
    #[command(subcommand)]
    Policy(tokens::PolicyCommand),
    /// The audit log: verify the chain and the tables against it, or show events.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a synthetic register of a given size as CSV files, for load tests and benchmarks.
    Generate(generate::Options),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and replay the log against the tables. Exit 1 on any mismatch.
    Verify,
    /// Show events after a sequence number.
    Log {
        #[arg(long, default_value_t = 0)]
        since: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
    Xlsx,
}

/// The kind of record a command is about, as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    #[value(alias = "person")]
    People,
    #[value(alias = "system")]
    Systems,
    #[value(
        name = "data-items",
        alias = "data-item",
        alias = "data_items",
        alias = "items"
    )]
    DataItems,
    #[value(alias = "flow")]
    Flows,
}

impl From<KindArg> for RecordKind {
    fn from(k: KindArg) -> RecordKind {
        match k {
            KindArg::People => RecordKind::Person,
            KindArg::Systems => RecordKind::System,
            KindArg::DataItems => RecordKind::DataItem,
            KindArg::Flows => RecordKind::Flow,
        }
    }
}

/// An error that is the user's input, not Flowgate's failure: exit 2, message as is.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// What a command asks the process to exit with when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    /// A check found a problem (e.g. `audit verify`, a rejected request): exit 1.
    Failed,
    /// Another documented status (3: a request needs review).
    Exit(u8),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            if let Some(bad) = e.downcast_ref::<BadInput>() {
                eprintln!("{bad}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}

/// The actor for the audit log.
fn actor(cli_actor: &Option<String>) -> String {
    cli_actor.clone().unwrap_or_else(|| {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        format!("cli:{user}")
    })
}

async fn open(url: &str) -> anyhow::Result<Store> {
    Store::open(url).await.with_context(|| {
        format!(
            "failed to open the register at {}",
            flowgate_store::redact(url)
        )
    })
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let actor = actor(&cli.actor);
    // Generating touches no database; opening one would create flowgate.db for nothing.
    match &cli.command {
        Command::Generate(opts) => return generate::run(opts),
        Command::Check { rules: true, .. } => return Ok(check::rules()),
        Command::Policy(cmd) => return tokens::policy(cmd),
        _ => {}
    }
    let store = open(&cli.database_url).await?;
    let outcome = match cli.command {
        Command::Demo { load_only, listen } => {
            demo::run(&store, &actor).await?;
            if load_only {
                Outcome::Ok
            } else {
                demo::print_people(&store).await?;
                serve(
                    store.clone(),
                    ServeArgs {
                        listen,
                        policy: None,
                        public_url: None,
                        smtp_host: None,
                        smtp_port: 587,
                        smtp_tls: flowgate_server::notify::SmtpTls::StartTls,
                        smtp_user: None,
                        smtp_password: None,
                        mail_from: "Flowgate <flowgate@localhost>".into(),
                        remind_days: 7,
                        dev_sign_in: true,
                        oidc_issuer: None,
                        oidc_client_id: None,
                        oidc_client_secret: None,
                    },
                )
                .await?
            }
        }
        Command::Import { path } => import::run(&store, &actor, &path).await?,
        Command::Export { format, out } => import::export(&store, format, out.as_deref()).await?,
        Command::List { kind, limit } => view::list(&store, kind.into(), limit).await?,
        Command::Show { kind, id } => view::show(&store, kind.into(), &id).await?,
        Command::Set {
            kind,
            id,
            assignments,
        } => edit::run(&store, &actor, kind.into(), &id, &assignments).await?,
        Command::Audit(AuditCommand::Verify) => audit_cmd::verify(&store).await?,
        Command::Audit(AuditCommand::Log {
            since,
            limit,
            format,
        }) => audit_cmd::log(&store, since, limit, format).await?,
        Command::Generate(_) => Outcome::Ok,
        Command::Check {
            request,
            as_of,
            format,
            ..
        } => match request {
            Some(path) => check::check(&store, &path, check::as_of(as_of), format).await?,
            None => check::rules(),
        },
        Command::Bench(cmd) => bench::run(&store, &cmd).await?,
        Command::Lint { as_of, format } => check::lint(&store, check::as_of(as_of), format).await?,
        Command::Serve(args) => serve(store.clone(), args).await?,
        Command::Notices(cmd) => {
            let policy = std::env::var_os("FLOWGATE_POLICY").map(std::path::PathBuf::from);
            let authz = tokens::load_policy(policy.as_deref())?;
            notices::notices(&store, &actor, &authz, &cmd).await?
        }
        Command::Outbox(cmd) => notices::outbox(&store, &cmd).await?,
        Command::Webhooks(cmd) => notices::webhooks(&store, &actor, &cmd).await?,
        Command::Tokens(cmd) => tokens::run(&store, &actor, &cmd).await?,
        Command::Impact {
            system,
            data_items,
            depth,
            format,
        } => impact::run(&store, &system, &data_items, depth, format).await?,
        Command::Policy(_) => Outcome::Ok,
    };
    store.close().await;
    Ok(outcome)
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
async fn serve(store: Store, args: ServeArgs) -> anyhow::Result<Outcome> {
    use flowgate_server::notify::{NotifySettings, SmtpSettings, Worker};
    init_logging();
    let listen = args.listen;
    if args.dev_sign_in && !listen.ip().is_loopback() {
        return Err(BadInput(format!(
            "--dev-sign-in lets anyone act as anyone, so it is refused unless the server listens on a loopback address (not {listen})"
        ))
        .into());
    }
    let authz = tokens::load_policy(args.policy.as_deref())?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    store.set_public_url(&public_url);
    let smtp = match &args.smtp_host {
        Some(host) => Some(SmtpSettings {
            host: host.clone(),
            port: args.smtp_port,
            tls: args.smtp_tls,
            credentials: args.smtp_user.clone().zip(args.smtp_password.clone()),
            from: args
                .mail_from
                .parse()
                .map_err(|e| BadInput(format!("--mail-from: '{}' {e}", args.mail_from)))?,
        }),
        None => None,
    };
    if smtp.is_none() {
        tracing::warn!(
            "no SMTP server (--smtp-host): e-mail waits in the outbox until one is configured"
        );
    }
    let mut state = flowgate_server::AppState::load(store.clone(), authz).await?;
    state.dev_sign_in = args.dev_sign_in;
    if let (Some(issuer), Some(client_id)) = (&args.oidc_issuer, &args.oidc_client_id) {
        let settings = flowgate_server::web::oidc::OidcSettings {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            client_secret: args.oidc_client_secret.clone(),
            redirect_url: format!("{}/sign-in/callback", public_url.trim_end_matches('/')),
        };
        let oidc = flowgate_server::web::oidc::Oidc::discover(settings)
            .await
            .map_err(BadInput)?;
        state.oidc = Some(std::sync::Arc::new(oidc));
    }
    let worker = Worker::new(
        store,
        state.register.clone(),
        NotifySettings {
            smtp,
            remind_days: args.remind_days,
            ..NotifySettings::default()
        },
    )
    .map_err(BadInput)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivering = tokio::spawn(worker.run(stopped));
    println!(
        "Flowgate is listening on http://{listen}{} (Ctrl-C stops it)",
        if args.dev_sign_in {
            " with development sign-in"
        } else {
            ""
        }
    );
    flowgate_server::serve(state, listener, shutdown_signal()).await?;
    let _ = stop.send(true);
    let _ = delivering.await;
    Ok(Outcome::Ok)
}

/// Logs to standard error, one line per event, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
