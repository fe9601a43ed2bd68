//! The contract: what every backend must do.

use chrono::{TimeZone, Utc};
use flowgate_core::register::{Record, RecordKind, Register};
use flowgate_store::testing::TestDatabase;
use flowgate_store::{Backend, ChangeContext, Store, StoreError, VerificationFailure};

use crate::records::*;

fn ctx() -> ChangeContext<'static> {
    ChangeContext {
        actor: "dpt@uni.example",
        now: Utc
            .with_ymd_and_hms(2026, 12, 4, 9, 30, 0)
            .single()
            .expect("valid time"),
        summary: None,
    }
}

async fn apply(store: &Store, reg: &mut Register, records: Vec<Record>) -> flowgate_store::Applied {
    store
        .apply(reg, records, &ctx(), &mut |_| {})
        .await
        .expect("apply succeeds")
}

/// A store holding the small register, and its index.
async fn seeded(backend: Backend) -> (TestDatabase, Store, Register) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let mut reg = store.load_register().await.expect("load");
    apply(&store, &mut reg, small()).await;
    (db, store, reg)
}

async fn execute(store: &Store, sql: &str) {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn failure(store: &Store) -> VerificationFailure {
    store
        .verify()
        .await
        .expect("verify runs")
        .failure
        .expect("verification must fail")
}

async fn finish(db: TestDatabase, store: Store) {
    store.close().await;
    db.drop_database().await;
}

pub async fn an_empty_store_loads_an_empty_register_and_verifies(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    assert!(store.load_register().await.expect("load").is_empty());
    let v = store.verify().await.expect("verify");
    assert_eq!(v.events, 0);
    assert!(v.failure.is_none());
    // Opening again applies no migration twice.
    let again = db.open().await;
    again.close().await;
    finish(db, store).await;
}

pub async fn applied_records_load_back_identically(backend: Backend) {
    let (db, store, reg) = seeded(backend).await;
    let loaded = store.load_register().await.expect("load");
    assert_eq!(loaded.first_difference(&reg), None);
    assert_eq!(loaded.len(RecordKind::Flow), 3);
    let f1 = loaded.flow("f-1").expect("f-1").to_flow();
    assert_eq!(f1.data_items.len(), 2);
    let v = store.verify().await.expect("verify");
    assert_eq!(v.events, 10, "one event per record");
    assert!(v.failure.is_none(), "{:?}", v.failure);
    finish(db, store).await;
}

pub async fn applying_the_same_records_again_changes_nothing(backend: Backend) {
    let (db, store, mut reg) = seeded(backend).await;
    let again = apply(&store, &mut reg, small()).await;
    assert_eq!(again.changed(), 0);
    assert_eq!(again.unchanged.iter().sum::<usize>(), 10);
    assert_eq!(again.events, None);
    assert_eq!(store.head().await.expect("head").0, 10);
    finish(db, store).await;
}

pub async fn an_update_replaces_the_record_and_its_flow_items(backend: Backend) {
    let (db, store, mut reg) = seeded(backend).await;
    let applied = apply(
        &store,
        &mut reg,
        vec![flow("f-1", "sits", "moodle", &["student-core"])],
    )
    .await;
    assert_eq!(applied.updated[RecordKind::Flow as usize], 1);
    assert_eq!(applied.events, Some((11, 11)));
    let loaded = store.load_register().await.expect("load");
    let items: Vec<String> = loaded
        .flow("f-1")
        .expect("f-1")
        .data_items()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(items, ["student-core"]);
    assert_eq!(loaded.first_difference(&reg), None);
    assert!(store.verify().await.expect("verify").failure.is_none());
    finish(db, store).await;
}

pub async fn a_dangling_reference_is_refused_and_nothing_is_written(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let mut reg = Register::new();
    let records = vec![
        person("iao@uni.example"),
        system("sits", "iao@uni.example"),
        flow("f-1", "sits", "no-such-system", &["student-core"]),
    ];
    let err = store
        .apply(&mut reg, records, &ctx(), &mut |_| {})
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, StoreError::Refused { message, .. } if message.contains("target: no system with id 'no-such-system'")),
        "{err}"
    );
    assert!(reg.is_empty(), "the index is unchanged");
    assert!(
        store.load_register().await.expect("load").is_empty(),
        "nothing written"
    );
    assert_eq!(store.head().await.expect("head").0, 0, "no event appended");
    finish(db, store).await;
}

