//! The office web page over plain HTTP (issue 18), what a browser cannot be made to do wrong on
//! purpose: only supervisors and admins sign in (an enumerator's right password is refused with
//! a clear message), the session cookie's flags, a supervisor finds a household by KK number and
//! cannot open another kecamatan's, a state-changing POST without the anti-forgery token or from
//! another origin is refused and changes nothing, a review from the page is the same review as
//! `pilar review`, and a signed-out cookie no longer works.

use pilar_tests::{Campaign, TestDevice};
use reqwest::blocking::{Client, Response};
use reqwest::header;

const PANCA_LAUTANG: &str = "73.14.01";
const BILOKKA: &str = "73.14.01.1001";
const OTHER_KECAMATAN: &str = "73.14.02";
const OTHER_VILLAGE: &str = "73.14.02.1001";
/// A synthetic KK number of Bilokka (README's tour uses it).
const KK: &str = "7314011201209001";

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client")
}

fn password(name: &str) -> String {
    format!("sandi-{name}-12345")
}

/// Sign in through the form; returns the answer (a redirect with the cookie when it worked).
fn sign_in(url: &str, user: &str, password: &str, extra: &[(&str, &str)]) -> Response {
    let mut request =
        client().post(format!("{url}/login")).form(&[("user", user), ("password", password), ("next", "/households")]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().expect("sign-in answer")
}

fn session_cookie(answer: &Response) -> String {
    let set = answer.headers().get(header::SET_COOKIE).expect("a Set-Cookie").to_str().expect("ascii").to_string();
    set.split(';').next().expect("name=value").to_string()
}

fn get(url: &str, cookie: &str) -> Response {
    client().get(url).header(header::COOKIE, cookie).send().expect("page")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with the anti-forgery token") + 19;
    page[at..].split('"').next().expect("token").to_string()
}

fn review_status(supervisor: &TestDevice, id: &str) -> String {
    let listed = supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]);
    let brief = listed.as_array().expect("list").iter().find(|b| b["household"] == id).cloned().expect("listed");
    brief["review"].as_str().unwrap_or_default().to_string()
}

