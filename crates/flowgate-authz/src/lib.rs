//! Who may do what: the Cedar policy (`policies/flowgate.cedar`) that ships with Flowgate, or a
//! university's replacement, validated against `policies/flowgate.cedarschema` before it is used.
//!
//! Every API action asks [`Authz::decide`]; a decision carries the ids of the policies that made
//! it (Cedar's diagnostics), so a refusal can say why. The principal is a person from the
//! register, a member of each of their roles; a system's IAO and IAAs come from the register's
//! system records, a request's requester and state from the request. Pure: no I/O.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request as CedarRequest, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use flowgate_core::Email;
use flowgate_core::notice::ChangeNotice;
use flowgate_core::register::{Register, System};
use flowgate_core::workflow::{ActionName, SharingRequest};

/// The policy that ships with Flowgate.
pub const BUILTIN_POLICY: &str = include_str!("../../../policies/flowgate.cedar");
/// The schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../../../policies/flowgate.cedarschema");

/// Why a policy cannot be used. The message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: the policy does not parse:\n{message}")]
    Parse { file: String, message: String },
    #[error("{file}: the policy does not validate against Flowgate's schema:\n{message}")]
    Invalid { file: String, message: String },
    #[error("the built-in schema does not parse: {0}")]
    Schema(String),
}

/// Something the authorizer could not build (a malformed id in the register, say): never an
/// allow.
#[derive(Debug, thiserror::Error)]
#[error("authorization could not be decided: {0}")]
pub struct DecisionError(String);

/// An action about the register as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterAction {
    Raise,
    Assess,
    ListRequests,
    ReadRegister,
    WriteRegister,
    ManagePeople,
    ManageTokens,
    ReadAudit,
    RaiseNotice,
    ReadOutbox,
    ManageWebhooks,
}

impl RegisterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterAction::Raise => "raise",
            RegisterAction::Assess => "assess",
            RegisterAction::ListRequests => "list_requests",
            RegisterAction::ReadRegister => "read_register",
            RegisterAction::WriteRegister => "write_register",
            RegisterAction::ManagePeople => "manage_people",
            RegisterAction::ManageTokens => "manage_tokens",
            RegisterAction::ReadAudit => "read_audit",
            RegisterAction::RaiseNotice => "raise_notice",
            RegisterAction::ReadOutbox => "read_outbox",
            RegisterAction::ManageWebhooks => "manage_webhooks",
        }
    }

    pub const ALL: &'static [RegisterAction] = &[
        RegisterAction::Raise,
        RegisterAction::Assess,
        RegisterAction::ListRequests,
        RegisterAction::ReadRegister,
        RegisterAction::WriteRegister,
        RegisterAction::ManagePeople,
        RegisterAction::ManageTokens,
        RegisterAction::ReadAudit,
        RegisterAction::RaiseNotice,
        RegisterAction::ReadOutbox,
        RegisterAction::ManageWebhooks,
    ];
}

/// An action on a change notice (2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAction {
    /// Answer for an affected system (the resource is that system).
    Answer,
    RecordDone,
    Withdraw,
}

impl NoticeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeAction::Answer => "answer_notice",
            NoticeAction::RecordDone => "record_done",
            NoticeAction::Withdraw => "withdraw_notice",
        }
    }
}

/// An action on one request: viewing it, or a workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    View,
    Step(ActionName),
}

impl RequestAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAction::View => "view",
            RequestAction::Step(a) => a.as_str(),
        }
    }
}

/// Allowed or not, and the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The `@id` of each policy that decided it: the permits that allowed it, or the forbids
    /// that stopped it (none when nothing permitted it).
    pub policies: Vec<String>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.allowed, self.policies.is_empty()) {
            (true, _) => write!(f, "allowed by {}", self.policies.join(", ")),
            (false, true) => f.write_str("no policy permits it"),
            (false, false) => write!(f, "forbidden by {}", self.policies.join(", ")),
        }
    }
}

/// The policy in force, with the schema it was validated against.
#[derive(Debug)]
pub struct Authz {
    policies: PolicySet,
    authorizer: Authorizer,
    /// `@id` annotation of each policy, by Cedar's policy id.
    names: HashMap<String, String>,
    /// The schema's entity types and actions, parsed once: a decision is made per API call.
    types: Types,
}

#[derive(Debug)]
struct Types {
    person: EntityTypeName,
    role: EntityTypeName,
    system: EntityTypeName,
    request: EntityTypeName,
    notice: EntityTypeName,
    register: EntityUid,
    actions: HashMap<&'static str, EntityUid>,
}

