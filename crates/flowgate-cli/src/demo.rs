//! `flowgate demo`: a plausible university register, with the legacy problems real registers
//! have (data taken from copies, a flow into an authoritative system, systems without a DPIA, an
//! overdue DPIA review, special category data in the warehouse), loaded through the same import
//! path as a university's own spreadsheets.

use flowgate_store::Store;

use crate::Outcome;
use crate::output::command_name;

/// The demo register, as the CSV files a university would import.
const FILES: [(&str, &[u8]); 4] = [
    ("people.csv", include_bytes!("../demo/people.csv")),
    ("systems.csv", include_bytes!("../demo/systems.csv")),
    ("data_items.csv", include_bytes!("../demo/data_items.csv")),
    ("flows.csv", include_bytes!("../demo/flows.csv")),
];

pub async fn run(store: &Store, actor: &str) -> anyhow::Result<Outcome> {
    let mut register = store.load_register().await?;
    let fg = command_name();
    if register.is_empty() {
        let files: Vec<(String, Vec<u8>)> = FILES
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect();
        let parsed = flowgate_exchange::read_csv(&files, &register).map_err(|p| {
            anyhow::anyhow!("the built-in demo register does not import (a bug):\n{p}")
        })?;
        let records = parsed.records.into_iter().map(|(_, r)| r).collect();
        let applied =
            crate::import::write(store, &mut register, records, actor, "the demo register").await?;
        println!(
            "Loaded the demo register of the University of Example: {}.",
            applied.summary()
        );
    } else {
        let counts = crate::output::counts(&register);
        println!(
            "The register is not empty ({}), so the demo left it alone.\n\
             For a fresh demo, point Flowgate at another database: {fg} --database-url sqlite://demo.db demo",
            counts
        );
    }
    println!("\nThings to try:");
    for (command, what) in [
        (
            "list systems",
            "the register's systems, their owners (IAOs) and DPIAs",
        ),
        (
            "show system sits",
            "the student record system: its owner, DPIA and flows in and out",
        ),
        (
            "lint",
            "the legacy debt: data taken from copies, flows into an authority, missing DPIAs",
        ),
        (
            "check examples/request-from-copy.json",
            "a request that takes data from a copy (rejected)",
        ),
        (
            "check examples/request-library.json",
            "a request that may proceed",
        ),
        (
            "check examples/request-alumni.json",
            "a request that needs a DPIA first (needs review)",
        ),
        (
            "set system moodle dpia_review_due=2028-10-31",
            "record a DPIA review; it goes in the audit log",
        ),
        ("audit verify", "prove the audit log and the tables agree"),
        (
            "export --format xlsx --out iar.xlsx",
            "the register as a workbook (import takes it back)",
        ),
    ] {
        println!("  {fg} {command}\n      {what}");
    }
    Ok(Outcome::Ok)
}

/// A few people to sign in as, one per role in the journey of a request.
pub async fn print_people(store: &Store) -> anyhow::Result<()> {
    let register = store.load_register().await?;
    println!("\nOpen the address below and sign in as, for example:");
    for (email, what) in [
        ("a.researcher@uni.example", "a requester: raise a request"),
        ("dpt.lead@uni.example", "the Data Product Team: triage it"),
        ("registrar@uni.example", "the IAO of SITS: approve it"),
        (
            "librarian@uni.example",
            "the IAO of the library system: approve it",
        ),
        (
            "pl.integrations@uni.example",
            "a product line: build and complete it",
        ),
        ("dpo@uni.example", "the Data Protection Officer"),
    ] {
        if let Some(p) = register.person(email) {
            println!("  {} ({email}) — {what}", p.name);
        }
    }
    println!();
    Ok(())
}