#[test]
fn only_supervisors_sign_in_and_forged_forms_change_nothing() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    campaign.supervisor("spv.lain", &[OTHER_KECAMATAN]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let other = campaign.enumerator("pkh.lain", &[OTHER_VILLAGE]);
    let added =
        ani.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis Kantor", "--kk", KK, "--rt", "003"]);
    let id = added["household"].as_str().expect("id").to_string();
    ani.ok(&["visit", &id, "--outcome", "3"]);
    ani.json(&["sync"]);
    let elsewhere = other.json(&["add", "--village", OTHER_VILLAGE, "--head-name", "Wa Sintetis Lain"]);
    let elsewhere = elsewhere["household"].as_str().expect("id").to_string();
    other.json(&["sync"]);

    // Not signed in: every page leads to the sign-in form.
    let answer = client().get(format!("{url}/households")).send().expect("page");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()[header::LOCATION], "/login?next=/households");

    // An enumerator's right password is refused, clearly; a wrong password says so.
    let refused = sign_in(&url, "pkh.ani", &password("pkh.ani"), &[]);
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get(header::SET_COOKIE).is_none(), "no session for an enumerator");
    assert!(refused.text().expect("page").contains("Akun enumerator tidak dapat masuk ke halaman kantor"));
    let wrong = sign_in(&url, "spv.panca", "bukan-sandinya", &[]);
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().expect("page").contains("Nama pengguna atau kata sandi salah"));
    // A sign-in posted from another site is refused before the password is looked at.
    let forged = sign_in(&url, "spv.panca", &password("spv.panca"), &[("origin", "http://evil.example")]);
    assert_eq!(forged.status(), 403);

    // The supervisor signs in: an HttpOnly, SameSite=Strict cookie (Secure behind TLS).
    let answer = sign_in(&url, "spv.panca", &password("spv.panca"), &[]);
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()[header::LOCATION], "/households");
    let flags = answer.headers()[header::SET_COOKIE].to_str().expect("ascii").to_string();
    assert!(flags.contains("HttpOnly") && flags.contains("SameSite=Strict") && !flags.contains("Secure"), "{flags}");
    let cookie = session_cookie(&answer);
    let over_tls = sign_in(&url, "spv.panca", &password("spv.panca"), &[("x-forwarded-proto", "https")]);
    assert!(over_tls.headers()[header::SET_COOKIE].to_str().expect("ascii").contains("; Secure"));

    // The table, a search by KK number, and the household's page; another kecamatan's is 403.
    let table = get(&format!("{url}/households"), &cookie).text().expect("page");
    assert!(table.contains("La Sintetis Kantor") && !table.contains("Wa Sintetis Lain"), "only the own kecamatan");
    let found = get(&format!("{url}/households?q={KK}"), &cookie).text().expect("page");
    assert!(found.contains("La Sintetis Kantor") && found.contains("1 rumah tangga"), "found by KK number");
    let page = get(&format!("{url}/households/{id}"), &cookie);
    assert_eq!(page.status(), 200);
    let page = page.text().expect("page");
    assert!(page.contains("Menunggu pemeriksaan") && page.contains(KK), "the status and the answers");
    let outside = get(&format!("{url}/households/{elsewhere}"), &cookie);
    assert_eq!(outside.status(), 403, "another kecamatan's household");
    assert!(!outside.text().expect("page").contains("Wa Sintetis Lain"));

    // A review POST without the token, with another's token, or from another origin: refused, nothing changes.
    let csrf = csrf_of(&page);
    let review = |form: &[(&str, &str)], origin: Option<&str>| {
        let mut request =
            client().post(format!("{url}/households/{id}/review")).header(header::COOKIE, &cookie).form(form);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send().expect("answer")
    };
    assert_eq!(review(&[("decision", "approve")], None).status(), 422, "a form without its token is malformed");
    assert_eq!(review(&[("csrf", "0000"), ("decision", "approve")], None).status(), 403);
    assert_eq!(review(&[("csrf", &csrf), ("decision", "approve")], Some("http://evil.example")).status(), 403);
    let cross = client()
        .post(format!("{url}/households/{id}/review"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str()), ("decision", "approve")])
        .send()
        .expect("answer");
    assert_eq!(cross.status(), 403);
    assert_eq!(review_status(&supervisor, &id), "awaiting_review", "nothing changed");

    // From the page itself: the same review `pilar review` makes.
    let same_origin = url.clone();
    let done = review(&[("csrf", &csrf), ("decision", "return"), ("comment", "Foto KK belum ada")], Some(&same_origin));
    assert_eq!(done.status(), 303);
    assert_eq!(review_status(&supervisor, &id), "returned");
    let page = get(&format!("{url}/households/{id}"), &cookie).text().expect("page");
    assert!(page.contains("Dikembalikan") && page.contains("Foto KK belum ada"), "the review thread");

    // Sign out: the cookie is forgotten and no longer signs anyone in.
    let out = client()
        .post(format!("{url}/logout"))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .expect("answer");
    assert_eq!(out.status(), 303);
    assert!(out.headers()[header::SET_COOKIE].to_str().expect("ascii").contains("Max-Age=0"));
    assert_eq!(get(&format!("{url}/households"), &cookie).status(), 303, "the session ended");
}

/// A signed-in supervisor's cookie and the page's anti-forgery token.
fn signed_in(url: &str, user: &str) -> (String, String) {
    let answer = sign_in(url, user, &password(user), &[]);
    assert_eq!(answer.status(), 303, "{user} signs in");
    let cookie = session_cookie(&answer);
    let page = get(&format!("{url}/households"), &cookie).text().expect("page");
    (cookie.clone(), csrf_of(&page))
}

fn post(url: &str, cookie: &str, form: &[(&str, &str)]) -> Response {
    client().post(url).header(header::COOKIE, cookie).form(form).send().expect("answer")
}

