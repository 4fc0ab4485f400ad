//! A colleague's (or a broken server's) values on this device: whatever a household holds, every
//! read command prints something readable and exits normally; a reader that goes away early ends
//! the command quietly.

use pilar_tests::TestDevice;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use sync_core::model::{DeviceId, Editor, Edits, Household, HouseholdId, MemberId, NewVisit, ReviewDecision, VisitId};
use sync_core::store::DeviceStore;
use sync_core::value::FieldValue;

const BILOKKA: &str = "73.14.01.1001";

/// Text no form would let through, the kinds a hostile colleague or a damaged server could send.
fn hostile_texts() -> Vec<String> {
    vec![
        "Sintetis ".repeat(1200),                                            // 10,800 characters
        "La\u{1b}[2J\u{1b}[31mSintetis\u{7}\r\n\t\u{0}end".to_string(),      // terminal control codes
        "\u{202e}sitetniS aL\u{202c} \u{200f}\u{2066}x\u{2069}".to_string(), // right-to-left overrides
        "👨‍👩‍👧‍👦 Sintetis 🏠🌾".to_string(),                                      // emoji, joiners
        "'; DROP TABLE households; --".to_string(),
        "<script>alert(1)</script>".to_string(),
        "../../../../etc/passwd".to_string(),
        "e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}".to_string(), // combining marks
        String::new(),
        " ".to_string(),
    ]
}

/// A household a colleague "wrote" with hostile values everywhere, stored as if it came from a
/// sync (nothing checked it).
fn plant(device: &TestDevice, texts: &[String], n: usize) -> Vec<HouseholdId> {
    let colleague = Editor {
        user: texts[1 % texts.len()].clone(),
        device: DeviceId::random(),
        now: time::macros::datetime!(2026-11-20 09:00 +8),
    };
    let form = sync_core::form::FormDefinition::default_dtsen();
    let mut store = DeviceStore::open(device.home()).expect("store");
    let mut ids = Vec::new();
    let tx = store.write().expect("write");
    for i in 0..n {
        let text = |k: usize| FieldValue::Text(texts[(i + k) % texts.len()].clone());
        let answers: BTreeMap<String, Option<FieldValue>> = [
            ("head_name", text(0)),
            ("village_code", FieldValue::Text(BILOKKA.into())),
            ("kk_number", text(1)),
            ("rt", text(2)),
            ("rw", text(3)),
            ("address", text(4)),
            ("floor_area_m2", FieldValue::Int(i64::MAX)),
            ("wall_material", FieldValue::Int(-7)),
            ("water_source", text(5)),
            ("dtsen_decile", FieldValue::Decimal(f64::NAN)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v)))
        .collect();
        let id = HouseholdId::random();
        let (mut household, _) =
            Household::create(id, &form.key(), &colleague, &Edits { answers, ..Edits::default() }).expect("create");
        let rival =
            Editor { user: texts[(i + 2) % texts.len()].clone(), device: DeviceId::random(), ..colleague.clone() };
        let mut other = Household::load(id, &household.save(), rival.device).expect("copy");
        let members = (0..3)
            .map(|m| {
                let member: BTreeMap<String, FieldValue> = [
                    ("full_name", text(m)),
                    ("nik", text(m + 1)),
                    ("seq", FieldValue::Int(if m == 2 { i64::MIN } else { 1 })),
                    ("sex", FieldValue::Int(99)),
                    ("birth_date", text(m + 2)),
                    ("relationship", FieldValue::Text("kepala".into())),
                    ("occupation", text(m + 3)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                (MemberId::random(), member)
            })
            .collect();
        let visit = NewVisit {
            id: VisitId::random(),
            outcome: 12345,
            lat: Some(f64::INFINITY),
            lon: Some(-1e308),
            accuracy_m: Some(f64::NAN),
            note: Some(texts[(i + 6) % texts.len()].clone()),
            answers: BTreeMap::new(),
        };
        household
            .apply(
                &colleague,
                &texts[0],
                &Edits {
                    answers: BTreeMap::from([("head_name".to_string(), Some(text(5)))]),
                    add_members: members,
                    visit: Some(visit),
                    ..Edits::default()
                },
                |_| Ok::<(), ()>(()),
            )
            .expect("apply")
            .expect("ok");
        // A concurrent value from a second hostile writer (a conflict to show), then a "review".
        let clash = Edits {
            answers: BTreeMap::from([("head_name".to_string(), Some(text(3))), ("rt".to_string(), Some(text(4)))]),
            ..Edits::default()
        };
        let (_, saved) =
            other.apply(&rival, &texts[3 % texts.len()], &clash, |_| Ok::<(), ()>(())).expect("apply").expect("ok");
        household.apply_changes(&[saved.expect("a change").bytes]).expect("merge");
        household
            .review(&rival, ReviewDecision::Return, Some(&texts[(i + 7) % texts.len()]), uuid::Uuid::new_v4())
            .expect("review");
        tx.save_received(&household, BILOKKA, time::OffsetDateTime::now_utc()).expect("store");
        ids.push(id);
    }
    tx.commit().expect("commit");
    ids
}

/// Run `pilar` and require a normal exit whatever it printed; return stdout.
fn runs(device: &TestDevice, args: &[&str]) -> String {
    let out = device.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "pilar {args:?} panicked: {stderr}");
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1), "pilar {args:?}: {}\n{stderr}", out.status);
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("pilar {args:?} printed invalid UTF-8: {e}"))
}

