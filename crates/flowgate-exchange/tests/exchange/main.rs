//! The exchange formats: every malformed input is refused with a message naming the file, the
//! line, the column and the value; every format round-trips.

use flowgate_core::register::{RecordKind, Register};
use flowgate_exchange::{read_csv, read_json, read_xlsx, write_csv, write_json, write_xlsx};

const PEOPLE: &str = "email,name,kind,authorised_until,roles\n\
iao@uni.example,Alison Reid,staff,,\n\
dpt@uni.example,Priya Shah,staff,,data_product_team;dpo\n\
contractor@partner.example,Jordan Price,third_party,2027-06-30,\n";

const SYSTEMS: &str = "id,name,description,kind,external,organisation,status,owner,administrators,dpia_status,dpia_reference,dpia_review_due,architecture_checklist\n\
sits,Student records,\"Applicants, students, marks\",application,false,,active,iao@uni.example,dpt@uni.example,approved,DART-1,2027-03-31,approved\n\
moodle,Moodle,,application,no,,active,iao@uni.example,,in_progress,,,pending\n\
careers,Careers,,saas,YES,Handshake Inc,active,,,none,,,not_required\n";

const ITEMS: &str = "id,name,description,classification,personal_data,special_category,authoritative_system\n\
student-core,Student record — core,,confidential,true,false,sits\n\
wellbeing-case,Wellbeing case notes,,highly_confidential,yes,yes,\n";

const FLOWS: &str = "id,source,target,data_items,method,frequency,status,request,established_on\n\
f-001,sits,moodle,student-core,api,daily,active,RITM1,2020-01-15\n\
f-002,moodle,careers,student-core;wellbeing-case,file_transfer,,retired,,\n";

fn files(replace: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = [
        ("people.csv", PEOPLE),
        ("systems.csv", SYSTEMS),
        ("data_items.csv", ITEMS),
        ("flows.csv", FLOWS),
    ]
    .iter()
    .map(|(n, c)| ((*n).to_owned(), c.as_bytes().to_vec()))
    .collect();
    for (name, content) in replace {
        for f in &mut out {
            if f.0 == *name {
                f.1 = content.as_bytes().to_vec();
            }
        }
    }
    out
}

fn register_of(files: &[(String, Vec<u8>)]) -> Register {
    let parsed =
        read_csv(files, &Register::new()).unwrap_or_else(|p| panic!("valid input refused:\n{p}"));
    Register::from_records(parsed.records.into_iter().map(|(_, r)| r)).expect("consistent")
}

/// Replaces one line of one file and checks the problems reported, in order.
fn check(file: &str, line: usize, new_line: &str, expected: &[&str]) {
    let original = files(&[])
        .into_iter()
        .find(|f| f.0 == file)
        .expect("file")
        .1;
    let text = String::from_utf8(original).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    if line > lines.len() {
        lines.push(new_line);
    } else {
        lines[line - 1] = new_line;
    }
    let changed = lines.join("\n") + "\n";
    let input = files(&[(file, &changed)]);
    let problems = read_csv(&input, &Register::new()).expect_err("refused");
    let got: Vec<String> = problems.problems.iter().map(ToString::to_string).collect();
    assert_eq!(got, expected, "for {file}:{line} = {new_line:?}");
}

#[test]
fn the_sample_is_valid() {
    let reg = register_of(&files(&[]));
    assert_eq!(reg.len(RecordKind::Person), 3);
    assert_eq!(reg.len(RecordKind::Flow), 2);
    let careers = reg.system("careers").expect("careers");
    assert!(careers.external, "YES is a boolean");
    let item = reg.data_item("wellbeing-case").expect("item");
    assert!(item.personal_data && item.special_category);
    assert_eq!(
        reg.system("sits")
            .and_then(|s| s.description.clone())
            .as_deref(),
        Some("Applicants, students, marks")
    );
}

#[test]
fn a_bad_enum_names_the_allowed_values() {
    check(
        "systems.csv",
        3,
        "moodle,Moodle,,app,no,,active,iao@uni.example,,in_progress,,,pending",
        &[
            "systems.csv:3: kind: 'app' is not one of application, database, saas, file_share, paper, other",
        ],
    );
}

#[test]
fn a_dangling_reference_names_the_missing_record() {
    check(
        "flows.csv",
        2,
        "f-001,sits,no-such-system,student-core,api,daily,active,RITM1,2020-01-15",
        &["flows.csv:2: target: no system with id 'no-such-system'"],
    );
    check(
        "systems.csv",
        2,
        "sits,Student records,,application,false,,active,nobody@uni.example,,approved,,,approved",
        &["systems.csv:2: owner: no person with id 'nobody@uni.example'"],
    );
    check(
        "data_items.csv",
        2,
        "student-core,Student record,,confidential,true,false,gone",
        &["data_items.csv:2: authoritative_system: no system with id 'gone'"],
    );
    check(
        "flows.csv",
        3,
        "f-002,moodle,careers,student-core;nothing,file_transfer,,retired,,",
        &["flows.csv:3: data_items: no data item with id 'nothing'"],
    );
}