#[test]
fn the_dashboard_resolves_a_conflict_and_merges_a_duplicate_from_the_page() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let first = ani.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis", "--kk", KK, "--rt", "002"]);
    let first = first["household"].as_str().expect("id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    // Offline, both measure the floor differently; Budi also records the family again.
    ani.ok(&["visit", &first, "--outcome", "2", "--answer", "floor_area_m2=36"]);
    budi.ok(&["visit", &first, "--outcome", "2", "--answer", "floor_area_m2=42"]);
    let again = budi.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis", "--kk", KK, "--rt", "002"]);
    let again = again["household"].as_str().expect("id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    let (cookie, csrf) = signed_in(&url, "spv.panca");

    let dashboard = get(&format!("{url}/dashboard"), &cookie).text().expect("page");
    assert!(
        dashboard.contains("Bilokka") && dashboard.contains("pkh.ani") && dashboard.contains("pkh.budi"),
        "{dashboard}"
    );
    // The chart counts visits, not households: two visits to one household are two.
    let chart =
        dashboard.split("id=\"visits-per-day\"").nth(1).and_then(|t| t.split("</table>").next()).expect("chart");
    let visits: u64 = chart
        .split("<td style=\"width: 60px\">")
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap_or("").parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(visits, 2, "{chart}");

    let inbox = get(&format!("{url}/conflicts"), &cookie).text().expect("page");
    assert!(
        inbox.contains("answers.floor_area_m2") && inbox.contains("36") && inbox.contains("42"),
        "both values listed"
    );
    let done = post(
        &format!("{url}/households/{first}/resolve"),
        &cookie,
        &[("csrf", &csrf), ("path", "answers.floor_area_m2"), ("value", "40")],
    );
    assert_eq!(done.status(), 303);
    let listed = supervisor.json(&["conflicts", "list", "--area", PANCA_LAUTANG]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "resolved: {listed}");
    let shown = get(&format!("{url}/households/{first}"), &cookie).text().expect("page");
    assert!(shown.contains("40"), "the new value is the answer");

    let pairs = get(&format!("{url}/duplicates"), &cookie).text().expect("page");
    assert!(pairs.contains(&first) && pairs.contains(&again) && pairs.contains("same_kk"), "{pairs}");
    let forged =
        post(&format!("{url}/duplicates/merge"), &cookie, &[("csrf", "x"), ("survivor", &first), ("retired", &again)]);
    assert_eq!(forged.status(), 403);
    let merged = post(
        &format!("{url}/duplicates/merge"),
        &cookie,
        &[("csrf", &csrf), ("survivor", &first), ("retired", &again)],
    );
    assert_eq!(merged.status(), 303);
    let left = supervisor.json(&["duplicates", "list", "--area", PANCA_LAUTANG]);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "merged: {left}");
}

