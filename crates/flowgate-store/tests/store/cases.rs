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

fn ask(requester: &str) -> flowgate_core::policy::Request {
    flowgate_core::policy::Request::from_json(&serde_json::json!({
        "requester": requester, "justification": "j", "source": "sits", "target": "moodle",
        "data_items": ["student-core"], "intended_use": "u"
    }))
    .expect("request")
}

/// Raises arriving together share one transaction (group commit): each still gets its own
/// number, row and audit event, and the chain verifies.
pub async fn requests_raised_at_once_get_one_number_each_and_their_own_events(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    let who = flowgate_core::Email::parse("a.person@uni.example").expect("email");
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (store, who) = (store.clone(), who.clone());
        tasks.push(tokio::spawn(async move {
            let now = Utc::now();
            let actor = who.to_string();
            store
                .raise_request(&actor, now, move |id| {
                    flowgate_core::workflow::raise(id, ask(who.as_str()), None, &who, now)
                })
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.expect("task").expect("raised");
        ids.insert(r.id.to_string());
    }
    let want: std::collections::BTreeSet<String> = (1..=40).map(|n| format!("req-{n}")).collect();
    assert_eq!(ids, want);
    for id in &ids {
        let history = store.request_history(id).await.expect("history");
        assert_eq!(history.len(), 1, "{id}");
        assert_eq!(history[0].event.kind, "request.raise");
        assert_eq!(
            history[0].event.payload["request"]["id"],
            serde_json::json!(id)
        );
    }
    // A refused raise writes nothing and does not spoil the group it arrived with.
    let other = flowgate_core::Email::parse("someone.else@uni.example").expect("email");
    let actor = other.to_string();
    let e = store
        .raise_request(&actor, Utc::now(), move |id| {
            flowgate_core::workflow::raise(
                id,
                ask("a.person@uni.example"),
                None,
                &other,
                Utc::now(),
            )
        })
        .await
        .expect_err("raised on behalf of another");
    assert!(e.to_string().contains("raised by its requester"), "{e}");
    let (list, total) = store
        .requests(&flowgate_store::RequestFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!((list.len(), total), (40, 40));
    let v = store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "{:?}", v.failure);
    finish(db, store).await;
}

pub async fn tokens_authenticate_until_revoked_or_expired(backend: Backend) {
    let (db, store, _) = seeded(backend).await;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    let who = flowgate_core::Email::parse("iao@uni.example").expect("email");
    let (token, info) = store
        .create_token(&who, Some(today), "admin@uni.example", Utc::now())
        .await
        .expect("create");
    assert!(token.starts_with("fgt_"));
    assert_eq!(
        store.authenticate(&token, today).await.expect("auth"),
        Some(who.clone())
    );
    let tomorrow = today.succ_opt().expect("date");
    assert_eq!(
        store.authenticate(&token, tomorrow).await.expect("auth"),
        None,
        "expired"
    );
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('0') { '1' } else { '0' });
    assert_eq!(
        store.authenticate(&forged, today).await.expect("auth"),
        None,
        "wrong secret"
    );
    assert_eq!(
        store
            .authenticate("Bearer nonsense", today)
            .await
            .expect("auth"),
        None
    );
    assert!(
        store
            .revoke_token(&info.id, "admin@uni.example", Utc::now())
            .await
            .expect("revoke")
    );
    assert_eq!(
        store.authenticate(&token, today).await.expect("auth"),
        None,
        "revoked"
    );
    assert!(
        !store
            .revoke_token(&info.id, "admin@uni.example", Utc::now())
            .await
            .expect("again")
    );
    // Unknown people get no token, and nothing is written.
    let nobody = flowgate_core::Email::parse("nobody@uni.example").expect("email");
    assert!(
        store
            .create_token(&nobody, None, "admin@uni.example", Utc::now())
            .await
            .is_err()
    );
    assert_eq!(store.tokens().await.expect("list").len(), 1);
    let v = store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "{:?}", v.failure);
    // The secret is not in the audit log.
    let events = store.events(0, 1000).await.expect("events");
    let secret = token.rsplit('_').next().expect("secret");
    assert!(
        events
            .iter()
            .all(|e| !e.event.payload.to_string().contains(secret))
    );
    finish(db, store).await;
}

