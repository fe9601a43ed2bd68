//! The facts an assessment needs, fetched by SQL queries: how a register that lives only in its
//! database would answer a request. `flowgate bench check` runs the same assessment this way and
//! from the in-memory index, in the same run, and reports the ratio.

use flowgate_core::policy::Request;
use flowgate_core::register::{Record, Register};
use sqlx::Row;

use crate::{Store, StoreError, decode};

impl Store {
    /// A register holding only what the rules look at for `request`: the requester, the source
    /// and target, the requested items (and their authoritative systems), the active flows into
    /// the source carrying them, and the active flows from the source into the target.
    pub async fn facts_for(&self, request: &Request) -> Result<Register, StoreError> {
        let pool = self.pool();
        let mut records = Vec::new();
        if let Some(row) = sqlx::query("SELECT * FROM people WHERE email = $1")
            .bind(request.requester.as_str())
            .fetch_optional(pool)
            .await?
        {
            records.push(Record::Person(decode::person(&row)?));
        }
        let mut systems = vec![request.source.to_string(), request.target.to_string()];
        let mut items = Vec::new();
        let mut flows = Vec::new();
        for item in &request.data_items {
            if let Some(row) = sqlx::query("SELECT * FROM data_items WHERE id = $1")
                .bind(item.as_str())
                .fetch_optional(pool)
                .await?
            {
                let d = decode::data_item(&row)?;
                if let Some(a) = &d.authoritative_system {
                    systems.push(a.to_string());
                }
                items.push(d);
            }
            // Active flows into the source carrying it (is the source a copy?), and from the
            // source into the target carrying it (is there one already?). Written so that each
            // is answered through the flows' target or source index and the item table's key,
            // as a database-backed register would tune them.
            let mut rows = sqlx::query(
                "SELECT f.id, f.source, f.target, f.method, f.frequency, f.status, f.request, f.established_on \
                 FROM flows f WHERE f.target = $1 AND f.status = 'active' \
                 AND EXISTS (SELECT 1 FROM flow_data_items i WHERE i.flow_id = f.id AND i.data_item_id = $2)",
            )
            .bind(request.source.as_str())
            .bind(item.as_str())
            .fetch_all(pool)
            .await?;
            rows.extend(
                sqlx::query(
                    "SELECT f.id, f.source, f.target, f.method, f.frequency, f.status, f.request, f.established_on \
                     FROM flows f WHERE f.target = $1 AND f.source = $2 AND f.status = 'active' \
                     AND EXISTS (SELECT 1 FROM flow_data_items i WHERE i.flow_id = f.id AND i.data_item_id = $3)",
                )
                .bind(request.target.as_str())
                .bind(request.source.as_str())
                .bind(item.as_str())
                .fetch_all(pool)
                .await?,
            );
            for row in rows {
                let mut f = decode::flow(&row)?;
                systems.push(f.source.to_string());
                systems.push(f.target.to_string());
                let id: String = row.try_get("id")?;
                for r in sqlx::query("SELECT data_item_id FROM flow_data_items WHERE flow_id = $1")
                    .bind(&id)
                    .fetch_all(pool)
                    .await?
                {
                    let d: String = r.try_get("data_item_id")?;
                    if let Ok(d) = flowgate_core::DataItemId::parse(&d) {
                        f.data_items.insert(d);
                    }
                }
                flows.push(f);
            }
        }
        systems.sort();
        systems.dedup();
        let mut owners = Vec::new();
        for id in &systems {
            if let Some(row) = sqlx::query("SELECT * FROM systems WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
            {
                let s = decode::system(&row)?;
                owners.extend(
                    s.owner
                        .iter()
                        .chain(&s.administrators)
                        .map(ToString::to_string),
                );
                records.push(Record::System(s));
            }
        }
        // The systems' people, so that the small register is consistent.
        owners.sort();
        owners.dedup();
        for email in owners
            .iter()
            .filter(|e| e.as_str() != request.requester.as_str())
        {
            if let Some(row) = sqlx::query("SELECT * FROM people WHERE email = $1")
                .bind(email)
                .fetch_optional(pool)
                .await?
            {
                records.push(Record::Person(decode::person(&row)?));
            }
        }
        records.sort_by_key(Record::kind);
        // Flows name items beyond those requested: keep only the items the register holds.
        let known: std::collections::HashSet<String> =
            items.iter().map(|d| d.id.to_string()).collect();
        records.extend(items.into_iter().map(Record::DataItem));
        for mut f in flows {
            f.data_items.retain(|d| known.contains(d.as_str()));
            records.push(Record::Flow(f));
        }
        Register::from_records(records).map_err(|e| StoreError::Refused {
            kind: "register",
            id: e.id.clone(),
            message: e.to_string(),
        })
    }
}