impl Types {
    fn new() -> Result<Types, String> {
        let t = |k: &str| {
            EntityTypeName::from_str(&format!("Flowgate::{k}")).map_err(|e| e.to_string())
        };
        let action = t("Action")?;
        let names = RegisterAction::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(
                [
                    NoticeAction::Answer,
                    NoticeAction::RecordDone,
                    NoticeAction::Withdraw,
                ]
                .map(|a| a.as_str()),
            )
            .chain(std::iter::once(RequestAction::View.as_str()))
            .chain(ActionName::ALL.iter().map(|a| a.as_str()));
        Ok(Types {
            person: t("Person")?,
            role: t("Role")?,
            system: t("System")?,
            request: t("Request")?,
            notice: t("ChangeNotice")?,
            register: EntityUid::from_type_name_and_id(t("Register")?, EntityId::new("register")),
            actions: names
                .map(|n| {
                    (
                        n,
                        EntityUid::from_type_name_and_id(action.clone(), EntityId::new(n)),
                    )
                })
                .collect(),
        })
    }

    fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }
}

fn entity(
    uid: EntityUid,
    attrs: Vec<(&str, RestrictedExpression)>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, DecisionError> {
    Entity::new(
        uid,
        attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        parents,
    )
    .map_err(|e| DecisionError(e.to_string()))
}

impl Authz {
    /// The policy that ships with Flowgate.
    pub fn builtin() -> Result<Authz, PolicyError> {
        Authz::from_text(BUILTIN_POLICY, "policies/flowgate.cedar")
    }

    /// Parses a policy and validates it against the schema (strict mode); `file` names it in
    /// errors.
    pub fn from_text(text: &str, file: &str) -> Result<Authz, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Schema(e.to_string()))?;
        let policies = PolicySet::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_owned(),
            message: format!("{:?}", miette_free(&e.to_string())),
        })?;
        let result = Validator::new(schema).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let message = result
                .validation_errors()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(PolicyError::Invalid {
                file: file.to_owned(),
                message,
            });
        }
        let names = policies
            .policies()
            .map(|p| {
                (
                    p.id().to_string(),
                    p.annotation("id").unwrap_or(p.id().as_ref()).to_owned(),
                )
            })
            .collect();
        Ok(Authz {
            policies,
            authorizer: Authorizer::new(),
            names,
            types: Types::new().map_err(PolicyError::Schema)?,
        })
    }

    /// How many policies are in force.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// May `who` do `action` to the register as a whole?
    pub fn decide_register(
        &self,
        register: &Register,
        who: &Email,
        action: RegisterAction,
    ) -> Result<Decision, DecisionError> {
        let mut ents = Vec::new();
        let principal = self.person(register, who, &mut ents)?;
        let resource = self.types.register.clone();
        ents.push(entity(resource.clone(), vec![], HashSet::new())?);
        let mut d = self.decide(principal, &[action.as_str()], resource, ents)?;
        d.pop()
            .ok_or_else(|| DecisionError("no decision was made".into()))
    }

    /// May `who` do `action` to `request`?
    pub fn decide_request(
        &self,
        register: &Register,
        who: &Email,
        action: RequestAction,
        request: &SharingRequest,
    ) -> Result<Decision, DecisionError> {
        let mut d = self.decide_request_each(register, who, &[action], request)?;
        d.pop()
            .ok_or_else(|| DecisionError("no decision was made".into()))
    }

    /// May `who` do each of `actions` to `request`? The entities are built once for all of them
    /// (what a page listing the actions a person may take asks).
    pub fn decide_request_each(
        &self,
        register: &Register,
        who: &Email,
        actions: &[RequestAction],
        request: &SharingRequest,
    ) -> Result<Vec<Decision>, DecisionError> {
        let mut ents = Vec::new();
        let principal = self.person(register, who, &mut ents)?;
        let requester = if &request.ask.requester == who {
            principal.clone()
        } else {
            self.person(register, &request.ask.requester, &mut ents)?
        };
        let source = self.system(
            register,
            request.ask.source.as_str(),
            register.system(request.ask.source.as_str()),
            &mut ents,
        )?;
        let target = self.system(
            register,
            request.ask.target.as_str(),
            register.system(request.ask.target.as_str()),
            &mut ents,
        )?;
        let resource = self.types.uid(&self.types.request, request.id.as_str());
        ents.push(entity(
            resource.clone(),
            vec![
                ("requester", RestrictedExpression::new_entity_uid(requester)),
                ("source", RestrictedExpression::new_entity_uid(source)),
                ("target", RestrictedExpression::new_entity_uid(target)),
                (
                    "state",
                    RestrictedExpression::new_string(request.state.as_str().to_owned()),
                ),
            ],
            HashSet::new(),
        )?);
        let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
        self.decide(principal, &names, resource, ents)
    }

    /// May `who` answer a change notice for `system` (as its IAO or an IAA, 2.5)?
    pub fn decide_answer(
        &self,
        register: &Register,
        who: &Email,
        system: &str,
    ) -> Result<Decision, DecisionError> {
        let mut ents = Vec::new();
        let principal = self.person(register, who, &mut ents)?;
        let resource = self.system(register, system, register.system(system), &mut ents)?;
        let mut d = self.decide(principal, &[NoticeAction::Answer.as_str()], resource, ents)?;
        d.pop()
            .ok_or_else(|| DecisionError("no decision was made".into()))
    }

    /// May `who` record `notice` done or withdraw it?
    pub fn decide_notice(
        &self,
        register: &Register,
        who: &Email,
        action: NoticeAction,
        notice: &ChangeNotice,
    ) -> Result<Decision, DecisionError> {
        let mut ents = Vec::new();
        let principal = self.person(register, who, &mut ents)?;
        let raised_by = if &notice.raised_by == who {
            principal.clone()
        } else {
            self.person(register, &notice.raised_by, &mut ents)?
        };
        let system_id = notice.change.system.as_str();
        let system = self.system(register, system_id, register.system(system_id), &mut ents)?;
        let resource = self.types.uid(&self.types.notice, notice.id.as_str());
        ents.push(entity(
            resource.clone(),
            vec![
                ("raised_by", RestrictedExpression::new_entity_uid(raised_by)),
                ("system", RestrictedExpression::new_entity_uid(system)),
                (
                    "state",
                    RestrictedExpression::new_string(notice.state.as_str().to_owned()),
                ),
            ],
            HashSet::new(),
        )?);
        let mut d = self.decide(principal, &[action.as_str()], resource, ents)?;
        d.pop()
            .ok_or_else(|| DecisionError("no decision was made".into()))
    }

    fn decide(
        &self,
        principal: EntityUid,
        actions: &[&str],
        resource: EntityUid,
        mut ents: Vec<Entity>,
    ) -> Result<Vec<Decision>, DecisionError> {
        // One entity per uid: the principal may also be an IAO or the requester.
        let mut seen = HashSet::new();
        ents.retain(|e| seen.insert(e.uid()));
        // Built by this code from the register, in the schema's shape: validating them against
        // the schema on every decision would double its cost and could only fail on a bug here
        // (the policies themselves were validated strictly when loaded).
        let entities =
            Entities::from_entities(ents, None).map_err(|e| DecisionError(e.to_string()))?;
        actions
            .iter()
            .map(|a| self.decide_one(&principal, a, &resource, &entities))
            .collect()
    }

    fn decide_one(
        &self,
        principal: &EntityUid,
        action: &str,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Result<Decision, DecisionError> {
        let action = self
            .types
            .actions
            .get(action)
            .cloned()
            .ok_or_else(|| DecisionError(format!("unknown action `{action}`")))?;
        let request = CedarRequest::new(
            principal.clone(),
            action,
            resource.clone(),
            Context::empty(),
            None,
        )
        .map_err(|e| DecisionError(e.to_string()))?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, entities);
        if let Some(e) = response.diagnostics().errors().next() {
            return Err(DecisionError(e.to_string()));
        }
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.names
                    .get(AsRef::<str>::as_ref(id))
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect();
        policies.sort();
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies,
        })
    }

    /// A person and their roles (absent from the register: a person with no roles, who the
    /// policy can still name).
    fn person(
        &self,
        register: &Register,
        who: &Email,
        ents: &mut Vec<Entity>,
    ) -> Result<EntityUid, DecisionError> {
        let id = self.types.uid(&self.types.person, who.as_str());
        let person = register.person(who.as_str());
        // Roles are parents only: `principal in Role::"dpo"` needs no Role entity.
        let parents: HashSet<EntityUid> = person
            .iter()
            .flat_map(|p| p.roles.iter())
            .map(|r| self.types.uid(&self.types.role, r.as_str()))
            .collect();
        let kind = person.map_or("unknown", |p| p.kind.as_str());
        ents.push(entity(
            id.clone(),
            vec![("kind", RestrictedExpression::new_string(kind.to_owned()))],
            parents,
        )?);
        Ok(id)
    }

    fn system(
        &self,
        register: &Register,
        id: &str,
        system: Option<&System>,
        ents: &mut Vec<Entity>,
    ) -> Result<EntityUid, DecisionError> {
        let sys_uid = self.types.uid(&self.types.system, id);
        let mut attrs = vec![(
            "external",
            RestrictedExpression::new_bool(system.is_some_and(|s| s.external)),
        )];
        let mut admins = Vec::new();
        if let Some(s) = system {
            if let Some(owner) = &s.owner {
                let o = self.person(register, owner, ents)?;
                attrs.push(("owner", RestrictedExpression::new_entity_uid(o)));
            }
            for a in &s.administrators {
                let p = self.person(register, a, ents)?;
                admins.push(RestrictedExpression::new_entity_uid(p));
            }
        }
        attrs.push(("administrators", RestrictedExpression::new_set(admins)));
        ents.push(entity(sys_uid.clone(), attrs, HashSet::new())?);
        Ok(sys_uid)
    }
}

/// Cedar's parse errors print with source snippets; keep the text, one problem per line.
fn miette_free(s: &str) -> String {
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}