/// The answer-link tokens in an e-mail's text.
fn answer_tokens(text: &str) -> Vec<String> {
    text.match_indices("/answer/")
        .map(|(i, _)| {
            text[i + 8..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect()
        })
        .collect()
}

pub async fn a_notice_queues_its_messages_with_it_and_each_is_delivered_once(backend: Backend) {
    use flowgate_core::notice::{self, ChangeDraft, NoticeAction, Readiness};
    use flowgate_core::{Email, SystemId};
    use flowgate_store::{Channel, MAX_ATTEMPTS, WebhookFor};

    let (db, store, reg) = seeded(backend).await;
    store.set_public_url("https://flowgate.uni.example/");
    let now = ctx().now;
    let raiser = Email::parse("iao@uni.example").expect("email");
    let other = Email::parse("other@uni.example").expect("email");
    let moodle = SystemId::parse("moodle").expect("id");
    let (hook, secret) = store
        .create_webhook(
            "http://127.0.0.1:9/hook",
            &WebhookFor::System(moodle.clone()),
            "admin@uni.example",
            now,
        )
        .await
        .expect("webhook");
    assert!(secret.starts_with("whsec_"));
    let draft = ChangeDraft {
        system: SystemId::parse("sits").expect("id"),
        summary: "Upgrade".into(),
        details: None,
        planned_for: now.date_naive() + chrono::Duration::days(3),
        urgent: false,
        data_items: vec![],
    };
    let n = store
        .raise_notice(raiser.as_str(), now, |id| {
            notice::raise(id, draft, &raiser, &reg, now)
        })
        .await
        .expect("raised");
    assert_eq!(n.id.as_str(), "chg-1");
    // other@ answers for both moodle and ext-careers: one e-mail; moodle's webhook: one call.
    let (queued, counts) = store.outbox(None, 50, 0).await.expect("outbox");
    assert_eq!((counts.pending, counts.delivered, counts.failed), (2, 0, 0));
    let seq = store.notice_history("chg-1").await.expect("history")[0]
        .event
        .seq;
    let mail = queued
        .iter()
        .find(|m| m.channel == Channel::Email)
        .expect("mail");
    assert_eq!(mail.id, format!("{seq}:email:other@uni.example"));
    assert_eq!(mail.event, "notice.raised");
    assert!(
        mail.body
            .contains("https://flowgate.uni.example/notices/chg-1"),
        "{}",
        mail.body
    );
    let call = queued
        .iter()
        .find(|m| m.channel == Channel::Webhook)
        .expect("webhook");
    assert_eq!(call.id, format!("{seq}:webhook:{}", hook.id));
    let payload: serde_json::Value = serde_json::from_str(&call.body).expect("json");
    assert_eq!(payload["id"], serde_json::json!(call.id));
    assert_eq!(payload["data"]["notice"], "chg-1");

    // Each link in the e-mail stands for one system, one person, this notice.
    let tokens = answer_tokens(&mail.body);
    assert_eq!(tokens.len(), 2, "{}", mail.body);
    let mut linked = Vec::new();
    for t in &tokens {
        let (nid, sys, who) = store.answer_link(t).await.expect("lookup").expect("known");
        assert_eq!((nid.as_str(), who.as_str()), ("chg-1", "other@uni.example"));
        linked.push(sys.to_string());
    }
    linked.sort();
    assert_eq!(linked, vec!["ext-careers", "moodle"]);
    assert!(store.answer_link("00ff").await.expect("lookup").is_none());

    // Claimed once; a second worker gets nothing while the lease runs.
    let lease = chrono::Duration::seconds(60);
    let both = [Channel::Email, Channel::Webhook];
    let claimed = store
        .claim_outbox(now, 10, lease, &both)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    assert!(
        store
            .claim_outbox(now, 10, lease, &both)
            .await
            .expect("claim")
            .is_empty()
    );
    // A failure waits out its backoff, then goes again; a delivery is final.
    let m = claimed
        .iter()
        .find(|m| m.channel == Channel::Email)
        .expect("mail");
    store
        .outbox_failed(m, now, "connection refused")
        .await
        .expect("failed");
    let later = now + chrono::Duration::seconds(10);
    assert!(
        store
            .claim_outbox(later, 10, lease, &[Channel::Email])
            .await
            .expect("claim")
            .is_empty()
    );
    let later = now + chrono::Duration::seconds(31);
    let again = store
        .claim_outbox(later, 10, lease, &[Channel::Email])
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("connection refused"))
    );
    store
        .outbox_delivered(&again[0].id, later)
        .await
        .expect("delivered");
    assert!(
        !store
            .retry_outbox(&again[0].id, later)
            .await
            .expect("retry")
    );
    let far = now + chrono::Duration::days(30);
    assert!(
        store
            .claim_outbox(far, 10, lease, &[Channel::Email])
            .await
            .expect("claim")
            .is_empty()
    );
    // The webhook fails until it is given up on, visibly; a retry queues it at once.
    let mut w = claimed
        .into_iter()
        .find(|m| m.channel == Channel::Webhook)
        .expect("call");
    for _ in 0..MAX_ATTEMPTS {
        store
            .outbox_failed(&w, now, "HTTP 500")
            .await
            .expect("failed");
        w.attempts += 1;
    }
    let (_, counts) = store.outbox(Some("failed"), 50, 0).await.expect("outbox");
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 1, 1));
    assert!(store.retry_outbox(&w.id, now).await.expect("retry"));
    assert_eq!(
        store
            .claim_outbox(now, 10, lease, &both)
            .await
            .expect("claim")
            .len(),
        1
    );

    // An acknowledgement queues nothing; not ready tells the change owner.
    let answer = |r: Readiness, note: Option<&str>| NoticeAction::Answer {
        system: moodle.clone(),
        readiness: r,
        note: note.map(str::to_owned),
    };
    let ack = answer(Readiness::Acknowledged, None);
    store
        .notice_transition(&reg, "chg-1", Some(1), other.as_str(), now, |n, reg| {
            notice::decide(n, &ack, &other, reg, now)
        })
        .await
        .expect("ack");
    let stale = store
        .notice_transition(&reg, "chg-1", Some(1), other.as_str(), now, |n, reg| {
            notice::decide(n, &ack, &other, reg, now)
        })
        .await
        .expect_err("stale version");
    assert!(
        stale.to_string().contains("has changed since version 1"),
        "{stale}"
    );
    let nr = answer(Readiness::NotReady, Some("needs testing"));
    store
        .notice_transition(&reg, "chg-1", None, other.as_str(), now, |n, reg| {
            notice::decide(n, &nr, &other, reg, now)
        })
        .await
        .expect("not ready");
    let (list, _) = store.outbox(None, 50, 0).await.expect("outbox");
    let events: Vec<(&str, &str)> = list
        .iter()
        .filter(|m| m.channel == Channel::Email)
        .map(|m| (m.event.as_str(), m.recipient.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("notice.not_ready", "iao@uni.example"),
            ("notice.raised", "other@uni.example")
        ]
    );
    // Reminders: due within 7 days (planned in 3), once.
    let due = store
        .notices_due_reminder(now.date_naive(), 7)
        .await
        .expect("due");
    assert_eq!(due, vec!["chg-1"]);
    assert!(
        store
            .notices_due_reminder(now.date_naive(), 2)
            .await
            .expect("due")
            .is_empty()
    );
    // Pruning takes delivered messages only, and only those delivered before the date.
    assert_eq!(
        store.prune_outbox(later).await.expect("prune"),
        0,
        "delivered at `later`, not before"
    );
    let pruned = store.prune_outbox(far).await.expect("prune");
    assert_eq!(pruned, 1, "the one delivered e-mail");
    let (_, counts) = store.outbox(None, 50, 0).await.expect("outbox");
    assert_eq!(counts.delivered, 0);
    assert!(counts.pending >= 1, "undelivered messages stay");
    let history = store.notice_history("chg-1").await.expect("history");
    let kinds: Vec<&str> = history.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["notice.raise", "notice.acknowledge", "notice.not_ready"]
    );
    let v = store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "{:?}", v.failure);
    finish(db, store).await;
}

