//! The records of the Information Asset Register (IAR): people, systems, data items and flows,
//! with an enum for every closed list in `product.md` ("The register").
//!
//! Lists that are sets in meaning (roles, administrators, a flow's data items) are `BTreeSet`s, so
//! that a record has one canonical form: two imports of the same spreadsheet give equal records,
//! the same audit payloads and byte-identical exports.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{DataItemId, Email, FlowId, SystemId};

/// A value outside a closed list. The message lists what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not one of {allowed}")]
pub struct UnknownVariant {
    pub value: String,
    pub allowed: String,
}

macro_rules! closed_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the spreadsheet spelling, ignoring case and surrounding white space.
            pub fn parse(value: &str) -> Result<Self, UnknownVariant> {
                let v = value.trim();
                $(if v.eq_ignore_ascii_case($text) { return Ok($name::$variant); })+
                Err(UnknownVariant {
                    value: v.to_owned(),
                    allowed: [$($text),+].join(", "),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use closed_enum;

closed_enum!(
    /// Who a person is to the university (1.2.2: staff, students and authorised third parties).
    PersonKind { Staff = "staff", Student = "student", ThirdParty = "third_party" }
);

closed_enum!(
    /// Global roles. IAO and IAA are not roles: they come from the systems a person owns or
    /// administers.
    Role { DataProductTeam = "data_product_team", Dpo = "dpo", ProductLine = "product_line", Admin = "admin" }
);

closed_enum!(
    /// What kind of information system this is. Paper counts (1.2.1).
    SystemKind {
        Application = "application",
        Database = "database",
        Saas = "saas",
        FileShare = "file_share",
        Paper = "paper",
        Other = "other",
    }
);

closed_enum!(
    /// Where a system is in its life.
    SystemStatus { Proposed = "proposed", Active = "active", Retired = "retired" }
);

closed_enum!(
    /// The state of a system's Data Protection Impact Assessment (1.3.3, 2.2), done in DART.
    DpiaStatus { None = "none", InProgress = "in_progress", Approved = "approved", Rejected = "rejected" }
);

closed_enum!(
    /// The ICT Architecture Checklist for a system (2.2).
    ChecklistStatus { NotRequired = "not_required", Pending = "pending", Approved = "approved", Rejected = "rejected" }
);

closed_enum!(
    /// How sensitive a data item is.
    Classification {
        Public = "public",
        Internal = "internal",
        Confidential = "confidential",
        HighlyConfidential = "highly_confidential",
    }
);

closed_enum!(
    /// How a flow moves the data.
    FlowMethod {
        Api = "api",
        FileTransfer = "file_transfer",
        DatabaseLink = "database_link",
        Replication = "replication",
        Manual = "manual",
        Other = "other",
    }
);

closed_enum!(
    /// Whether a flow still runs. Retired flows are kept for history and never count as existing.
    FlowStatus { Active = "active", Retired = "retired" }
);

/// A person: a requester, an IAO or IAA of systems, or one of the global roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub email: Email,
    pub name: String,
    pub kind: PersonKind,
    /// For third parties: the last day they are authorised (1.2.2). Required for them.
    pub authorised_until: Option<NaiveDate>,
    pub roles: BTreeSet<Role>,
}

/// An information system (1.3.1, 1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub id: SystemId,
    pub name: String,
    pub description: Option<String>,
    pub kind: SystemKind,
    /// Outside the university; then `organisation` names who runs it.
    pub external: bool,
    pub organisation: Option<String>,
    pub status: SystemStatus,
    /// The Information Asset Owner (2.3, 2.5). Legacy registers have gaps, so it may be missing.
    pub owner: Option<Email>,
    /// The Information Asset Administrators (2.5).
    pub administrators: BTreeSet<Email>,
    pub dpia_status: DpiaStatus,
    /// The DPIA's reference in the Data Activity Risk-assessment Tool (DART).
    pub dpia_reference: Option<String>,
    pub dpia_review_due: Option<NaiveDate>,
    pub architecture_checklist: ChecklistStatus,
}

/// A data item: an information asset or data set ("Student record — core").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataItem {
    pub id: DataItemId,
    pub name: String,
    pub description: Option<String>,
    pub classification: Classification,
    pub personal_data: bool,
    pub special_category: bool,
    /// The one system where this data may be created and changed (1.3.4, 1.3.5); `None` while it
    /// has not been established.
    pub authoritative_system: Option<SystemId>,
}

/// An interface / data flow recorded in the register (2.4). Read-only at its target (1.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: FlowId,
    pub source: SystemId,
    pub target: SystemId,
    pub data_items: BTreeSet<DataItemId>,
    pub method: FlowMethod,
    pub frequency: Option<String>,
    pub status: FlowStatus,
    /// The request that established it (a Flowgate request or a service desk reference).
    pub request: Option<String>,
    pub established_on: Option<NaiveDate>,
}

/// Which of the four kinds of record a record is; the order is the dependency order (systems
/// name people, data items name systems, flows name both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Person,
    System,
    DataItem,
    Flow,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Person,
        RecordKind::System,
        RecordKind::DataItem,
        RecordKind::Flow,
    ];

    /// The table / sheet / file stem that holds this kind: `people`, `systems`, ...
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::Person => "people",
            RecordKind::System => "systems",
            RecordKind::DataItem => "data_items",
            RecordKind::Flow => "flows",
        }
    }

    /// How a person would name one: "person", "system", "data item", "flow".
    pub fn noun(self) -> &'static str {
        match self {
            RecordKind::Person => "person",
            RecordKind::System => "system",
            RecordKind::DataItem => "data item",
            RecordKind::Flow => "flow",
        }
    }
}

/// Any one record of the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Person(Person),
    System(System),
    DataItem(DataItem),
    Flow(Flow),
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Person(_) => RecordKind::Person,
            Record::System(_) => RecordKind::System,
            Record::DataItem(_) => RecordKind::DataItem,
            Record::Flow(_) => RecordKind::Flow,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Record::Person(p) => p.email.as_str(),
            Record::System(s) => s.id.as_str(),
            Record::DataItem(d) => d.id.as_str(),
            Record::Flow(f) => f.id.as_str(),
        }
    }

    /// The record as a JSON object whose field names are the CSV columns: the export form and the
    /// audit payload.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Record::Person(r) => serde_json::to_value(r),
            Record::System(r) => serde_json::to_value(r),
            Record::DataItem(r) => serde_json::to_value(r),
            Record::Flow(r) => serde_json::to_value(r),
        };
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        value.unwrap_or(serde_json::Value::Null)
    }

    /// The inverse of [`Record::to_json`].
    pub fn from_json(
        kind: RecordKind,
        value: serde_json::Value,
    ) -> Result<Record, serde_json::Error> {
        Ok(match kind {
            RecordKind::Person => Record::Person(serde_json::from_value(value)?),
            RecordKind::System => Record::System(serde_json::from_value(value)?),
            RecordKind::DataItem => Record::DataItem(serde_json::from_value(value)?),
            RecordKind::Flow => Record::Flow(serde_json::from_value(value)?),
        })
    }
}