#[test]
fn a_missing_required_column_is_named() {
    let input = files(&[(
        "flows.csv",
        "id,source,data_items,method,status\nf-1,sits,student-core,api,active\n",
    )]);
    let problems = read_csv(&input, &Register::new()).expect_err("refused");
    assert_eq!(
        problems.problems[0].to_string(),
        "flows.csv:1: target: missing required column"
    );
}

#[test]
fn an_unknown_column_is_an_error() {
    let input = files(&[(
        "data_items.csv",
        "id,name,classification,colour\nx,X,public,red\n",
    )]);
    let problems = read_csv(&input, &Register::new()).expect_err("refused");
    assert!(
        problems.problems[0]
            .to_string()
            .starts_with("data_items.csv:1: colour: unknown column (expected id, name,"),
        "{problems}"
    );
}

#[test]
fn a_duplicate_id_names_both_lines() {
    check(
        "systems.csv",
        5,
        "sits,Again,,application,false,,active,,,none,,,not_required",
        &["systems.csv:5: id: duplicate id 'sits' (first at systems.csv:2)"],
    );
}

#[test]
fn a_bad_date_shows_the_expected_form() {
    check(
        "people.csv",
        4,
        "contractor@partner.example,Jordan Price,third_party,30/06/2027,",
        &["people.csv:4: authorised_until: '30/06/2027' is not a date (use YYYY-MM-DD)"],
    );
}

#[test]
fn a_non_utf8_byte_names_its_line_and_column() {
    let mut bytes = PEOPLE.as_bytes().to_vec();
    let at = PEOPLE.find("Alison").expect("name");
    bytes[at] = 0xE9; // Latin-1 'é', as a spreadsheet saved in the wrong encoding writes it
    let mut input = files(&[]);
    input[0].1 = bytes;
    let problems = read_csv(&input, &Register::new()).expect_err("refused");
    assert_eq!(
        problems.problems[0].to_string(),
        "people.csv:2: name: not valid UTF-8 text (save the file as CSV UTF-8)"
    );
}

#[test]
fn every_problem_in_a_row_and_a_file_is_reported_not_just_the_first() {
    check(
        "systems.csv",
        3,
        "Moodle,,,app,maybe,,active,not-an-email,,in_progress,,soon,pending",
        &[
            "systems.csv:3: dpia_review_due: 'soon' is not a date (use YYYY-MM-DD)",
            "systems.csv:3: external: 'maybe' is not a boolean (use true, false, yes or no)",
            "systems.csv:3: id: 'Moodle' is not a valid id (use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit)",
            "systems.csv:3: kind: 'app' is not one of application, database, saas, file_share, paper, other",
            "systems.csv:3: name: a value is required",
            "systems.csv:3: owner: 'not-an-email' is not a valid e-mail address",
        ],
    );
}

#[test]
fn rules_within_a_row() {
    check(
        "people.csv",
        4,
        "contractor@partner.example,Jordan Price,third_party,,",
        &[
            "people.csv:4: authorised_until: a third party needs the date their authorisation ends (1.2.2)",
        ],
    );
    check(
        "systems.csv",
        4,
        "careers,Careers,,saas,true,,active,,,none,,,not_required",
        &[
            "systems.csv:4: organisation: an external system needs the name of the organisation that runs it (1.3.1, 1.3.2)",
        ],
    );
    check(
        "data_items.csv",
        3,
        "wellbeing-case,Wellbeing case notes,,highly_confidential,no,yes,",
        &[
            "data_items.csv:3: special_category: special category data is personal data: set personal_data to true as well",
        ],
    );
    check(
        "flows.csv",
        2,
        "f-001,sits,sits,student-core,api,daily,active,RITM1,2020-01-15",
        &["flows.csv:2: target: 'sits' is also the source: a flow joins two different systems"],
    );
    check(
        "flows.csv",
        2,
        "f-001,sits,moodle,,api,daily,active,RITM1,2020-01-15",
        &["flows.csv:2: data_items: a flow carries at least one data item"],
    );
}

#[test]
fn references_to_records_already_in_the_register_are_accepted() {
    let reg = register_of(&files(&[]));
    let only_flows = vec![(
        "flows.csv".to_owned(),
        b"id,source,target,data_items,method,status\nf-9,sits,careers,student-core,api,active\n"
            .to_vec(),
    )];
    let parsed = read_csv(&only_flows, &reg).expect("refers to existing systems");
    assert_eq!(parsed.count(RecordKind::Flow), 1);
}

#[test]
fn empty_rows_and_a_byte_order_mark_are_tolerated() {
    let with_bom = format!("\u{feff}{PEOPLE}\n,,,,\n");
    let reg = register_of(&files(&[("people.csv", &with_bom)]));
    assert_eq!(reg.len(RecordKind::Person), 3);
}

#[test]
fn csv_round_trips() {
    let reg = register_of(&files(&[]));
    let written = write_csv(&reg);
    let again = register_of(&written);
    assert_eq!(again.first_difference(&reg), None);
    assert_eq!(write_csv(&again), written, "byte-identical the second time");
}