pub async fn verify_names_the_event_whose_payload_was_altered(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    execute(&store, "UPDATE audit_events SET payload = replace(payload, 'System sits', 'System SITS') WHERE seq = 3").await;
    match failure(&store).await {
        VerificationFailure::Chain(b) => {
            assert_eq!(b.seq, 3);
            assert!(b.reason.contains("altered"), "{}", b.reason);
        }
        other => panic!("expected a chain break, got {other}"),
    }
    finish(db, store).await;
}

pub async fn verify_names_the_record_whose_row_was_altered_behind_the_log(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    execute(
        &store,
        "UPDATE systems SET dpia_status = 'rejected' WHERE id = 'moodle'",
    )
    .await;
    let f = failure(&store).await;
    match &f {
        VerificationFailure::Mismatch(m) => {
            assert_eq!((m.kind, m.id.as_str()), (RecordKind::System, "moodle"));
            assert!(f.to_string().contains("dpia_status"), "{f}");
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    finish(db, store).await;
}

pub async fn verify_finds_a_row_added_behind_the_log(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    execute(&store, "INSERT INTO people (email, name, kind, roles) VALUES ('ghost@uni.example', 'Ghost', 'staff', '')").await;
    let f = failure(&store).await;
    assert!(
        f.to_string()
            .contains("person 'ghost@uni.example' is in the people table but not in the audit log"),
        "{f}"
    );
    finish(db, store).await;
}

pub async fn verify_finds_events_removed_from_the_end(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    execute(&store, "DELETE FROM audit_events WHERE seq = 10").await;
    match failure(&store).await {
        VerificationFailure::Chain(b) => assert_eq!(b.seq, 10, "{b}"),
        other => panic!("expected a chain break, got {other}"),
    }
    finish(db, store).await;
}

pub async fn concurrent_writers_each_append_and_the_chain_holds(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            // Separate stores: separate pools, as two processes would have.
            let store = Store::open(&url).await.expect("open");
            let mut reg = store.load_register().await.expect("load");
            let r = store
                .apply(
                    &mut reg,
                    vec![person(&format!("writer{i}@uni.example"))],
                    &ctx(),
                    &mut |_| {},
                )
                .await;
            store.close().await;
            r
        }));
    }
    for t in tasks {
        t.await
            .expect("task")
            .expect("every concurrent write succeeds");
    }
    let v = store.verify().await.expect("verify");
    assert_eq!(v.events, 18);
    assert!(v.failure.is_none(), "{:?}", v.failure);
    finish(db, store).await;
}

pub async fn a_change_larger_than_one_statement_is_written_whole(backend: Backend) {
    let (db, store, mut reg) = seeded(backend).await;
    let flows: Vec<Record> = (0..1_234)
        .map(|i| {
            flow(
                &format!("bulk-{i:04}"),
                "sits",
                "moodle",
                &["student-core", "marks"],
            )
        })
        .collect();
    let mut seen = Vec::new();
    let applied = store
        .apply(&mut reg, flows, &ctx(), &mut |n| seen.push(n))
        .await
        .expect("apply");
    assert_eq!(applied.added[RecordKind::Flow as usize], 1_234);
    assert_eq!(seen.last(), Some(&1_234), "progress reaches the total");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress only goes up"
    );
    let loaded = store.load_register().await.expect("load");
    assert_eq!(loaded.len(RecordKind::Flow), 1_237);
    assert_eq!(loaded.first_difference(&reg), None);
    assert_eq!(
        loaded.active_flows_carrying_into("moodle", "marks").count(),
        1_235
    );
    assert!(store.verify().await.expect("verify").failure.is_none());
    finish(db, store).await;
}

pub async fn events_are_listed_in_order_from_a_sequence_number(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    let events = store.events(4, 3).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.event.seq).collect();
    assert_eq!(seqs, [5, 6, 7]);
    assert_eq!(events[0].event.actor, "dpt@uni.example");
    assert_eq!(events[0].event.kind, "system.put");
    assert_eq!(events[1].prev_hash, events[0].hash);
    finish(db, store).await;
}