#[test]
fn an_admin_creates_an_enumerator_assigns_villages_revokes_a_device_and_publishes_a_form() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let (spv, _) = signed_in(&url, "spv.panca");
    assert_eq!(get(&format!("{url}/admin/users"), &spv).status(), 403, "supervisors do not administer");
    let answer = sign_in(&url, "admin", pilar_tests::TEST_ADMIN_PASSWORD, &[]);
    let cookie = session_cookie(&answer);
    let csrf = csrf_of(&get(&format!("{url}/admin/users"), &cookie).text().expect("page"));

    // A new enumerator with a generated password, shown once.
    let created =
        post(&format!("{url}/admin/users"), &cookie, &[("csrf", &csrf), ("name", "pkh.baru"), ("role", "enumerator")]);
    assert_eq!(created.status(), 200);
    let created = created.text().expect("page");
    let at = created.find("id=\"generated-password\">").expect("the generated password") + 24;
    let password = created[at..].split('<').next().expect("password").to_string();
    let taken =
        post(&format!("{url}/admin/users"), &cookie, &[("csrf", &csrf), ("name", "pkh.baru"), ("role", "enumerator")]);
    assert_eq!(taken.status(), 409, "a taken name");

    // Villages: one unknown code refuses the whole list, naming the code; then the right list.
    let bad = post(
        &format!("{url}/admin/users/pkh.baru/areas"),
        &cookie,
        &[("csrf", &csrf), ("codes", "73.14.01.1001\n99.99.99.9999")],
    );
    assert_eq!(bad.status(), 422);
    assert!(bad.text().expect("page").contains("99.99.99.9999"), "the bad code is named");
    let users = campaign.admin.json(&["admin", "user", "list"]);
    let baru = users.as_array().expect("users").iter().find(|u| u["name"] == "pkh.baru").cloned().expect("created");
    assert_eq!(baru["villages"], serde_json::json!([]), "nothing changed");
    let good = post(&format!("{url}/admin/users/pkh.baru/areas"), &cookie, &[("csrf", &csrf), ("codes", BILOKKA)]);
    assert_eq!(good.status(), 303);
    let page = get(&format!("{url}/admin/users/pkh.baru"), &cookie).text().expect("page");
    assert!(page.contains(BILOKKA) && page.contains("Bilokka"), "the village with its name");

    // The enumerator logs in from a tablet; the admin sees and revokes the device from the page.
    let tablet = TestDevice::new();
    tablet.login(&campaign.server, "pkh.baru", &password);
    assert_eq!(tablet.json(&["sync"])["outcome"], "complete");
    let device = tablet.json(&["status"])["device"].as_str().expect("device").to_string();
    let devices = get(&format!("{url}/admin/devices"), &cookie).text().expect("page");
    assert!(devices.contains(&device), "{devices}");
    let revoked = post(&format!("{url}/admin/devices/{device}/revoke"), &cookie, &[("csrf", &csrf)]);
    assert_eq!(revoked.status(), 303);
    let wiped = tablet.fails(&["sync"]);
    assert!(wiped.contains("revoked"), "{wiped}");

    // A new password for the enumerator: the old one stops working. A role change is refused
    // while the user holds villages, and made once they hold none.
    let reset = post(&format!("{url}/admin/users/pkh.baru/password"), &cookie, &[("csrf", &csrf)]);
    assert_eq!(reset.status(), 200);
    let reset = reset.text().expect("page");
    let at = reset.find("id=\"generated-password\">").expect("the new password") + 24;
    let new_password = reset[at..].split('<').next().expect("password").to_string();
    assert_ne!(new_password, password);
    let refused = sign_in(&url, "pkh.baru", &password, &[]);
    assert_eq!(refused.status(), 401, "the old password no longer works");
    let role = post(&format!("{url}/admin/users/pkh.baru/role"), &cookie, &[("csrf", &csrf), ("role", "supervisor")]);
    assert_eq!(role.status(), 422);
    assert!(role.text().expect("page").contains("still holds villages"), "refused while holding villages");
    let emptied = post(&format!("{url}/admin/users/pkh.baru/areas"), &cookie, &[("csrf", &csrf), ("codes", "")]);
    assert_eq!(emptied.status(), 303);
    let role = post(&format!("{url}/admin/users/pkh.baru/role"), &cookie, &[("csrf", &csrf), ("role", "supervisor")]);
    assert_eq!(role.status(), 303);
    let promoted = sign_in(&url, "pkh.baru", &new_password, &[]);
    assert_eq!(promoted.status(), 303, "a supervisor now, with the new password");

    // A form version published from the page; an incompatible one is refused with its problems.
    let v1 = campaign.admin.json(&["form"]);
    let mut v2 = v1.clone();
    v2["version"] = serde_json::json!(2);
    v2["title"] = serde_json::json!("Ground check DTSEN 2027");
    let upload = |form: &serde_json::Value| {
        let part =
            reqwest::blocking::multipart::Part::bytes(serde_json::to_vec(form).expect("json")).file_name("dtsen.json");
        let multipart = reqwest::blocking::multipart::Form::new().text("csrf", csrf.clone()).part("file", part);
        client()
            .post(format!("{url}/admin/forms"))
            .header(header::COOKIE, &cookie)
            .multipart(multipart)
            .send()
            .expect("answer")
    };
    assert_eq!(upload(&v2).status(), 303);
    let mut v3 = v2.clone();
    v3["version"] = serde_json::json!(3);
    v3["household"].as_array_mut().expect("fields").retain(|f| f["name"] != "address");
    let refused = upload(&v3);
    assert_eq!(refused.status(), 422);
    let refused = refused.text().expect("page");
    assert!(refused.contains("address") && refused.contains("field_removed"), "{refused}");
    let forms = get(&format!("{url}/admin/forms"), &cookie).text().expect("page");
    assert!(
        forms.contains("dtsen-ground-check@2") && !forms.contains("dtsen-ground-check@3"),
        "only version 2 was published"
    );
}