#[test]
fn json_round_trips_byte_for_byte() {
    let reg = register_of(&files(&[]));
    let json = write_json(&reg);
    let parsed =
        read_json("register.json", &json, &Register::new()).unwrap_or_else(|p| panic!("{p}"));
    let again =
        Register::from_records(parsed.records.into_iter().map(|(_, r)| r)).expect("consistent");
    assert_eq!(write_json(&again), json);
    let doc: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(doc["systems"][0]["id"], "careers", "sorted by id");
    assert_eq!(doc["systems"][0]["external"], true, "booleans as booleans");
    assert_eq!(
        doc["systems"][0]["owner"],
        serde_json::Value::Null,
        "empty values as null"
    );
    assert_eq!(
        doc["people"][1]["roles"],
        serde_json::json!(["data_product_team", "dpo"]),
        "lists as arrays"
    );
}

#[test]
fn json_problems_name_the_list_and_position() {
    let doc = br#"{"systems": [{"id": "a", "name": "A", "kind": "application", "status": "active"},
                               {"id": "b", "name": "B", "kind": "robot", "status": "active", "colour": "red"}],
                   "teams": []}"#;
    let problems = read_json("iar.json", doc, &Register::new()).expect_err("refused");
    let got: Vec<String> = problems.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "iar.json:systems[1]: colour: unknown field",
            "iar.json:systems[1]: kind: 'robot' is not one of application, database, saas, file_share, paper, other",
            "iar.json:teams: unknown list (expected people, systems, data_items or flows)",
        ]
    );
    let problems = read_json("iar.json", b"{not json", &Register::new()).expect_err("refused");
    assert!(
        problems.problems[0]
            .to_string()
            .starts_with("iar.json: not valid JSON: key must be a string at line 1"),
        "{problems}"
    );
}

#[test]
fn xlsx_round_trips_and_names_sheet_and_row() {
    let reg = register_of(&files(&[]));
    let book = write_xlsx(&reg).expect("workbook");
    let parsed = read_xlsx("iar.xlsx", &book, &Register::new()).unwrap_or_else(|p| panic!("{p}"));
    let again =
        Register::from_records(parsed.records.into_iter().map(|(_, r)| r)).expect("consistent");
    assert_eq!(again.first_difference(&reg), None);

    let problems = read_xlsx(
        "iar.xlsx",
        &handmade_workbook("spaceship"),
        &Register::new(),
    )
    .expect_err("refused");
    assert_eq!(
        problems
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "iar.xlsx:systems:3: kind: 'spaceship' is not one of application, database, saas, file_share, paper, other"
        ]
    );
    // Without the mistake, the date cell is read as the date it shows and the boolean as false.
    let parsed = read_xlsx("iar.xlsx", &handmade_workbook("database"), &Register::new())
        .unwrap_or_else(|p| panic!("{p}"));
    let reg =
        Register::from_records(parsed.records.into_iter().map(|(_, r)| r)).expect("consistent");
    let tp = reg.person("tp@partner.example").expect("person");
    assert_eq!(
        tp.authorised_until,
        chrono::NaiveDate::from_ymd_opt(2027, 6, 30)
    );
    assert!(reg.system("bad").is_some_and(|s| !s.external));
}

/// A workbook made the way a person makes one: an instructions sheet first, a real date cell
/// shown as dd/mm/yyyy, boolean cells, and `second_kind` as the kind on row 3 of the systems sheet.
fn handmade_workbook(second_kind: &str) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("Read me").expect("name");
    notes.write_string(0, 0, "Instructions").expect("write");
    let people = wb.add_worksheet();
    people.set_name("people").expect("name");
    for (c, h) in ["email", "name", "kind", "authorised_until"]
        .iter()
        .enumerate()
    {
        people.write_string(0, c as u16, *h).expect("write");
    }
    people
        .write_string(1, 0, "tp@partner.example")
        .expect("write");
    people.write_string(1, 1, "A Contractor").expect("write");
    people.write_string(1, 2, "third_party").expect("write");
    let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2027, 6, 30).expect("date");
    let fmt = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    people
        .write_datetime_with_format(1, 3, &date, &fmt)
        .expect("write");
    let systems = wb.add_worksheet();
    systems.set_name("systems").expect("name");
    for (c, h) in ["id", "name", "kind", "external", "status"]
        .iter()
        .enumerate()
    {
        systems.write_string(0, c as u16, *h).expect("write");
    }
    for (r, (id, kind)) in [("ok", "application"), ("bad", second_kind)]
        .iter()
        .enumerate()
    {
        let r = r as u32 + 1;
        systems.write_string(r, 0, *id).expect("write");
        systems.write_string(r, 1, "A system").expect("write");
        systems.write_string(r, 2, *kind).expect("write");
        systems.write_boolean(r, 3, false).expect("write");
        systems.write_string(r, 4, "active").expect("write");
    }
    wb.save_to_buffer().expect("save")
}
