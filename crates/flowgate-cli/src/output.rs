//! How the command line shows things: tables sized to the terminal, plain when piped.

use std::io::IsTerminal;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};

/// Text for a person, JSON for a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A table with these column headers: drawn with lines on a terminal, as Markdown when piped
/// (so it pastes into a ticket or a wiki).
pub fn table<I: IntoIterator<Item = &'static str>>(headers: I) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_style(presets::UTF8_HORIZONTAL_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_style(presets::ASCII_MARKDOWN);
    }
    t.set_header(headers);
    t
}

/// A two-column table of field and value.
pub fn fields(rows: Vec<(&str, String)>) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_style(presets::NOTHING);
    }
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    t
}

/// An optional value, or a dash.
pub fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// The command to suggest to the user: `flowgate`, or `cargo run --release --` when that is how
/// they ran it (the README's first command).
pub fn command_name() -> &'static str {
    if std::env::var_os("CARGO_PKG_NAME").is_some() {
        "cargo run --release --"
    } else {
        "flowgate"
    }
}

/// "28 people, 29 systems, 20 data items, 47 flows".
pub fn counts(register: &flowgate_core::register::Register) -> String {
    flowgate_core::register::RecordKind::ALL
        .iter()
        .map(|&k| {
            format!(
                "{} {}",
                register.len(k),
                flowgate_store::plural(k, register.len(k))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