#[test]
fn an_admin_imports_a_roster_from_the_page_after_fixing_its_broken_row() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let answer = sign_in(&url, "admin", pilar_tests::TEST_ADMIN_PASSWORD, &[]);
    let cookie = session_cookie(&answer);
    let csrf = csrf_of(&get(&format!("{url}/admin/roster"), &cookie).text().expect("page"));
    let good = std::fs::read_to_string(pilar_tests::example_roster()).expect("example roster");
    // Row 3 (the second data row) gets a birth date in the future.
    let broken = good.replacen("1985-07-12", "2085-07-12", 1);
    assert_ne!(broken, good);
    let upload = |text: &str| {
        let part = reqwest::blocking::multipart::Part::bytes(text.as_bytes().to_vec()).file_name("daftar.csv");
        let form = reqwest::blocking::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("layout", "auto")
            .part("file", part);
        client()
            .post(format!("{url}/admin/roster"))
            .header(header::COOKIE, &cookie)
            .multipart(form)
            .send()
            .expect("answer")
    };
    let refused = upload(&broken);
    assert_eq!(refused.status(), 422);
    let report = refused.text().expect("page");
    let row = report.find("<td>3</td>").expect("the broken row is named by its number");
    assert!(report[row..].contains("birth_date"), "with its column: {report}");
    assert!(report.contains("Tidak ada yang diimpor"), "nothing imported");
    assert_eq!(supervisor.json(&["review", "list", "--area", PANCA_LAUTANG]).as_array().map(Vec::len), Some(0));

    let checked = upload(&good);
    assert_eq!(checked.status(), 200);
    let page = checked.text().expect("page");
    let marker = "action=\"/admin/roster/";
    let at = page.find(marker).expect("the commit form") + marker.len();
    let import = page[at..].split('/').next().expect("import id").to_string();
    let done = post(&format!("{url}/admin/roster/{import}/commit"), &cookie, &[("csrf", &csrf), ("chunks", "1")]);
    assert_eq!(done.status(), 200);
    assert!(done.text().expect("page").contains("6 baru"), "six households created");
    let (spv, _) = signed_in(&url, "spv.panca");
    let table = get(&format!("{url}/households"), &spv).text().expect("page");
    assert!(table.contains("6 rumah tangga") && table.contains("Wette'E Bin Ali"), "{table}");
}

#[test]
fn an_error_page_keeps_the_navigation_and_says_why_in_the_pages_language() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let other = campaign.enumerator("pkh.lain", &[OTHER_VILLAGE]);
    let elsewhere = other.json(&["add", "--village", OTHER_VILLAGE, "--head-name", "Wa Sintetis Lain"]);
    let elsewhere = elsewhere["household"].as_str().expect("id").to_string();
    other.json(&["sync"]);
    let (cookie, _) = signed_in(&url, "spv.panca");
    let english = format!("{cookie}; pilar_lang=en");

    // Another kecamatan's household: 403, in Bahasa Indonesia by default, inside the usual
    // frame (the navigation, who is signed in, sign-out); the server's own words as the detail.
    let outside = get(&format!("{url}/households/{elsewhere}"), &cookie);
    assert_eq!(outside.status(), 403);
    let page = outside.text().expect("page");
    assert!(page.contains("Ini di luar wilayah tugas Anda"), "a sentence in Bahasa Indonesia: {page}");
    assert!(page.contains("is outside your kecamatan"), "the server's detail is kept: {page}");
    assert!(page.contains("href=\"/conflicts\"") && page.contains("href=\"/duplicates\""), "the navigation: {page}");
    assert!(page.contains("spv.panca") && page.contains("id=\"logout\""), "who is signed in: {page}");
    assert!(!page.contains("Wa Sintetis Lain"), "nothing of the household");
    // The language switch comes back to the same page.
    assert!(page.contains(&format!("back=/households/{elsewhere}\"")), "{page}");
    let page = get(&format!("{url}/households/{elsewhere}"), &english).text().expect("page");
    assert!(page.contains("This is outside your area") && !page.contains("Ini di luar"), "English: {page}");

    // A household that is not on the server: 404, the same frame.
    let missing = sync_core::model::HouseholdId::random();
    let answer = get(&format!("{url}/households/{missing}"), &cookie);
    assert_eq!(answer.status(), 404);
    let page = answer.text().expect("page");
    assert!(page.contains("Yang diminta tidak ada di server"), "{page}");
    assert!(page.contains(&format!("no household {missing}")), "the server's detail: {page}");
    assert!(page.contains("href=\"/conflicts\"") && page.contains("id=\"logout\""), "the navigation: {page}");
    let page = get(&format!("{url}/households/{missing}"), &english).text().expect("page");
    assert!(page.contains("What was asked for is not on the server"), "{page}");

    // Before sign-in there is no navigation to show: the sign-in form is where it leads.
    assert_eq!(get(&format!("{url}/households/{missing}"), "").status(), 303);
}

