//! Several `pilar-server` processes on one PostgreSQL database serve the same devices (issue 14):
//! three enumerators work offline on their own households and on one they share, and each syncs
//! through a load balancer that sends its connections to the two servers in turn. One sync's
//! answer is lost after the server committed it; the retry reaches the other server, which
//! answers with the remembered response. In the end every store holds the server's documents:
//! nothing lost, nothing doubled. And failed logins are counted in the database: guesses spread
//! over both servers throttle the user on both. Runs on PostgreSQL whatever `PILAR_TEST_BACKEND`
//! says.

use pilar_tests::faults::{Cut, Fault, FaultPlan, FaultProxy, FaultRecord};
use pilar_tests::{Backend, Campaign, TEST_ADMIN_PASSWORD, TestDevice, TestServer, seed_from_env};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use sync_core::store::{DeviceStore, PageSizes};

const BILOKKA: &str = "73.14.01.1001";

/// Words for synthetic names (names take letters only).
const WORDS: [&str; 3] = ["Satu", "Dua", "Tiga"];

/// Every household a device holds, with its document heads: equal heads mean equal documents.
fn heads(device: &TestDevice) -> BTreeMap<String, Vec<String>> {
    let store = DeviceStore::open(device.home()).expect("open device store");
    store
        .household_villages()
        .expect("households")
        .into_iter()
        .map(|(id, _)| {
            let mut heads: Vec<String> =
                store.load(id).expect("load household").household.heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            (id.to_string(), heads)
        })
        .collect()
}

/// `pilar sync` until it succeeds (a lost answer fails one attempt as a network failure, exit 3).
fn sync_until_done(device: &TestDevice, who: &str, proxy: &FaultProxy, seed: u64) {
    for _ in 0..5 {
        let mark = proxy.mark();
        let out = device.run(&["sync", "--json"]);
        if out.status.success() {
            let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sync --json prints JSON");
            assert_eq!(summary["rejected"], 0, "{who}: nothing is refused (seed {seed}): {summary}");
            assert_eq!(summary["still_unsent"], 0, "{who}: everything was sent (seed {seed}): {summary}");
            return;
        }
        let exchanges = proxy.log_since(mark);
        assert!(
            exchanges.iter().any(FaultRecord::broke),
            "{who}: pilar sync failed with no broken exchange (seed {seed}): {}\n{exchanges:#?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{who}: a lost answer is a network failure (seed {seed})");
    }
    panic!("{who}: pilar sync did not succeed in 5 attempts (seed {seed})");
}

