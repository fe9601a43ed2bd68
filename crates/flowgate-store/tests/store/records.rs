//! Small records for the cases.

use flowgate_core::register::*;
use flowgate_core::{DataItemId, Email, FlowId, SystemId};

pub fn person(email: &str) -> Record {
    Record::Person(Person {
        email: Email::parse(email).expect("test e-mail"),
        name: format!("Name of {email}"),
        kind: PersonKind::Staff,
        authorised_until: None,
        roles: [Role::DataProductTeam].into(),
    })
}

pub fn system(id: &str, owner: &str) -> Record {
    Record::System(System {
        id: SystemId::parse(id).expect("test id"),
        name: format!("System {id}"),
        description: Some("a system, with a comma".into()),
        kind: SystemKind::Application,
        external: id.starts_with("ext"),
        organisation: id.starts_with("ext").then(|| "Supplier Ltd".to_owned()),
        status: SystemStatus::Active,
        owner: Some(Email::parse(owner).expect("test e-mail")),
        administrators: [Email::parse(owner).expect("test e-mail")].into(),
        dpia_status: DpiaStatus::Approved,
        dpia_reference: Some(format!("DART-{id}")),
        dpia_review_due: chrono::NaiveDate::from_ymd_opt(2027, 3, 31),
        architecture_checklist: ChecklistStatus::Approved,
    })
}

pub fn item(id: &str, authority: Option<&str>) -> Record {
    Record::DataItem(DataItem {
        id: DataItemId::parse(id).expect("test id"),
        name: format!("Item {id}"),
        description: None,
        classification: Classification::Confidential,
        personal_data: true,
        special_category: false,
        authoritative_system: authority.map(|a| SystemId::parse(a).expect("test id")),
    })
}

pub fn flow(id: &str, source: &str, target: &str, items: &[&str]) -> Record {
    Record::Flow(Flow {
        id: FlowId::parse(id).expect("test id"),
        source: SystemId::parse(source).expect("test id"),
        target: SystemId::parse(target).expect("test id"),
        data_items: items
            .iter()
            .map(|i| DataItemId::parse(i).expect("test id"))
            .collect(),
        method: FlowMethod::Api,
        frequency: Some("daily".into()),
        status: FlowStatus::Active,
        request: None,
        established_on: chrono::NaiveDate::from_ymd_opt(2024, 1, 2),
    })
}

/// A small register: two people, three systems (one external), two items, three flows.
pub fn small() -> Vec<Record> {
    vec![
        person("iao@uni.example"),
        person("other@uni.example"),
        system("sits", "iao@uni.example"),
        system("moodle", "other@uni.example"),
        system("ext-careers", "other@uni.example"),
        item("student-core", Some("sits")),
        item("marks", None),
        flow("f-1", "sits", "moodle", &["student-core", "marks"]),
        flow("f-2", "moodle", "ext-careers", &["student-core"]),
        flow("f-3", "sits", "ext-careers", &["marks"]),
    ]
}