#[test]
fn the_roster_check_summary_is_in_bahasa_indonesia_and_in_english_under_the_switch() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let answer = sign_in(&url, "admin", pilar_tests::TEST_ADMIN_PASSWORD, &[]);
    let cookie = session_cookie(&answer);
    let csrf = csrf_of(&get(&format!("{url}/admin/roster"), &cookie).text().expect("page"));
    let good = std::fs::read_to_string(pilar_tests::example_roster()).expect("example roster");
    let broken = good.replacen("1985-07-12", "2085-07-12", 1);
    let summary_of = |cookie: &str| {
        let part = reqwest::blocking::multipart::Part::bytes(broken.as_bytes().to_vec()).file_name("daftar.csv");
        let form = reqwest::blocking::multipart::Form::new().text("csrf", csrf.clone()).part("file", part);
        let answer = client()
            .post(format!("{url}/admin/roster"))
            .header(header::COOKIE, cookie)
            .multipart(form)
            .send()
            .expect("answer");
        assert_eq!(answer.status(), 422);
        let page = answer.text().expect("page");
        let at = page.find("id=\"roster-summary\">").expect("the summary line") + 20;
        page[at..].split('<').next().expect("summary").to_string()
    };
    assert_eq!(
        summary_of(&cookie),
        "14 baris data, 6 rumah tangga (satu baris per orang): 1 kesalahan, 1 peringatan; 5 rumah tangga tanpa \
         kesalahan"
    );
    assert_eq!(
        summary_of(&format!("{cookie}; pilar_lang=en")),
        "14 data row(s), 6 household(s) (one row per person): 1 error(s), 1 warning(s); 5 household(s) without \
         errors"
    );
}