pub async fn sessions_and_sign_ins_expire_and_are_taken_once(backend: Backend) {
    use flowgate_core::Email;
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let now = ctx().now;
    let who = Email::parse("iao@uni.example").expect("email");
    let (token, session) = store
        .create_session(&who, now, chrono::Duration::hours(1))
        .await
        .expect("session");
    assert_eq!(token.len(), 64);
    assert_eq!(session.person, who);
    let found = store
        .session(&token, now)
        .await
        .expect("lookup")
        .expect("live");
    assert_eq!(found, session);
    assert!(
        store
            .session("not-a-token", now)
            .await
            .expect("lookup")
            .is_none()
    );
    let later = now + chrono::Duration::hours(2);
    assert!(
        store
            .session(&token, later)
            .await
            .expect("lookup")
            .is_none(),
        "expired"
    );
    let (other, _) = store
        .create_session(&who, now, chrono::Duration::hours(1))
        .await
        .expect("session");
    store.delete_session(&other).await.expect("sign out");
    assert!(
        store.session(&other, now).await.expect("lookup").is_none(),
        "signed out"
    );

    store
        .begin_oidc("state-1", "verifier-1", "nonce-1", now)
        .await
        .expect("begin");
    assert!(
        store
            .finish_oidc("state-2", now)
            .await
            .expect("finish")
            .is_none(),
        "unknown state"
    );
    assert_eq!(
        store.finish_oidc("state-1", now).await.expect("finish"),
        Some(("verifier-1".to_owned(), "nonce-1".to_owned()))
    );
    assert!(
        store
            .finish_oidc("state-1", now)
            .await
            .expect("finish")
            .is_none(),
        "taken once"
    );
    store
        .begin_oidc("state-3", "v", "n", now)
        .await
        .expect("begin");
    let late = now + chrono::Duration::minutes(11);
    assert!(
        store
            .finish_oidc("state-3", late)
            .await
            .expect("finish")
            .is_none(),
        "too old"
    );
    finish(db, store).await;
}

