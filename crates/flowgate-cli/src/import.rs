//! `flowgate import` and `flowgate export`.

use std::path::Path;

use anyhow::Context;
use flowgate_core::register::{Record, Register};
use flowgate_exchange::{Parsed, Problems};
use flowgate_store::{ChangeContext, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{BadInput, ExportFormat, Outcome};

/// The files an import reads from a folder.
const FILES: [&str; 4] = ["people.csv", "systems.csv", "data_items.csv", "flows.csv"];

/// Reads and checks an input against the register, without writing anything.
pub fn parse(path: &Path, register: &Register) -> anyhow::Result<Parsed> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let read =
        |p: &Path| std::fs::read(p).with_context(|| format!("failed to read {}", p.display()));
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let parsed = if path.is_dir() {
        let mut files = Vec::new();
        for f in FILES {
            let p = path.join(f);
            if p.exists() {
                files.push((f.to_owned(), read(&p)?));
            }
        }
        if files.is_empty() {
            return Err(BadInput(format!(
                "{}: no register files here (expected any of {})",
                path.display(),
                FILES.join(", ")
            ))
            .into());
        }
        flowgate_exchange::read_csv(&files, register)
    } else if !path.exists() {
        return Err(BadInput(format!("{}: no such file or folder", path.display())).into());
    } else if ext.as_deref() == Some("xlsx") {
        flowgate_exchange::read_xlsx(&name, &read(path)?, register)
    } else if ext.as_deref() == Some("json") {
        flowgate_exchange::read_json(&name, &read(path)?, register)
    } else {
        return Err(BadInput(format!(
            "{}: not a folder of CSV files, an .xlsx workbook or a .json document",
            path.display()
        ))
        .into());
    };
    parsed.map_err(|problems| refused(&problems).into())
}

fn refused(problems: &Problems) -> BadInput {
    let n = problems.len();
    BadInput(format!(
        "import refused, nothing was written: {n} problem{}\n{problems}",
        if n == 1 { "" } else { "s" }
    ))
}

fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner().with_message(message.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Imports `path` into the register, all or nothing.
pub async fn run(store: &Store, actor: &str, path: &Path) -> anyhow::Result<Outcome> {
    let pb = spinner("reading the register");
    let mut register = store.load_register().await?;
    pb.set_message(format!("reading and checking {}", path.display()));
    let parsed = parse(path, &register);
    pb.finish_and_clear();
    let parsed = parsed?;
    let records: Vec<Record> = parsed.records.into_iter().map(|(_, r)| r).collect();
    let applied = write(
        store,
        &mut register,
        records,
        actor,
        &path.display().to_string(),
    )
    .await?;
    println!("imported {}: {}", path.display(), applied.summary());
    Ok(Outcome::Ok)
}

/// Writes records with a progress bar, as one change with an import summary in the log.
pub async fn write(
    store: &Store,
    register: &mut Register,
    records: Vec<Record>,
    actor: &str,
    source: &str,
) -> anyhow::Result<flowgate_store::Applied> {
    let total = records.len() as u64;
    let pb = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} records, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message("writing");
    let ctx = ChangeContext {
        actor,
        now: chrono::Utc::now(),
        summary: Some((
            flowgate_core::audit::IMPORT_KIND,
            serde_json::json!({ "source": source }),
        )),
    };
    let applied = store
        .apply(register, records, &ctx, &mut |n| pb.set_position(n))
        .await;
    pb.finish_and_clear();
    Ok(applied?)
}

/// Writes the register out.
pub async fn export(
    store: &Store,
    format: ExportFormat,
    out: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let register = store.load_register().await?;
    match (format, out) {
        (ExportFormat::Json, None) => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(&flowgate_exchange::write_json(&register))?;
        }
        (ExportFormat::Json, Some(p)) => write_file(p, &flowgate_exchange::write_json(&register))?,
        (ExportFormat::Xlsx, Some(p)) => write_file(p, &flowgate_exchange::write_xlsx(&register)?)?,
        (ExportFormat::Csv, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            for (name, bytes) in flowgate_exchange::write_csv(&register) {
                write_file(&dir.join(name), &bytes)?;
            }
        }
        (ExportFormat::Csv | ExportFormat::Xlsx, None) => {
            return Err(
                BadInput("--out is required for csv (a folder) and xlsx (a file)".into()).into(),
            );
        }
    }
    if let Some(p) = out {
        let counts = crate::output::counts(&register);
        eprintln!("exported {} to {}", counts, p.display());
    }
    Ok(Outcome::Ok)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("failed to write {}", path.display()))
}