#[test]
fn the_conflict_inbox_and_the_dashboard_show_times_on_the_villages_clock() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let mut ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let mut budi = campaign.enumerator("pkh.budi", &[BILOKKA]);
    let first = ani.json(&["add", "--village", BILOKKA, "--head-name", "La Sintetis", "--kk", KK, "--rt", "002"]);
    let first = first["household"].as_str().expect("id").to_string();
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    // Offline, both measure the floor, at times fixed to the minute (today's: the server refuses
    // work dated long before a device's first login).
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("whole second");
    let now = now.replace_second(0).expect("whole minute");
    let (ani_at, budi_at) = (now - time::Duration::minutes(30), now - time::Duration::minutes(20));
    ani.set_now(&sync_core::model::rfc3339_seconds(ani_at));
    budi.set_now(&sync_core::model::rfc3339_seconds(budi_at));
    ani.ok(&["visit", &first, "--outcome", "2", "--answer", "floor_area_m2=36"]);
    budi.ok(&["visit", &first, "--outcome", "2", "--answer", "floor_area_m2=42"]);
    ani.json(&["sync"]);
    budi.json(&["sync"]);
    let (cookie, _) = signed_in(&url, "spv.panca");
    // Bilokka (Sulawesi Selatan) keeps WITA, UTC+8.
    let on_wita = |at: time::OffsetDateTime| {
        let wall = at.to_offset(time::macros::offset!(+8));
        let (day, clock) = (wall.date(), (wall.hour(), wall.minute()));
        format!("{day} {:02}:{:02} WITA", clock.0, clock.1)
    };
    let stored = |at: time::OffsetDateTime| format!("T{:02}:{:02}", at.hour(), at.minute());

    let inbox = get(&format!("{url}/conflicts"), &cookie).text().expect("page");
    assert!(inbox.contains("answers.floor_area_m2"), "{inbox}");
    assert!(inbox.contains(&on_wita(ani_at)), "Ani's value, on Bilokka's clock ({}): {inbox}", on_wita(ani_at));
    assert!(inbox.contains(&on_wita(budi_at)), "Budi's value, on Bilokka's clock ({}): {inbox}", on_wita(budi_at));
    assert!(!inbox.contains(&stored(ani_at)) && !inbox.contains(&stored(budi_at)), "no stored time shown: {inbox}");

    // The dashboard's last syncs too (the server's clock: only the shape can be known).
    let dashboard = get(&format!("{url}/dashboard"), &cookie).text().expect("page");
    let at = dashboard.find("id=\"devices\"").expect("the devices table");
    let devices = &dashboard[at..];
    assert!(devices.contains(" WITA</td>") || devices.contains(" WITA "), "last syncs on WITA: {devices}");
    assert!(!devices.contains("Z</td>") && !devices.contains("+00:00"), "no stored UTC time shown: {devices}");
}

#[test]
fn a_supervisor_approves_and_returns_from_the_review_queue() {
    let campaign = Campaign::start();
    let url = campaign.server.url().to_string();
    let supervisor = campaign.supervisor("spv.panca", &[PANCA_LAUTANG]);
    let ani = campaign.enumerator("pkh.ani", &[BILOKKA]);
    let mut ids = Vec::new();
    for name in ["La Sintetis Satu", "Wa Sintetis Dua"] {
        let added = ani.json(&["add", "--village", BILOKKA, "--head-name", name, "--rt", "001"]);
        let id = added["household"].as_str().expect("id").to_string();
        ani.ok(&["visit", &id, "--outcome", "3"]);
        ids.push(id);
    }
    ani.json(&["sync"]);
    let (cookie, csrf) = signed_in(&url, "spv.panca");
    let queue = "/households?q=&village=&rt=&status=awaiting_review&outcome=&conflicts=&page=1";
    let page = get(&format!("{url}{queue}"), &cookie).text().expect("page");
    for id in &ids {
        assert!(page.contains(&format!("id=\"approve-{id}\"")), "each row of the queue can be approved: {page}");
        assert!(page.contains(&format!("id=\"return-{id}\"")), "and returned with a comment");
    }

    // Approved from the queue: back to the queue, where it is no longer listed.
    let approve = [("csrf", csrf.as_str()), ("decision", "approve"), ("back", queue)];
    let done = post(&format!("{url}/households/{}/review", ids[0]), &cookie, &approve);
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[header::LOCATION], queue, "back to the queue");
    assert_eq!(review_status(&supervisor, &ids[0]), "approved");
    let page = get(&format!("{url}{queue}"), &cookie).text().expect("page");
    assert!(!page.contains("La Sintetis Satu") && page.contains("Wa Sintetis Dua"), "the queue shrinks");

    // Returned from the queue with a comment; a `back` that leaves the page is not followed.
    let ret = [
        ("csrf", csrf.as_str()),
        ("decision", "return"),
        ("comment", "Foto rumah belum ada"),
        ("back", "https://evil.example/households"),
    ];
    let done = post(&format!("{url}/households/{}/review", ids[1]), &cookie, &ret);
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[header::LOCATION], format!("/households/{}", ids[1]).as_str());
    assert_eq!(review_status(&supervisor, &ids[1]), "returned");
    let page = get(&format!("{url}/households/{}", ids[1]), &cookie).text().expect("page");
    assert!(page.contains("Foto rumah belum ada"), "the comment is in the review thread");
}
