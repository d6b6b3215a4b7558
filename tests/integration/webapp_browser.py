#!/usr/bin/env python3
"""Drives headless Chromium through quince-tenant webapp (started by test_webapp.sh).

Reads one JSON argument file (see test_webapp.sh for the keys). Prints "PASS: name" or
"FAIL: name: reason" per check, like every integration test, and saves a screenshot after each
step in the screenshot directory (kept with the test's logs when something fails). Every wait is
for a condition in the page (WebDriverWait), never for a fixed time.
"""
import json
import ssl
import subprocess
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CFG = json.load(open(sys.argv[1]))
BASE = CFG["base"]
SHOTS = CFG["shots"]
WAIT = CFG.get("wait", 60)
failures = 0


def ok(name):
    print("PASS: " + name, flush=True)


def bad(name, why):
    global failures
    failures += 1
    print("FAIL: %s: %s" % (name, " ".join(str(why).split())[:400]), flush=True)


def shot(drv, name):
    try:
        drv.save_screenshot("%s/%s.png" % (SHOTS, name))
    except WebDriverException:
        pass


def wait_for(drv, name, cond, secs=None):
    """Waits until cond(driver) is truthy; returns its value or None (with a FAIL)."""
    try:
        return WebDriverWait(drv, secs or WAIT, poll_frequency=0.2).until(
            lambda d: cond(d))
    except TimeoutException:
        shot(drv, "timeout-" + name)
        bad(name, "timed out on %s" % drv.current_url)
        return None


def text_of(drv, css):
    els = drv.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else None


def row(drv, uuid):
    rows = drv.find_elements(By.CSS_SELECTOR, '#agents tbody tr[data-agent="%s"]' % uuid)
    return rows[0] if rows else None


def row_state(drv, uuid):
    r = row(drv, uuid)
    if not r:
        return None
    try:
        return (r.get_attribute("data-state"),
                int(r.find_element(By.CSS_SELECTOR, "td.count").text or "0"))
    except (WebDriverException, ValueError):
        return None


def pwned(drv):
    return drv.execute_script("return window.__pwned === undefined ? null : String(window.__pwned);")


def fetch_status(drv, method, path, body, headers):
    """Status of a same-origin fetch() from the page (the session cookie goes with it)."""
    return drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[1], {method: arguments[0], credentials: 'same-origin', headers: arguments[3],"
        " body: arguments[2]}).then(r => done(r.status)).catch(e => done(String(e)));",
        method, path, body, headers)