pub async fn verify_names_a_request_or_notice_whose_row_was_altered_behind_the_log(
    backend: Backend,
) {
    use flowgate_core::notice::{self, ChangeDraft};
    use flowgate_core::policy::{Access, Request};
    use flowgate_core::workflow;
    use flowgate_core::{Email, SystemId};
    let (db, store, reg) = seeded(backend).await;
    let now = ctx().now;
    let who = Email::parse("other@uni.example").expect("email");
    let ask = Request {
        requester: who.clone(),
        justification: "why".into(),
        source: SystemId::parse("sits").expect("id"),
        target: SystemId::parse("moodle").expect("id"),
        data_items: [flowgate_core::DataItemId::parse("marks").expect("id")].into(),
        intended_use: "use".into(),
        access: Access::ReadOnly,
    };
    let raiser = who.clone();
    store
        .raise_request(who.as_str(), now, move |id| {
            workflow::raise(id, ask, None, &raiser, now)
        })
        .await
        .expect("raised");
    let draft = ChangeDraft {
        system: SystemId::parse("sits").expect("id"),
        summary: "Upgrade".into(),
        details: None,
        planned_for: now.date_naive() + chrono::Duration::days(3),
        urgent: false,
        data_items: vec![],
    };
    store
        .raise_notice(who.as_str(), now, |id| {
            notice::raise(id, draft, &who, &reg, now)
        })
        .await
        .expect("notice");
    let v = store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "{:?}", v.failure);

    execute(
        &store,
        "UPDATE requests SET body = REPLACE(body, '\"with_data_product_team\"', '\"approved\"') WHERE id = 'req-1'",
    )
    .await;
    let f = failure(&store).await.to_string();
    assert_eq!(
        f,
        "request req-1: the table row differs from its last step in the audit log (state is \"approved\" in the table but \"with_data_product_team\" in the audit log)"
    );
    execute(
        &store,
        "UPDATE requests SET body = REPLACE(body, '\"approved\"', '\"with_data_product_team\"') WHERE id = 'req-1'",
    )
    .await;
    execute(&store, "DELETE FROM change_notices WHERE id = 'chg-1'").await;
    let f = failure(&store).await.to_string();
    assert_eq!(
        f,
        "change notice chg-1: is in the audit log but missing from the change_notices table"
    );
    finish(db, store).await;
}
