"""The web console (/console/ on the admin listener): in a real browser
(Debian's chromium, headless, driven by python3-selenium through
chromedriver) and through its JSON API with plain HTTP requests.
Screenshots of each page are kept in build/e2e-artifacts (or
$E2E_ARTIFACTS)."""
import json
import os
import signal
import subprocess

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import BIN, SENSORS
import d4sensor

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
ARTIFACTS = os.environ.get("E2E_ARTIFACTS", os.path.join(ROOT, "build", "e2e-artifacts"))
USERS = {"alice": ("alice-password-1", "admin"), "carl": ("carl-password-1", "coordinator"),
         "victor": ("victor-password-1", "viewer"), "nora": ("nora-password-1", None)}
# names from DNS traffic are data: markup in them must show as text
HOSTILE = ["<img/src=x/onerror=alert(1)>.example", "<script>alert(2)</script>.example"]
FAST_MIXER = {"interval": 1, "hold_min": 0, "hold_jitter": 0, "min_sensors": 1,
              "pool_min": 0, "min_batch": 1, "send_fraction": 1.0, "time_resolution": 1}


def lines(tag, n, first=None):
    out = ["1795930651.1||c||s||IN||%s.||A||10.9.0.1||60||1\n" % first] if first else []
    out += ["1795930651.1||c||s||IN||h%d.%s.test.||A||10.9.%d.%d||60||1\n"
            % (i, tag, i // 250, i % 250) for i in range(n)]
    return "".join(out).encode()


def send(relay, sensor, payload):
    """One D4 session, waited out: the relay refuses a sensor's second
    session of a type while its first is open (as d4-core does), so the
    next send from the same sensor must not start before this one ended."""
    before = relay.sensor_records(sensor)
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(SENSORS[sensor][0], SENSORS[sensor][1], payload))
    s.close()
    assert relay.wait_for(lambda: relay.sensor_records(sensor) == before + payload.count(b"\n")
                          and relay.metrics().get("pdns_relay_d4_sessions_active") == 0)


def start_console_relay(relay_factory, redis=None, partners=(), **admin):
    """A relay with the console's users, partner alpha (its outbox file
    only) and the policies in partners (dicts over alpha's)."""
    relay = relay_factory(redis=redis,
                          extra={"mixer": FAST_MIXER, "admin": dict(auth_file="users", **admin),
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    users = os.path.join(relay.dir, "users")
    for name, (password, role) in USERS.items():
        subprocess.run([BIN, "passwd"] + (["--role", role] if role else []) + [users, name],
                       input=password + "\n", text=True, check=True, capture_output=True)
    subprocess.run([BIN, "passwd", "--key", users, "ci"], check=True, capture_output=True)
    os.makedirs(os.path.join(relay.dir, "partners"))
    with open(os.path.join(relay.dir, "partners", "alpha.json"), "w") as f:
        json.dump({"partner": "alpha", "description": "CSIRT Alpha", "tlp": "TLP:AMBER",
                   "rrtypes": {"allow": ["A"]}, "names": {"allow": ["."]},
                   "sensors": {"allow": ["*"]}, "sensor_id": "strip"}, f)
    for pol in partners:
        with open(os.path.join(relay.dir, "partners", pol["partner"] + ".json"), "w") as f:
            json.dump(dict({"rrtypes": {"allow": ["A"]}, "names": {"allow": ["."]},
                            "sensors": {"allow": ["*"]}, "sensor_id": "strip"}, **pol), f)
    relay.start()
    relay.base = "http://127.0.0.1:%d/console" % relay.admin_port
    return relay


@pytest.fixture
def console_relay(relay_factory):
    return start_console_relay(relay_factory)


def login(relay, user):
    """A signed-in requests session and its CSRF token."""
    s = requests.Session()
    r = s.post(relay.base + "/api/login", auth=(user, USERS[user][0]), data="{}")
    assert r.status_code == 200, r.text
    return s, r.json()["csrf"]


@pytest.fixture
def browser():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--lang=en"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def shot(d, name):
    """The whole page (the window made as tall as the page for it)."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    h = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1280, min(max(h, 1000), 6000))
    d.save_screenshot(os.path.join(ARTIFACTS, "console-%s.png" % name))
    d.set_window_size(1280, 1000)


def wait(d, pred, timeout=20):
    return WebDriverWait(d, timeout, poll_frequency=0.1).until(lambda _: pred())


def text(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def sign_in(d, relay, user):
    """With the keyboard only: the user field, Tab, the password, Enter."""
    d.get(relay.base + "/")
    wait(d, lambda: d.find_element(By.ID, "signin").is_displayed())
    d.find_element(By.ID, "user").click()
    d.switch_to.active_element.send_keys(user)
    d.switch_to.active_element.send_keys(Keys.TAB)
    d.switch_to.active_element.send_keys(USERS[user][0] + Keys.ENTER)
    wait(d, lambda: text(d, "#who") == "%s (%s)" % (user, USERS[user][1]))


# WCAG 2 contrast of every piece of text shown: its colour against the
# first opaque background behind it (the page's white when none), measured
# in the browser on the computed styles. 4.5:1 for text, 3:1 for large
# text (24 px, or 18.66 px bold).
CONTRAST_JS = """
function lum(c) {
  const v = c.match(/[\\d.]+/g).map(Number);
  const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
  return [0.2126 * f(v[0]) + 0.7152 * f(v[1]) + 0.0722 * f(v[2]), v.length > 3 ? v[3] : 1];
}
function ground(el) {
  for (; el; el = el.parentElement) {
    const b = getComputedStyle(el).backgroundColor, v = b.match(/[\\d.]+/g).map(Number);
    if (v.length < 4 || v[3] > 0) return b;
  }
  return "rgb(255, 255, 255)";
}
const out = [];
let n = 0;
for (const el of document.querySelectorAll("body *")) {
  if (!Array.from(el.childNodes).some((t) => t.nodeType === 3 && t.textContent.trim())) continue;
  if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
  const st = getComputedStyle(el), [lf, a] = lum(st.color), [lb] = lum(ground(el));
  const r = (Math.max(lf, lb) + 0.05) / (Math.min(lf, lb) + 0.05);
  const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  n++;
  if (a < 1 || r < need) out.push([el.tagName + "#" + el.id, el.textContent.trim().slice(0, 40), r.toFixed(2)]);
}
return [n, out];
"""


def assert_contrast(d):
    n, bad = d.execute_script(CONTRAST_JS)
    assert n > 0 and not bad, bad
    return n


def sensor_cell(d, table, sensor, col):
    """The text of column col in the row of table whose first cell is
    sensor (read in one script: the page replaces its rows every second)."""
    rows = d.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))", table)
    for row in rows:
        if row and row[0] == sensor:
            return row[col]
    return None


def test_sign_in_and_watch_sensors_live(console_relay, browser):
    relay, d = console_relay, browser
    d.get(relay.base + "/")
    wait(d, lambda: d.find_element(By.ID, "signin").is_displayed())
    assert_contrast(d)
    # every input has a label; the page says its language
    for inp in d.find_elements(By.CSS_SELECTOR, "input"):
        assert d.find_elements(By.CSS_SELECTOR, "label[for='%s']" % inp.get_attribute("id"))
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    shot(d, "signin")
    # a wrong password is said on the page
    d.find_element(By.ID, "user").send_keys("alice")
    d.find_element(By.ID, "password").send_keys("not-her-password" + Keys.ENTER)
    wait(d, lambda: "wrong password" in text(d, "#signin-error"))
    sign_in(d, relay, "alice")
    assert not d.find_element(By.ID, "reload").get_attribute("disabled")

    # the first name sensor-b sends is hostile; numbers move as records come
    send(relay, "sensor-b", lines("b", 10, first=HOSTILE[0]))
    send(relay, "sensor-a", lines("a1", 100))
    wait(d, lambda: sensor_cell(d, "overview-sensors", "sensor-a", 2) == "100")
    send(relay, "sensor-a", lines("a2", 150))
    wait(d, lambda: sensor_cell(d, "overview-sensors", "sensor-a", 2) == "250")
    assert "live" in text(d, "#live-state")
    wait(d, lambda: text(d, "#rate-total") not in ("", "–"))
    wait(d, lambda: text(d, "#chart-peak") != "")
    assert_contrast(d)
    shot(d, "overview")

    d.find_element(By.ID, "nav-sensors").click()
    wait(d, lambda: d.find_element(By.ID, "sensors").is_displayed())
    wait(d, lambda: sensor_cell(d, "sensor-table", "sensor-b", 9) == HOSTILE[0])
    # shown as text: no element came out of the name, no script ran
    assert not d.find_elements(By.CSS_SELECTOR, "#sensor-table img, #sensor-table script")
    assert sensor_cell(d, "sensor-table", "sensor-a", 1) == SENSORS["sensor-a"][0]
    seen = sensor_cell(d, "sensor-table", "sensor-a", 8)
    assert seen == "now" or seen.endswith(" s ago"), seen
    assert_contrast(d)
    shot(d, "sensors")

    d.find_element(By.ID, "nav-partners").click()
    wait(d, lambda: d.find_element(By.ID, "partners").is_displayed())
    wait(d, lambda: sensor_cell(d, "partner-table", "alpha", 3) == "TLP:AMBER")
    assert sensor_cell(d, "partner-table", "alpha", 1) == "enabled"
    assert sensor_cell(d, "partner-table", "alpha", 2) == "CSIRT Alpha"
    # one sensor's triples are below the policy's thresholds: denied, by reason
    wait(d, lambda: "threshold" in sensor_cell(d, "partner-table", "alpha", 11))
    assert sensor_cell(d, "partner-table", "alpha", 8) == "file only"
    # each policy in words, as it acts with the relay's settings
    wait(d, lambda: "Records of type A." in text(d, "#words-alpha"))
    said = text(d, "#words-alpha")
    for sentence in ("Partner alpha", "Names: every name.", "Sightings by the sensors: every one.",
                     "A triple goes only once at least 2 allowed sensors saw it.",
                     "No sensor identifier: sensor_id is removed.", "Every batch is labelled "
                     "TLP:AMBER.", "Signed batches are written to the partner's file"):
        assert sentence in said, (sentence, said)
    assert_contrast(d)
    shot(d, "partners")

    # the admin reloads from the page; the relay logs who asked
    d.find_element(By.ID, "reload").click()
    wait(d, lambda: "reloaded" in text(d, "#message"))
    assert "console: alice asks for a reload" in relay.log_text()
    d.find_element(By.ID, "logout").click()
    wait(d, lambda: d.find_element(By.ID, "signin").is_displayed())
    # no alert ever opened (a script from a name would have)
    assert not EC.alert_is_present()(d)


def test_viewer_sees_but_cannot_change(console_relay, browser):
    relay, d = console_relay, browser
    sign_in(d, relay, "victor")
    assert d.find_element(By.ID, "reload").get_attribute("disabled")
    shot(d, "viewer")
    s, token = login(relay, "victor")
    r = s.post(relay.base + "/api/reload", headers={"X-CSRF-Token": token}, data="{}")
    assert r.status_code == 403 and "admin role" in r.json()["error"]
    assert s.get(relay.base + "/api/state").json()["relay_id"] == "e2e"
    # a coordinator may not reload either
    s, token = login(relay, "carl")
    assert s.post(relay.base + "/api/reload", headers={"X-CSRF-Token": token},
                  data="{}").status_code == 403
    assert relay.metrics()['pdns_relay_console_refused_total{reason="role"}'] == 2


def test_changes_need_the_csrf_token_and_sessions_end(console_relay):
    relay = console_relay
    s, token = login(relay, "alice")
    cookie = [c for c in s.cookies if c.name == "pdns_console"][0]
    assert cookie.path == "/console/" and cookie.has_nonstandard_attr("HttpOnly")
    r = s.post(relay.base + "/api/login", auth=("alice", USERS["alice"][0]), data="{}")
    assert "SameSite=Strict" in r.headers["set-cookie"]
    token = r.json()["csrf"]
    # a forged request (another site's form: the cookie, no token) is refused
    assert s.post(relay.base + "/api/reload", data="{}").status_code == 403
    assert s.post(relay.base + "/api/reload", headers={"X-CSRF-Token": "0" * 64},
                  data="{}").status_code == 403
    # another session's token is not this one's
    other, other_token = login(relay, "carl")
    assert s.post(relay.base + "/api/reload", headers={"X-CSRF-Token": other_token},
                  data="{}").status_code == 403
    assert s.post(relay.base + "/api/reload", headers={"X-CSRF-Token": token},
                  data="{}").status_code == 200
    assert relay.metrics()['pdns_relay_console_refused_total{reason="csrf"}'] == 3
    # the last hour's samples, one every 10 s from the start
    h = s.get(relay.base + "/api/history").json()
    assert h["interval_s"] == 10 and len(h["samples"]) >= 1
    assert set(h["samples"][0]) == {"at_ms", "records", "rejected", "stored", "pool", "sent"}
    # no cookie, no data; no role, no session; API keys do not sign in
    assert requests.get(relay.base + "/api/state").status_code == 401
    assert requests.get(relay.base + "/api/events").status_code == 401
    r = requests.post(relay.base + "/api/login", auth=("nora", USERS["nora"][0]), data="{}")
    assert r.status_code == 403 and "no console role" in r.json()["error"]
    r = requests.post(relay.base + "/api/login", auth=("alice", "wrong-password"), data="{}")
    assert r.status_code == 401
    assert requests.get(relay.base + "/api/login").status_code == 405
    # the pages run only their own script
    r = requests.get(relay.base + "/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    # signing out ends the session for good
    assert s.post(relay.base + "/api/logout", headers={"X-CSRF-Token": token},
                  data="{}").status_code == 200
    assert s.get(relay.base + "/api/state").status_code == 401
    assert other.get(relay.base + "/api/session").json()["user"] == "carl"


def test_console_off_without_users(relay_factory, browser):
    relay = relay_factory()
    relay.start()
    base = "http://127.0.0.1:%d/console" % relay.admin_port
    r = requests.get(base + "/api/session")
    assert r.status_code == 503 and "admin.auth_file" in r.json()["error"]
    browser.get(base + "/")
    wait(browser, lambda: "admin.auth_file" in text(browser, "#message"))
    # the public listener never serves the console
    assert requests.get("http://127.0.0.1:%d/console/" % relay.http_port).status_code == 404


def trailers(relay):
    p = os.path.join(relay.dir, "outbox", "alpha.ndjson")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(l) for l in f if l.startswith('{"pdns_relay_batch"')]


def both_sensors(relay, tag):
    """The same triples from both sensors: past the policy's thresholds."""
    for sensor in ("sensor-a", "sensor-b"):
        send(relay, sensor, lines(tag, 20))


def typed(d, el, text):
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)


def open_alpha_editor(relay, d, user, tag):
    """A first batch to alpha (its policy version in the trailer), then
    alpha's policy open in the editor as user: (path, original text, the
    version in force, the text area)."""
    path = os.path.join(relay.dir, "partners", "alpha.json")
    with open(path) as f:
        original = f.read()
    both_sensors(relay, tag)
    assert relay.wait_for(lambda: len(trailers(relay)) >= 1, timeout=20)
    v1 = trailers(relay)[-1]["policy"]
    sign_in(d, relay, user)
    d.execute_script("location.hash = '#policy/alpha'")
    area = d.find_element(By.ID, "policy-text")
    wait(d, lambda: '"partner": "alpha"' in area.get_attribute("value"))
    return path, original, v1, area


def test_policy_editor_check_apply_rollback(console_relay, browser):
    relay, d = console_relay, browser
    path, original, v1, area = open_alpha_editor(relay, d, "carl", "v1")
    assert text(d, "#policy-in-force") == v1
    # an error, seen at its line and column as `policy check` says it
    typed(d, area, '{"partner": "alpha",\n"rrtypes": {"allow": ["A", "AAAA"]},\n'
                   '"names": {"allow": ["."]}, "bogus": 1,\n'
                   '"sensors": {"allow": ["*"]}, "sensor_id": "strip"}')
    wait(d, lambda: "line 3, column" in text(d, "#policy-messages") and
         "bogus" in text(d, "#policy-messages"))
    assert d.find_element(By.ID, "policy-apply").get_attribute("disabled")
    shot(d, "policy-error")
    # fixed: no errors, and what changes for the partner, in words
    typed(d, area, '{"partner": "alpha",\n"rrtypes": {"allow": ["A", "AAAA"]},\n'
                   '"names": {"allow": ["."]},\n'
                   '"sensors": {"allow": ["*"]}, "sensor_id": "strip"}')
    wait(d, lambda: text(d, "#policy-messages") == "No errors.")
    wait(d, lambda: "will now receive AAAA records" in text(d, "#policy-changes"))
    assert d.find_element(By.ID, "policy-apply").get_attribute("disabled")  # no comment yet
    d.find_element(By.ID, "policy-comment").send_keys("AAAA too, as agreed on the call")
    wait(d, lambda: not d.find_element(By.ID, "policy-apply").get_attribute("disabled"))
    d.find_element(By.ID, "policy-apply").click()
    wait(d, lambda: "the relay runs version" in text(d, "#policy-result"))
    v2 = text(d, "#policy-in-force")
    assert v2 != v1 and "AAAA" in open(path).read()
    assert "the partner's next batch will carry it" in text(d, "#policy-result")
    assert_contrast(d)
    shot(d, "policy-applied")
    # the partner's next batch carries the new version, and the page says so
    both_sensors(relay, "v2")
    assert relay.wait_for(lambda: trailers(relay)[-1]["policy"] == v2, timeout=20)
    wait(d, lambda: "the partner's batch %d carried it" % trailers(relay)[-1]["seq"]
         in text(d, "#policy-result"))
    # the history says who, when and why; the first entry is what was there
    wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#policy-history tbody tr")) == 2)
    rows = d.execute_script(
        "return Array.from(document.querySelectorAll('#policy-history tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))")
    assert rows[0][1:4] == ["carl", "AAAA too, as agreed on the call", v2]
    assert rows[1][1] == "–" and rows[1][3] == v1
    # roll back: load the first version, apply it with its comment
    d.find_elements(By.CSS_SELECTOR, "#policy-history tbody tr")[1] \
        .find_element(By.TAG_NAME, "button").click()
    wait(d, lambda: "will no longer receive AAAA records" in text(d, "#policy-changes"))
    assert d.find_element(By.ID, "policy-comment").get_attribute("value") == \
        "back to version " + v1
    wait(d, lambda: not d.find_element(By.ID, "policy-apply").get_attribute("disabled"))
    d.find_element(By.ID, "policy-apply").click()
    wait(d, lambda: text(d, "#policy-in-force") == v1 and
         "the relay runs version" in text(d, "#policy-result"))
    with open(path) as f:
        assert f.read() == original
    assert "console: carl changed partner alpha's policy" in relay.log_text()


def test_policy_editor_read_only_for_viewers(console_relay, browser):
    relay, d = console_relay, browser
    sign_in(d, relay, "victor")
    d.execute_script("location.hash = '#policy/alpha'")
    area = d.find_element(By.ID, "policy-text")
    wait(d, lambda: '"partner": "alpha"' in area.get_attribute("value"))
    assert area.get_attribute("readonly") and \
        d.find_element(By.ID, "policy-apply").get_attribute("disabled")
    s, token = login(relay, "victor")
    body = {"text": '{"partner": "alpha", "rrtypes": {"allow": ["TXT"]}}', "comment": "no"}
    r = s.post(relay.base + "/api/policies/alpha/apply", headers={"X-CSRF-Token": token},
               data=json.dumps(body))
    assert r.status_code == 403
    # a viewer may check (it changes nothing); a bad body is a 400
    r = s.post(relay.base + "/api/policies/alpha/check", headers={"X-CSRF-Token": token},
               data=json.dumps(body))
    assert r.status_code == 200 and "will now receive TXT records" in r.json()["changes"]
    assert s.post(relay.base + "/api/policies/alpha/check", headers={"X-CSRF-Token": token},
                  data="not json").status_code == 400
    # a coordinator must say why; another partner's name may not be taken
    s, token = login(relay, "carl")
    r = s.post(relay.base + "/api/policies/alpha/apply", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": body["text"]}))
    assert r.status_code == 400 and "comment" in r.json()["error"]
    r = s.post(relay.base + "/api/policies/alpha/apply", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": '{"partner": "beta", "rrtypes": {"allow": ["A"]}, '
                                        '"names": {"allow": ["."]}, "sensors": {"allow": '
                                        '["*"]}}', "comment": "rename"}))
    assert r.status_code == 422 and any("must stay" in m["text"] for m in r.json()["messages"])
    assert s.get(relay.base + "/api/policies/nobody").status_code == 404
    assert s.post(relay.base + "/api/policies/alpha/apply", data=json.dumps(body)
                  ).status_code == 403  # no CSRF token
    with open(os.path.join(relay.dir, "partners", "alpha.json")) as f:
        assert "TXT" not in f.read()


def test_policy_preview_on_recent_records(console_relay, browser):
    relay, d = console_relay, browser
    # two sensors see the p2 names (past alpha's thresholds), one sees p1
    send(relay, "sensor-a", lines("p1", 10))
    for sensor in ("sensor-a", "sensor-b"):
        send(relay, sensor, lines("p2", 10, first=HOSTILE[1]))
    assert relay.wait_for(lambda: relay.sensor_records("sensor-b") == 11 and
                          relay.sensor_records("sensor-a") == 21)
    sign_in(d, relay, "carl")
    d.execute_script("location.hash = '#policy/alpha'")
    wait(d, lambda: '"partner": "alpha"' in d.find_element(By.ID, "policy-text")
         .get_attribute("value"))
    d.find_element(By.ID, "preview-explain").send_keys("h3.p1.test")
    d.find_element(By.ID, "preview-run").click()
    wait(d, lambda: "Done: 32 records" in text(d, "#preview-state"))
    summary = dict((r[0], r[1]) for r in d.execute_script(
        "return Array.from(document.querySelectorAll('#preview-summary tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))"))
    assert summary["records in"] == "32" and summary["triples (after merging)"] == "21"
    # two sensors' triples go; one sensor's wait for a second sensor (the
    # mixer's sensor quota) until max_hold, as in the relay itself
    assert summary["sent to the partner"] == "11"
    assert summary["dropped: held past max_hold"] == "10"
    sent = [r[0] for r in d.execute_script(
        "return Array.from(document.querySelectorAll('#preview-sent tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))")]
    assert sorted(sent) == sorted(["h%d.p2.test" % i for i in range(10)] + [HOSTILE[1]])
    assert not d.find_elements(By.CSS_SELECTOR, "#preview-sent script")
    assert "h3.p1.test" in text(d, "#preview-explained") and \
        "dropped by the mixer" in text(d, "#preview-explained")
    shot(d, "policy-preview")
    # the same records under an unsaved text: AAAA only
    s, token = login(relay, "carl")
    body = {"text": '{"partner": "alpha", "rrtypes": {"allow": ["AAAA"]}, "names": '
                    '{"allow": ["."]}, "sensors": {"allow": ["*"]}, "sensor_id": "strip"}'}
    r = s.post(relay.base + "/api/policies/alpha/preview", headers={"X-CSRF-Token": token},
               data=json.dumps(body))
    assert r.status_code == 200
    got = {x["what"]: x["n"] for x in r.json()["summary"]}
    assert got["sent to the partner"] == 0 and got["denied: rrtype"] == 11
    assert len(r.json()["denied"]) == 11 and \
        {x["verdict"] for x in r.json()["denied"]} == {"rrtype"}
    r = s.post(relay.base + "/api/policies/alpha/preview", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": '{"partner": "alpha", "bogus": 1}'}))
    assert r.status_code == 422 and r.json()["messages"]
    with open(os.path.join(relay.dir, "partners", "alpha.json")) as f:
        assert "AAAA" not in f.read()  # a preview writes nothing


def test_long_policies_apply_and_stay_in_the_history(console_relay):
    """Texts and answers beyond 4 KiB (a long list of names)."""
    relay = console_relay
    s, token = login(relay, "carl")
    names = ["zone%03d.example" % i for i in range(400)]
    text = json.dumps({"partner": "alpha", "description": "x" * 200,
                       "rrtypes": {"allow": ["A"]}, "names": {"allow": names},
                       "sensors": {"allow": ["*"]}, "sensor_id": "strip"}, indent=1)
    assert len(text) > 8000
    r = s.post(relay.base + "/api/policies/alpha/apply", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": text, "comment": "a long list"}))
    assert r.status_code == 200, r.text
    assert s.get(relay.base + "/api/policies/alpha").json()["text"] == text
    h = s.get(relay.base + "/api/policies/alpha/history").json()["history"]
    assert h[0]["text"] == text and h[0]["comment"] == "a long list" and len(h) == 2
    r = s.post(relay.base + "/api/policies/alpha/preview", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": text}))
    assert r.status_code == 200 and r.json()["ok"]


@pytest.fixture
def two_person_relay(relay_factory):
    return start_console_relay(relay_factory, two_person=True)


AAAA_TOO = ('{"partner": "alpha", "rrtypes": {"allow": ["A", "AAAA"]}, "names": {"allow": '
            '["."]}, "sensors": {"allow": ["*"]}, "sensor_id": "strip", "tlp": "TLP:AMBER"}')


def test_two_person_rule(two_person_relay, browser):
    """admin.two_person: a coordinator's change waits; its proposer cannot
    approve it; a second coordinator (here the admin) approves it in the
    page and the partner's next batch carries it; the history names both."""
    relay, d = two_person_relay, browser
    path, original, v1, area = open_alpha_editor(relay, d, "carl", "t1")
    # the policy in force, in words, on its own page too
    d.find_element(By.CSS_SELECTOR, "#policy-words-box summary").click()
    wait(d, lambda: "Records of type A." in text(d, "#policy-words"))
    assert text(d, "#policy-apply").startswith("Propose")
    typed(d, area, AAAA_TOO)
    wait(d, lambda: "will now receive AAAA records" in text(d, "#policy-changes"))
    d.find_element(By.ID, "policy-comment").send_keys("AAAA too")
    wait(d, lambda: not d.find_element(By.ID, "policy-apply").get_attribute("disabled"))
    d.find_element(By.ID, "policy-apply").click()
    wait(d, lambda: "waits for a second coordinator" in text(d, "#policy-result"))
    # nothing changed yet; the proposal shows with what it changes
    with open(path) as f:
        assert f.read() == original
    assert text(d, "#policy-in-force") == v1
    assert "proposed by carl" in text(d, "#pending-what") and \
        "will now receive AAAA records" in text(d, "#pending-changes")
    assert d.find_element(By.ID, "pending-approve").get_attribute("disabled")  # his own
    assert_contrast(d)
    shot(d, "policy-pending")
    s, token = login(relay, "carl")
    pend = s.get(relay.base + "/api/policies/alpha").json()["pending"]
    r = s.post(relay.base + "/api/policies/alpha/approve", headers={"X-CSRF-Token": token},
               data=json.dumps({"version": pend["version"]}))
    assert r.status_code == 403 and "second coordinator" in r.json()["error"]
    # a viewer may not approve; an approval must name what it approves
    s2, token2 = login(relay, "victor")
    assert s2.post(relay.base + "/api/policies/alpha/approve", headers={"X-CSRF-Token": token2},
                   data=json.dumps({"version": pend["version"]})).status_code == 403
    s2, token2 = login(relay, "alice")
    r = s2.post(relay.base + "/api/policies/alpha/approve", headers={"X-CSRF-Token": token2},
                data=json.dumps({"version": "0" * 32}))
    assert r.status_code == 409 and pend["version"] in r.json()["error"]
    assert s2.post(relay.base + "/api/policies/alpha/approve", headers={"X-CSRF-Token": token2},
                   data="{}").status_code == 400
    with open(path) as f:
        assert f.read() == original

    # a second coordinator approves it in the page
    d.find_element(By.ID, "logout").click()
    wait(d, lambda: d.find_element(By.ID, "signin").is_displayed())
    sign_in(d, relay, "alice")
    d.execute_script("location.hash = '#partners'")
    wait(d, lambda: "(a change waits for approval)" in text(d, "#words-alpha"))
    d.execute_script("location.hash = '#policy/alpha'")
    wait(d, lambda: d.find_element(By.ID, "policy-pending").is_displayed())
    wait(d, lambda: not d.find_element(By.ID, "pending-approve").get_attribute("disabled"))
    d.find_element(By.ID, "pending-approve").click()
    wait(d, lambda: "the relay runs version" in text(d, "#policy-result"))
    v2 = text(d, "#policy-in-force")
    assert v2 == pend["version"] != v1
    assert not d.find_element(By.ID, "policy-pending").is_displayed()
    with open(path) as f:
        assert f.read() == AAAA_TOO
    both_sensors(relay, "t2")
    assert relay.wait_for(lambda: trailers(relay)[-1]["policy"] == v2, timeout=20)
    wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#policy-history tbody tr")) == 2)
    row = d.find_elements(By.CSS_SELECTOR, "#policy-history tbody tr")[0].text
    assert "carl, approved by alice" in row and "AAAA too" in row
    assert "approved by alice" in relay.log_text()

    # a proposal made against a policy changed since cannot be approved;
    # it can be discarded
    r = s.post(relay.base + "/api/policies/alpha/apply", headers={"X-CSRF-Token": token},
               data=json.dumps({"text": original, "comment": "back"}))
    assert r.status_code == 202
    back = r.json()["pending"]["version"]
    with open(path, "w") as f:
        f.write(AAAA_TOO.replace('"TLP:AMBER"', '"TLP:RED"'))
    relay.proc.send_signal(signal.SIGHUP)
    assert relay.wait_for(lambda: s.get(relay.base + "/api/policies/alpha").json()["version"]
                          not in (v1, v2))
    r = s2.post(relay.base + "/api/policies/alpha/approve", headers={"X-CSRF-Token": token2},
                data=json.dumps({"version": back}))
    assert r.status_code == 409 and "changed since" in r.json()["error"]
    r = s2.post(relay.base + "/api/policies/alpha/discard", headers={"X-CSRF-Token": token2},
                data=json.dumps({"version": back}))
    assert r.status_code == 200 and r.json()["discarded"] == back
    assert "pending" not in s.get(relay.base + "/api/policies/alpha").json()
    assert s2.post(relay.base + "/api/policies/alpha/discard", headers={"X-CSRF-Token": token2},
                   data=json.dumps({"version": back})).status_code == 404


def test_overview_store_latency_and_partner_links(relay_factory, redis_server, workdir, tmp_path,
                                                  browser):
    """The overview shows the store's write latency (the last 10 s) and, per
    partner, its link (up, down, or its outbox file only), the batches in
    its outbox and its delay line: a partner relay that stops shows down,
    with the batches made meanwhile waiting."""
    from test_partners import A_HMAC, A_UUID
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    b = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b",
        "partners_in": [{"name": "e2e", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub")}]})
    b.start()
    relay = start_console_relay(relay_factory, redis=redis_server, partners=[
        {"partner": "alpha", "delay_min": 3600},
        {"partner": "relay-b", "sensor_id": "relay",
         "endpoint": {"host": "127.0.0.1", "port": b.d4_port, "uuid": A_UUID,
                      "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True}}])
    s, _ = login(relay, "alice")

    def partner(name):
        st = s.get(relay.base + "/api/state").json()
        return next(p for p in st["partners"] if p["name"] == name)

    both_sensors(relay, "l1")
    assert relay.wait_for(lambda: partner("relay-b")["link"] == "up" and
                          partner("relay-b")["sent"] > 0, timeout=20)
    assert relay.wait_for(lambda: partner("relay-b")["outbox"] == 0)  # confirmed
    # alpha's records wait an hour in its delay line; it has no link
    assert relay.wait_for(lambda: partner("alpha")["delayed"] == 20)
    assert partner("alpha")["link"] == "none" and "outbox" not in partner("alpha")
    # the store's writes of the last 10 s, as a bucket bound in ms
    assert relay.wait_for(lambda: s.get(relay.base + "/api/state").json()["store"]
                          ["write_p99_ms"] is not None, timeout=30)
    st = s.get(relay.base + "/api/state").json()["store"]
    assert 0 < st["write_p50_ms"] <= st["write_p99_ms"]
    # its size, read with the 10 s samples: both sensors sent the same 20
    assert relay.wait_for(lambda: s.get(relay.base + "/api/state").json()["store"]
                          .get("triples") == 20, timeout=30)

    sign_in(browser, relay, "alice")
    d = browser
    wait(d, lambda: sensor_cell(d, "overview-partners", "relay-b", 1) == "up")
    assert sensor_cell(d, "overview-partners", "alpha", 1) == "file only"
    assert sensor_cell(d, "overview-partners", "alpha", 3) == "20"
    wait(d, lambda: "≤" in text(d, "#store"))
    # the partner relay stops: down, and what is made meanwhile waits
    b.stop()
    both_sensors(relay, "l2")
    wait(d, lambda: sensor_cell(d, "overview-partners", "relay-b", 1) == "down")
    wait(d, lambda: int(sensor_cell(d, "overview-partners", "relay-b", 2)) >= 1)
    assert d.find_element(By.CSS_SELECTOR, "#overview-partners td.link-down")
    assert_contrast(d)
    shot(d, "overview-partner-down")


def test_policy_form_edits_the_json(console_relay, browser):
    """The form of common fields writes into the JSON text (other keys
    kept), which is checked as typed; a text that does not parse disables
    the form; the form follows the text."""
    relay, d = console_relay, browser
    sign_in(d, relay, "carl")
    d.execute_script("location.hash = '#policy/alpha'")
    area = d.find_element(By.ID, "policy-text")
    wait(d, lambda: '"partner": "alpha"' in area.get_attribute("value"))
    wait(d, lambda: d.find_element(By.ID, "f-rrtypes").get_attribute("value") == "A")
    assert d.find_element(By.ID, "f-names-allow").get_attribute("value") == "."
    assert d.find_element(By.ID, "f-min-sensors").get_attribute("value") == "2"
    typed(d, d.find_element(By.ID, "f-rrtypes"), "A, AAAA")
    wait(d, lambda: "will now receive AAAA records" in text(d, "#policy-changes"))
    typed(d, d.find_element(By.ID, "f-min-sensors"), "3")
    typed(d, d.find_element(By.ID, "f-names-deny"), "internal.example\n=www.example.com")
    wait(d, lambda: "min_sensors raised from 2 to 3" in text(d, "#policy-changes") and
         "newly denied: the name www.example.com" in text(d, "#policy-changes"))
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "f-sensor-id")).select_by_value("relay")
    wait(d, lambda: "sensor_id changes from strip to relay" in text(d, "#policy-changes"))
    o = json.loads(area.get_attribute("value"))
    assert o["rrtypes"] == {"allow": ["A", "AAAA"]} and o["min_sensors"] == 3
    assert o["names"] == {"allow": ["."], "deny": ["internal.example", "=www.example.com"]}
    assert o["tlp"] == "TLP:AMBER" and o["description"] == "CSIRT Alpha"  # kept
    wait(d, lambda: text(d, "#policy-messages") == "No errors.")
    assert_contrast(d)
    shot(d, "policy-form")
    # a text that does not parse: the form waits; fixed, it follows the text
    area.send_keys(Keys.CONTROL, Keys.END)
    area.send_keys("}")
    wait(d, lambda: d.find_element(By.ID, "f-rrtypes").get_attribute("disabled"))
    assert "does not parse" in text(d, "#form-state")
    typed(d, area, '{"partner": "alpha", "rrtypes": {"allow": ["TXT"]}}')
    wait(d, lambda: d.find_element(By.ID, "f-rrtypes").get_attribute("value") == "TXT" and
         not d.find_element(By.ID, "f-rrtypes").get_attribute("disabled"))
    # a viewer's form is read only
    d.find_element(By.ID, "logout").click()
    wait(d, lambda: d.find_element(By.ID, "signin").is_displayed())
    sign_in(d, relay, "victor")
    d.execute_script("location.hash = '#policy/alpha'")
    wait(d, lambda: d.find_element(By.ID, "f-rrtypes").get_attribute("value") == "A")
    assert d.find_element(By.ID, "f-rrtypes").get_attribute("disabled")
