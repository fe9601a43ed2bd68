//! `flowgate impact SYSTEM`: who depends on a system, directly or through others, and so who must
//! be told before it changes (2.4, 2.5).

use std::collections::BTreeMap;

use flowgate_core::DataItemId;
use flowgate_core::impact::{Affected, ImpactOptions, downstream};
use flowgate_store::Store;
use serde_json::json;

use crate::output::Format;
use crate::{BadInput, Outcome};

pub async fn run(
    store: &Store,
    system: &str,
    items: &[String],
    depth: Option<u32>,
    format: Format,
) -> anyhow::Result<Outcome> {
    let register = store.load_register().await?;
    let mut data_items = Vec::new();
    for i in items {
        let id = DataItemId::parse(i).map_err(|e| BadInput(format!("--data-item: {e}")))?;
        if register.data_item(id.as_str()).is_none() {
            return Err(BadInput(format!("--data-item: no data item with id '{id}'")).into());
        }
        data_items.push(id);
    }
    let options = ImpactOptions {
        data_items,
        max_depth: depth,
    };
    let key = system.trim().to_lowercase();
    let Some(affected) = downstream(&register, &key, &options) else {
        return Err(BadInput(format!("no system with id '{system}'")).into());
    };
    match format {
        Format::Json => {
            let list: Vec<_> = affected
                .iter()
                .map(|a| {
                    json!({
                        "system": a.system.id,
                        "depth": a.depth,
                        "flows": a.flows,
                        "owner": a.system.owner,
                        "administrators": a.system.administrators,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"system": key, "affected": list}))?
            );
        }
        Format::Text => print_tree(&key, &affected.iter().collect::<Vec<_>>(), &options),
    }
    Ok(Outcome::Ok)
}

/// A tree: each affected system under the first system that feeds it at the depth before.
fn print_tree(changed: &str, affected: &[Affected<'_>], options: &ImpactOptions) {
    let direct = affected.iter().filter(|a| a.depth == 1).count();
    let deepest = affected.iter().map(|a| a.depth).max().unwrap_or(0);
    let scope = if options.data_items.is_empty() {
        String::new()
    } else {
        format!(
            " (first hop: flows carrying {})",
            options
                .data_items
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if affected.is_empty() {
        println!("Nothing depends on {changed}{scope}: no active flow leaves it.");
        return;
    }
    println!(
        "Changing {changed}{scope} affects {} system{} ({direct} directly, {} levels deep):",
        affected.len(),
        if affected.len() == 1 { "" } else { "s" },
        deepest
    );
    let mut children: BTreeMap<&str, Vec<&Affected<'_>>> = BTreeMap::new();
    for a in affected {
        let parent = a.via.first().copied().unwrap_or(changed);
        children.entry(parent).or_default().push(a);
    }
    println!("{changed}");
    walk(changed, &children, "");
}

fn walk(node: &str, children: &BTreeMap<&str, Vec<&Affected<'_>>>, prefix: &str) {
    let Some(list) = children.get(node) else {
        return;
    };
    for (i, a) in list.iter().enumerate() {
        let last = i + 1 == list.len();
        let owner = a
            .system
            .owner
            .as_ref()
            .map_or("no IAO recorded".to_owned(), |o| format!("IAO {o}"));
        let admins = if a.system.administrators.is_empty() {
            String::new()
        } else {
            format!(
                "; IAA {}",
                a.system
                    .administrators
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let also = if a.via.len() > 1 {
            format!(", also from {}", a.via[1..].join(", "))
        } else {
            String::new()
        };
        println!(
            "{prefix}{} {} — {} (depth {}, via {}{also}; {owner}{admins})",
            if last { "└─" } else { "├─" },
            a.system.id,
            a.system.name,
            a.depth,
            a.flows.join(", "),
        );
        let next = format!("{prefix}{}", if last { "   " } else { "│  " });
        walk(a.system.id.as_str(), children, &next);
    }
}