def raw_get(drv, path):
    """The page as the server sends it (no script runs), with the browser's session cookie."""
    cookie = "; ".join("%s=%s" % (c["name"], c["value"]) for c in drv.get_cookies())
    ctx = ssl.create_default_context(cafile=CFG["cacert"])
    req = urllib.request.Request(BASE + path, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return r.status, r.read().decode("utf-8")


def upload(drv, name, kind, path, excludes=None, agents=()):
    drv.get(BASE + "/upload")
    if not wait_for(drv, "upload page ready " + name,
                    lambda d: d.find_elements(By.CSS_SELECTOR, '#upload-form[data-ready="yes"]')):
        return None
    drv.find_element(By.ID, "name").send_keys(name)
    drv.find_element(By.CSS_SELECTOR, 'input[name="kind"][value="%s"]' % kind).click()
    drv.find_element(By.ID, "file").send_keys(path)
    if excludes:
        drv.find_element(By.ID, "excludes").send_keys(excludes)
    for a in agents:
        drv.find_element(By.CSS_SELECTOR, '#agent-choices input[data-agent="%s"]' % a).click()
    drv.find_element(By.ID, "upload-submit").click()
    return wait_for(drv, "upload answer " + name,
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#upload-ok, #upload-error"))


def main(drv):
    u1, u2, hostile = CFG["uuid1"], CFG["uuid2"], CFG["hostile_uuid"]

    # Not logged in: the page sends the browser to the login form.
    drv.get(BASE + "/")
    if wait_for(drv, "login form", lambda d: d.find_elements(By.ID, "token")):
        ok("without a session the page asks for the login token")

    # Log in with the token: a session cookie HttpOnly, Secure, SameSite=Strict.
    drv.get(CFG["login_url"])
    if wait_for(drv, "logged in", lambda d: d.find_elements(By.CSS_SELECTOR, "#agents tbody tr")):
        ok("log in with the token")
    cookies = {c["name"]: c for c in drv.get_cookies()}
    c = cookies.get("quince_session")
    if c and c.get("httpOnly") and c.get("secure") and c.get("sameSite") == "Strict":
        ok("session cookie is HttpOnly, Secure, SameSite=Strict")
    else:
        bad("session cookie is HttpOnly, Secure, SameSite=Strict", c)

    # An allowlist with one bad line: the tenant's parser names the line.
    if upload(drv, "web-bad", "allowlist", CFG["bad_allowlist"]):
        shot(drv, "upload-bad")
        line = text_of(drv, "#error-line")
        err = text_of(drv, "#upload-error")
        if line == str(CFG["bad_line"]) and "not an allowlist line" in (err or "") and CFG["bad_text"] in (err or ""):
            ok("a bad allowlist line is shown with its line number")
        else:
            bad("a bad allowlist line is shown with its line number", "line %r: %r" % (line, err))

    # The same allowlist as below under another name, assigned to no agent yet: the second agent
    # is added with it.
    if upload(drv, CFG["base_policy"], "allowlist", CFG["good_allowlist"]):
        if text_of(drv, "#upload-ok") and not drv.find_elements(By.CSS_SELECTOR, "#assigned li"):
            ok("an allowlist is stored without assigning it")
        else:
            bad("an allowlist is stored without assigning it", text_of(drv, "#result"))

    # A runtime-policy JSON goes through the same checks.
    if upload(drv, "web-json", "policy", CFG["json_policy"]):
        res = text_of(drv, "#upload-ok")
        if res and "stored" in res:
            ok("a runtime-policy JSON is checked and stored")
        else:
            bad("a runtime-policy JSON is checked and stored", text_of(drv, "#result"))
    if upload(drv, "web-json-bad", "policy", CFG["bad_allowlist"]):
        err = text_of(drv, "#upload-error")
        if err and "Runtime policy is malformatted" in err:
            ok("an allowlist sent as a runtime policy is refused with the parser's reason")
        else:
            bad("an allowlist sent as a runtime policy is refused with the parser's reason", text_of(drv, "#result"))

    # Add the second agent through the form, with that policy (the same checks as -c add).
    drv.get(BASE + "/add")
    if wait_for(drv, "add form", lambda d: d.find_elements(By.ID, "add-form")):
        drv.find_element(By.ID, "uuid").send_keys(u2)
        drv.find_element(By.ID, "policy").send_keys(CFG["base_policy"])
        drv.find_element(By.ID, "add-submit").click()
        msg = wait_for(drv, "add answer", lambda d: text_of(d, "#message"))
        shot(drv, "add-agent")
        if msg and "added to the verifier" in msg:
            ok("add agent from the page")
        else:
            bad("add agent from the page", msg)
    drv.get(BASE + "/add")
    if wait_for(drv, "add form 2", lambda d: d.find_elements(By.ID, "add-form")):
        drv.find_element(By.ID, "uuid").send_keys("not a uuid!")
        drv.find_element(By.ID, "add-submit").click()
        msg = wait_for(drv, "add refused", lambda d: text_of(d, "#message.error"))
        if msg and "invalid agent uuid" in msg:
            ok("add agent: a bad uuid is refused with the reason")
        else:
            bad("add agent: a bad uuid is refused with the reason", msg)

    # Both agents attested (state Get Quote and a growing attestation count), refreshed by JS.
    drv.get(BASE + "/")
    first = wait_for(drv, "both agents attested", lambda d: all(
        (s := row_state(d, u)) and s[0] == "Get Quote" and s[1] > 0 for u in (u1, u2)) and
        (row_state(d, u1), row_state(d, u2)))
    if first:
        ok("both agents attested")
        if wait_for(drv, "table refreshes", lambda d: (s := row_state(d, u1)) and s[1] > first[0][1]):
            ok("the table refreshes by itself")
    counts = text_of(drv, "#counts")
    if counts and "Get Quote: 2" in counts:
        ok("counts per state")
    else:
        bad("counts per state", counts)
    shot(drv, "agents")

    # Filter by state.
    wait_for(drv, "filter has states", lambda d: d.find_elements(By.CSS_SELECTOR, '#filter option[value="Get Quote"]'))
    Select(drv.find_element(By.ID, "filter")).select_by_value("Get Quote")
    if wait_for(drv, "filter", lambda d: row(d, u1) is not None and row(d, u2) is not None and
                row(d, hostile) is None):
        ok("filter by state")
    Select(drv.find_element(By.ID, "filter")).select_by_value("")
    wait_for(drv, "filter off", lambda d: row(d, u1) is not None)

    # A hostile address from the registrar is shown as text; nothing runs.
    r = wait_for(drv, "hostile row", lambda d: row(d, hostile))
    addr = r.find_element(By.CSS_SELECTOR, "td.addr").text if r else ""
    if CFG["hostile_ip"] in addr and pwned(drv) is None:
        ok("a hostile agent address is shown as text, nothing runs (table)")
    else:
        bad("a hostile agent address is shown as text, nothing runs (table)", "%r pwned=%r" % (addr, pwned(drv)))
    drv.get(BASE + "/agent/" + hostile)
    reg = wait_for(drv, "hostile agent page", lambda d: text_of(d, "#registrar-data"))
    if reg and CFG["hostile_ip"] in reg and pwned(drv) is None:
        ok("a hostile agent address is shown as text, nothing runs (agent page)")
    else:
        bad("a hostile agent address is shown as text, nothing runs (agent page)", "%r pwned=%r" % (reg, pwned(drv)))

    # The good one, with excludes, stored and assigned to the second agent.
    pname = CFG["policy_name"]
    if upload(drv, pname, "allowlist", CFG["good_allowlist"], CFG["excludes"], [u2]):
        shot(drv, "upload-good")
        res = text_of(drv, "#upload-ok")
        li = drv.find_elements(By.CSS_SELECTOR, '#assigned li[data-agent="%s"][data-ok="yes"]' % u2)
        if res and li and pwned(drv) is None:
            ok("a good allowlist is stored and assigned")
        else:
            bad("a good allowlist is stored and assigned", text_of(drv, "#result"))
    drv.get(BASE + "/")
    if wait_for(drv, "agent 2 attests with the new policy", lambda d: (r := row(d, u2)) and
                r.find_element(By.CSS_SELECTOR, "td.policy").text == pname and
                (s := row_state(d, u2)) and s[0] == "Get Quote" and s[1] > 0):
        ok("the agent attests with the assigned policy (its name shown as text)")
    if pwned(drv) is not None:
        bad("a hostile policy name does not run", pwned(drv))

    # Policies: show the counts, excludes and digest.
    drv.get(BASE + "/policy/" + urllib.parse.quote(pname, safe=""))
    data = wait_for(drv, "policy page", lambda d: text_of(d, "#policy-data"))
    excl = text_of(drv, "#excludes") or ""
    if data and ("Paths %d" % CFG["good_paths"]) in data and CFG["exclude_pattern"] in excl and \
            len(text_of(drv, "#digest") or "") == 64 and u2 in data:
        ok("policy page: entry counts, excludes, digest, user")
    else:
        bad("policy page: entry counts, excludes, digest, user", "%r %r" % (data, excl))

    # An unlisted file on agent 2: Invalid Quote, the file named in the failure entries.
    subprocess.run(CFG["inject"], check=True)
    drv.get(BASE + "/")
    if wait_for(drv, "agent 2 Invalid Quote", lambda d: (s := row_state(d, u2)) and s[0] == "Invalid Quote"):
        ok("an unlisted file turns the agent to Invalid Quote")
    shot(drv, "invalid-quote")
    drv.get(BASE + "/agent/" + u2)
    fails = wait_for(drv, "failure entries", lambda d: text_of(d, "#failures"))
    shot(drv, "agent-failure")
    if fails and CFG["evil_path"] in fails and "not_in_allowlist" in fails and pwned(drv) is None:
        ok("the agent page names the unlisted file; a hostile path is text, nothing runs")
    else:
        bad("the agent page names the unlisted file; a hostile path is text, nothing runs",
            "%r pwned=%r" % (fails, pwned(drv)))
    # Without JavaScript: the server's HTML has the failure entries, escaped, and no script.
    status, html = raw_get(drv, "/agent/" + u2)
    esc = CFG["evil_path"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;").replace("'", "&#39;")
    if status == 200 and 'id="failures"' in html and esc in html and CFG["evil_path"] not in html and \
            "<script" not in html:
        ok("the agent's failure details render on the server without JS, escaped")
    else:
        bad("the agent's failure details render on the server without JS, escaped", "status %s" % status)

    # Deleting a policy in use is refused with the verifier's reason.
    drv.get(BASE + "/policies")
    wait_for(drv, "policies list", lambda d: d.find_elements(By.CSS_SELECTOR, "#policies tbody tr"))
    shot(drv, "policies")
    if pwned(drv) is not None:
        bad("policies list: nothing runs", pwned(drv))
    drv.get(BASE + "/policy/" + urllib.parse.quote(pname, safe=""))
    if wait_for(drv, "delete button", lambda d: d.find_elements(By.ID, "delete-policy")):
        drv.find_element(By.ID, "delete-policy").click()
        wait_for(drv, "confirm", lambda d: d.find_elements(By.ID, "confirm-text"))
        drv.find_element(By.ID, "act-delete").click()
        msg = wait_for(drv, "delete refused", lambda d: text_of(d, "#message"))
        shot(drv, "policy-delete-refused")
        if msg and "refused" in msg and "in use by agent " + u2 in msg:
            ok("deleting a policy in use is refused with the reason")
        else:
            bad("deleting a policy in use is refused with the reason", msg)

    # A policy no agent uses any more (the second agent moved to the new one) is deleted.
    drv.get(BASE + "/policy/" + urllib.parse.quote(CFG["base_policy"], safe=""))
    if wait_for(drv, "delete unused button", lambda d: d.find_elements(By.ID, "delete-policy")):
        drv.find_element(By.ID, "delete-policy").click()
        wait_for(drv, "confirm unused", lambda d: d.find_elements(By.ID, "confirm-text"))
        drv.find_element(By.ID, "act-delete").click()
        msg = wait_for(drv, "unused deleted", lambda d: text_of(d, "#message"))
        drv.get(BASE + "/policies")
        names = wait_for(drv, "policies after delete", lambda d: text_of(d, "#policies"))
        if msg and "deleted" in msg and names is not None and CFG["base_policy"] not in names:
            ok("deleting a policy no agent uses")
        else:
            bad("deleting a policy no agent uses", "%r / %r" % (msg, names))

    # CSRF: a state-changing request without the token is refused, even with the cookie.
    st = fetch_status(drv, "POST", "/api/upload", "{}", {"Content-Type": "application/json"})
    st2 = fetch_status(drv, "POST", "/agent/%s/action" % u1, "action=delete&confirm=yes",
                       {"Content-Type": "application/x-www-form-urlencoded"})
    st3 = fetch_status(drv, "POST", "/api/upload", "{}", {"Content-Type": "application/json", "X-CSRF-Token": "0" * 64})
    if st == 403 and st2 == 403 and st3 == 403:
        ok("requests without the CSRF token are refused")
    else:
        bad("requests without the CSRF token are refused", "%r %r %r" % (st, st2, st3))

    # Reactivate agent 2 with the confirm step (the file stays unlisted: it fails again).
    drv.get(BASE + "/agent/" + u2)
    if wait_for(drv, "reactivate button", lambda d: d.find_elements(By.ID, "act-reactivate")):
        drv.find_element(By.ID, "act-reactivate").click()
        wait_for(drv, "reactivate confirm", lambda d: d.find_elements(By.ID, "confirm-text"))
        drv.find_element(By.ID, "act-reactivate").click()
        msg = wait_for(drv, "reactivated", lambda d: text_of(d, "#message"))
        if msg and "reactivate done" in msg:
            ok("reactivate with a confirm step")
        else:
            bad("reactivate with a confirm step", msg)

    # Delete the unreachable agent from the verifier (confirm step); its row goes.
    drv.get(BASE + "/agent/" + hostile)
    if wait_for(drv, "delete agent button", lambda d: d.find_elements(By.ID, "act-delete")):
        drv.find_element(By.ID, "act-delete").click()
        wait_for(drv, "delete agent confirm", lambda d: d.find_elements(By.ID, "confirm-text"))
        drv.find_element(By.ID, "act-delete").click()
        msg = wait_for(drv, "agent deleted", lambda d: text_of(d, "#message"))
        drv.get(BASE + "/")
        if msg and "delete done" in msg and wait_for(drv, "row gone", lambda d: row(d, u1) is not None and
                                                      row(d, hostile) is None):
            ok("delete an agent with a confirm step")
        else:
            bad("delete an agent with a confirm step", msg)

    # The agents page as the docs show it.
    drv.get(BASE + "/")
    wait_for(drv, "final table", lambda d: row(d, u1) is not None and row(d, u2) is not None)
    shot(drv, "agents-final")
    if pwned(drv) is not None:
        bad("nothing injected ran anywhere", pwned(drv))
    else:
        ok("nothing injected ran anywhere")

    # Log out: the session ends; the page asks for a token again.
    drv.find_element(By.ID, "logout").click()
    if wait_for(drv, "logged out", lambda d: d.find_elements(By.ID, "token")):
        drv.get(BASE + "/")
        if wait_for(drv, "session gone", lambda d: d.find_elements(By.ID, "token")):
            ok("log out ends the session")


def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CFG.get("chromium", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,800", "--user-data-dir=" + CFG["profile"], "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--disable-default-apps", "--metrics-recording-only"):
        opts.add_argument(a)
    # The page's certificate comes from the verifier's CA, which this profile does not trust; the
    # shell test checks the chain with that CA separately.
    opts.set_capability("acceptInsecureCerts", True)
    svc = Service(executable_path=CFG.get("chromedriver", "/usr/bin/chromedriver"),
                  log_path=CFG["profile"] + "/chromedriver.log")
    d = webdriver.Chrome(service=svc, options=opts)
    d.set_page_load_timeout(WAIT)
    d.set_script_timeout(WAIT)
    return d


if __name__ == "__main__":
    try:
        drv = driver()
    except WebDriverException as e:
        bad("start headless chromium", e.msg)
        sys.exit(1)
    try:
        main(drv)
    except Exception as e:  # a broken step is a failure with its trace, never a silent stop
        shot(drv, "exception")
        bad("browser script", "%s: %s" % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        drv.quit()
    sys.exit(1 if failures else 0)