#[test]
fn three_enumerators_alternating_between_two_servers_on_one_database_converge_with_nothing_lost_or_doubled() {
    let seed = seed_from_env("PILAR_TEST_SEED");
    eprintln!("seed {seed} (PILAR_TEST_SEED)");
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = Campaign::start_on(Backend::Postgres, &[]);
    let second = campaign.server.another_on_the_same_database();
    let servers = [campaign.server.url(), second.url()];
    let names = ["pkh.satu", "tksk.dua", "psm.tiga"];
    // One balancer per device, so that each device's connections (one per `pilar` command)
    // alternate between the two servers whatever the others do.
    let proxies: Vec<FaultProxy> =
        names.iter().map(|_| FaultProxy::start_balanced(&servers, FaultPlan::pass())).collect();
    let devices: Vec<TestDevice> = names
        .iter()
        .zip(&proxies)
        .map(|(name, proxy)| campaign.enumerator_at(name, &[BILOKKA], &proxy.url()))
        .collect();
    // (visits, members) each household must end with.
    let mut recorded: BTreeMap<String, (usize, usize)> = BTreeMap::new();

    for (i, device) in devices.iter().enumerate() {
        sync_until_done(device, names[i], &proxies[i], seed);
    }
    let shared = devices[0].json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis Bersama"])["household"]
        .as_str()
        .expect("household id")
        .to_string();
    recorded.insert(shared.clone(), (0, 0));
    for (i, device) in devices.iter().enumerate() {
        sync_until_done(device, names[i], &proxies[i], seed);
    }

    let mut lost = None;
    for (round, round_word) in WORDS.iter().enumerate() {
        for (i, device) in devices.iter().enumerate() {
            let head = format!("{} Sintetis {}", ["La", "Wa Ode", "Andi", "Becce"][rng.random_range(0..4)], WORDS[i]);
            let own = device.json(&["add", "--village", BILOKKA, "--head-name", &head])["household"]
                .as_str()
                .expect("household id")
                .to_string();
            recorded.insert(own.clone(), (0, 0));
            for target in [own.as_str(), shared.as_str()] {
                let area = rng.random_range(20..200).to_string();
                device.ok(&["visit", target, "--outcome", "2", "--answer", &format!("floor_area_m2={area}")]);
                recorded.get_mut(target).expect("recorded").0 += 1;
            }
            let member = format!("Anak Sintetis {} {round_word}", WORDS[i]);
            device.ok(&[
                "member",
                "add",
                &shared,
                "--name",
                &member,
                "--answer",
                "sex=1",
                "--answer",
                "presence=1",
                "--answer",
                "relationship=3",
            ]);
            recorded.get_mut(&shared).expect("recorded").1 += 1;
            let roof = rng.random_range(1..4).to_string();
            device.ok(&["edit", &shared, "--answer", &format!("roof_material={roof}")]);
        }
        // In the first round one device's sync answer is lost after the server committed it; a
        // colleague's work reaches the feed before the retry, so an answer made again would
        // differ from the one remembered.
        if round == 0 {
            let unlucky = rng.random_range(0..devices.len());
            let colleague = (unlucky + 1) % devices.len();
            // A device on a bad link, already at its smallest page: the cut leaves its page size
            // as it was, so its retry asks exactly what the lost request asked (a retry asking a
            // smaller page is rightly answered anew, see docs/protocol.md).
            let floor = PageSizes { pull_changes: PageSizes::MIN_PULL, pack_households: PageSizes::MIN_PACK };
            DeviceStore::open(devices[unlucky].home()).expect("store").set_page_sizes(floor).expect("page sizes");
            proxies[unlucky].set_plan(FaultPlan::scripted([Fault::DropAnswer(Cut::Reset)]).only(&["sync"]));
            let mark = proxies[unlucky].mark();
            let out = devices[unlucky].run(&["sync", "--json"]);
            assert_eq!(out.status.code(), Some(3), "a lost answer is a network failure (seed {seed})");
            sync_until_done(&devices[colleague], names[colleague], &proxies[colleague], seed);
            sync_until_done(&devices[unlucky], names[unlucky], &proxies[unlucky], seed);
            lost = Some((unlucky, proxies[unlucky].log_since(mark)));
        }
        let mut order: Vec<usize> = (0..devices.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for i in order {
            sync_until_done(&devices[i], names[i], &proxies[i], seed);
        }
    }
    for (i, device) in devices.iter().enumerate() {
        sync_until_done(device, names[i], &proxies[i], seed);
    }

    // The lost answer was retried on the other server, which had the same answer remembered.
    let (unlucky, exchanges) = lost.expect("an answer was lost");
    let syncs: Vec<&FaultRecord> = exchanges.iter().filter(|r| r.kind() == "sync").collect();
    let dropped = syncs.iter().position(|r| r.broke()).expect("the dropped sync answer");
    let (first, retry) = (syncs[dropped], syncs.get(dropped + 1).expect("the retried sync"));
    assert_eq!(first.status, Some(200), "the server committed the batch before its answer was lost: {first}");
    assert_ne!(first.upstream, retry.upstream, "{}: the retry reached the other server", names[unlucky]);
    assert_eq!(
        (retry.status, retry.answer_bytes),
        (Some(200), first.answer_bytes),
        "the other server answered the retry with the remembered response"
    );
    // Every device talked to both servers.
    for (i, proxy) in proxies.iter().enumerate() {
        let used: std::collections::BTreeSet<usize> =
            proxy.log().iter().filter(|r| r.kind() == "sync").map(|r| r.upstream).collect();
        assert_eq!(used.len(), 2, "{} synced with both servers (seed {seed})", names[i]);
    }

    // A new device, straight to the second server, shows what the database holds.
    let fresh = campaign.enumerator_at("pkh.baru", &[BILOKKA], second.url());
    fresh.json(&["sync"]);
    let stored = heads(&fresh);
    assert_eq!(
        stored.keys().cloned().collect::<Vec<_>>(),
        recorded.keys().cloned().collect::<Vec<_>>(),
        "exactly the households recorded (seed {seed})"
    );
    for (i, device) in devices.iter().enumerate() {
        assert_eq!(heads(device), stored, "{} holds the database's documents (seed {seed})", names[i]);
    }
    for (id, (visits, members)) in &recorded {
        let shown = fresh.json(&["show", id]);
        let household = &shown["household"];
        assert_eq!(household["visits"].as_array().expect("visits").len(), *visits, "visits of {id} (seed {seed})");
        assert_eq!(household["members"].as_array().expect("members").len(), *members, "members of {id} (seed {seed})");
    }
    // Each change is stored once, whichever server took it.
    let doubled = campaign.server.query("SELECT count(*) - count(DISTINCT hash) FROM changes", &[]);
    assert_eq!(doubled[0][0].int(), 0);
    drop((fresh, devices, proxies, second));
}

/// `POST /v1/login` for `user` on `server`: the status and `Retry-After`.
fn login_status(server: &str, user: &str, password: &str) -> (reqwest::StatusCode, Option<String>) {
    let device = sync_core::model::DeviceId::random();
    let body = serde_json::json!({ "user": user, "password": password, "device": device, "device_name": "tablet uji" });
    let response =
        reqwest::blocking::Client::new().post(format!("{server}/v1/login")).json(&body).send().expect("login request");
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
    (response.status(), retry_after)
}

#[test]
fn wrong_passwords_on_one_server_then_the_other_throttle_the_user_on_both() {
    let first = TestServer::start_on(Backend::Postgres, &[], Some(TEST_ADMIN_PASSWORD));
    let second = first.another_on_the_same_database();
    let wrong: Vec<String> = (0..8).map(|i| format!("tebakan-salah-{i}")).collect();
    // Three guesses on the first server, two on the second: five in all, each answered.
    for (i, password) in wrong.iter().take(5).enumerate() {
        let server = if i < 3 { first.url() } else { second.url() };
        let (status, _) = login_status(server, "admin", password);
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "guess {} is answered", i + 1);
    }
    // The sixth waits on the second server, which saw only two of them.
    let (status, retry_after) = login_status(second.url(), "admin", &wrong[5]);
    assert_eq!(status, reqwest::StatusCode::TOO_MANY_REQUESTS, "the sixth guess, on the second server");
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // And on the first, the right password included.
    let (status, retry_after) = login_status(first.url(), "admin", TEST_ADMIN_PASSWORD);
    assert_eq!(status, reqwest::StatusCode::TOO_MANY_REQUESTS, "the right password waits on the first server");
    assert!(retry_after.is_some());
    // Five failures were counted, once each, under a keyed hash of the name.
    let rows = first.query("SELECT kind, subject, failures FROM login_failures ORDER BY kind", &[]);
    let counts: Vec<(String, i64)> = rows.iter().map(|r| (r[0].text().to_string(), r[2].int())).collect();
    assert_eq!(counts, [("address".to_string(), 5), ("user".to_string(), 5)]);
    assert!(rows.iter().all(|r| !r[1].text().contains("admin")), "no user name in the table");
    drop(second);
}