/// Terminal output carries no raw control characters (they are shown, not obeyed) and no
/// direction overrides, and no line is absurdly long.
fn readable(args: &[&str], out: &str) {
    for line in out.lines() {
        assert!(
            !line.chars().any(|c| (c.is_control() && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "pilar {args:?} printed a raw control character: {line:?}"
        );
        assert!(line.chars().count() <= 2000, "pilar {args:?} printed a line of {} characters", line.chars().count());
    }
}

#[test]
fn every_read_command_prints_hostile_values_readably_and_exits_normally() {
    let device = TestDevice::new();
    device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA]);
    let texts = hostile_texts();
    let ids = plant(&device, &texts, texts.len());
    let mut commands: Vec<Vec<String>> = vec![
        vec!["list".into()],
        vec!["list".into(), "--village".into(), BILOKKA.into()],
        vec!["pending".into()],
        vec!["status".into()],
        vec!["returned".into()],
        vec!["form".into()],
        vec!["repair".into(), "--offline".into()],
    ];
    for q in ["Sintetis", "7314", "DROP", "👨", "\u{202e}", "e\u{301}", "%", "_", "'"] {
        commands.push(vec!["search".into(), q.into()]);
    }
    for id in &ids {
        commands.push(vec!["show".into(), id.to_string()]);
        for field in ["head_name", "kk_number", "rt", "floor_area_m2", "dtsen_decile"] {
            commands.push(vec!["history".into(), id.to_string(), field.into()]);
        }
    }
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = runs(&device, &args);
        readable(&args, &out);
        let mut json = args.clone();
        json.push("--json");
        let out = device.run(&json);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "pilar {json:?} panicked: {stderr}");
        if out.status.success() && !out.stdout.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("pilar {json:?} printed invalid JSON ({e})"));
        }
    }
    // The hostile values are all still there, as data: JSON carries them unchanged.
    let shown = device.json(&["show", &ids[0].to_string()]);
    assert_eq!(shown["household"]["answers"]["rw"], serde_json::json!(texts[3]));
    assert_eq!(shown["conflicts"].as_array().map(Vec::len), Some(1), "head_name: {shown}");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let device = TestDevice::new();
    device.ok(&["init", "--user", "pkh.bilokka01", "--village", BILOKKA]);
    let texts = vec!["La Sintetis panjang sekali ".repeat(40), "Wa Ode Sintetis".into()];
    plant(&device, &texts, 400);
    for args in [vec!["list"], vec!["search", "Sintetis"], vec!["list", "--json"]] {
        let mut child = Command::new(pilar_tests::binary("pilar"))
            .arg("--home")
            .arg(device.home())
            .args(&args)
            .env_remove("PILAR_HOME")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pilar");
        // Like `pilar list | head -1`: read one line's worth, then go away.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 64];
        stdout.read_exact(&mut first).expect("some output");
        drop(stdout);
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "pilar {args:?} | head: {} {stderr}", out.status);
        assert!(stderr.trim().is_empty(), "pilar {args:?} | head printed: {stderr}");
    }
}
