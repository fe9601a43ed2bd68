// Flowgate's pages in a real browser: Debian's chromium driven by playwright-core, every page
// checked by axe-core against WCAG 2.2 AA in every state the journeys reach, screenshots saved.
//
//   FLOWGATE_BIN=path/to/flowgate npm test
//
// The server is `flowgate demo` (the README's first command) on a fresh SQLite file and a free
// loopback port, so these journeys are what a newcomer sees.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";

const BIN = process.env.FLOWGATE_BIN;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.resolve(process.env.SCREENSHOTS ?? "../../target/screenshots");
const WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

let server;
let base;
let dbUrl;
const processes = [];
let browser;
const checked = new Set();
// Errors the pages print (a script or style the Content-Security-Policy refused, say).
const consoleErrors = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

before(async () => {
  assert.ok(BIN, "set FLOWGATE_BIN to the flowgate binary");
  mkdirSync(SHOTS, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), "flowgate-browser-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dbUrl = `sqlite://${dir}/demo.db`;
  server = await start(BIN, ["--database-url", dbUrl, "demo", "--listen", `127.0.0.1:${port}`], `${base}/healthz`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  for (const p of processes) p.kill();
});

/** Starts a process and waits until `ready` answers. */
async function start(command, args, ready) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  processes.push(child);
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(ready);
      if (r.ok) return child;
    } catch {
      // not up yet
    }
    if (i > 300 || child.exitCode !== null) throw new Error(`${command} ${args.join(" ")} did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A browser context signed in as `email` through the demo's development sign-in. */
async function as(email) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(`${page.url()}: ${m.text()}`));
  await page.goto(`${base}/sign-in`);
  await page.selectOption("#person", email);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  await assert.doesNotReject(page.getByText(`Signed in as ${email}`).waitFor());
  return page;
}

/** axe-core on the page as it is now: no violation of WCAG 2.2 A/AA; and a screenshot. */
async function accessible(page, name) {
  const results = await new AxeBuilder({ page }).withTags(WCAG).analyze();
  const problems = results.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`,
  );
  assert.deepEqual(problems, [], `${name}: ${page.url()}`);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  checked.add(name);
}

async function state(page) {
  return (await page.locator("dl.facts dt:text-is('State') + dd").textContent()).trim();
}

let steps = 0;

/** Fills and presses a button; the page it leads to is checked like every other. */
async function act(page, button, fill) {
  if (fill) await fill(page);
  await page.getByRole("button", { name: button }).click();
  await page.waitForLoadState();
  steps += 1;
  await accessible(page, `step-${String(steps).padStart(2, "0")}`);
}

test("a request goes from raised to a recorded flow on the system's page and picture", async () => {
  const requester = await as("a.researcher@uni.example");
  await accessible(requester, "home-requester-empty");
  await requester.getByRole("link", { name: "Raise a request" }).first().click();
  await accessible(requester, "raise-empty");
  await requester.selectOption("#source", "sits");
  await requester.selectOption("#target", "alma");
  await requester.selectOption("#data_items", ["student-enrolment"]);
  await requester.fill("#justification", "The library sets borrowing rights by programme of study");
  await requester.fill("#intended_use", "Borrowing limits and loan periods by programme");
  // Assessed as it is typed (htmx), before anything is sent on purpose.
  await assert.doesNotReject(
    requester.locator("#assessment").getByText("Proceed: it may go to the Information Asset Owners").waitFor(),
  );
  await accessible(requester, "raise-assessed-as-typed");
  await act(requester, "Check it");
  await assert.doesNotReject(requester.getByText("Proceed: it may go to the Information Asset Owners").waitFor());
  await accessible(requester, "raise-checked");
  await act(requester, "Raise the request");
  assert.match(requester.url(), /\/requests\/req-\d+/);
  const url = requester.url().split("?")[0];
  assert.equal(await state(requester), "with data product team");
  await accessible(requester, "request-raised");

  const team = await as("dpt.lead@uni.example");
  await accessible(team, "home-team-queue");
  await team.goto(url);
  await act(team, "Triage: assess and pass on");
  assert.equal(await state(team), "awaiting approval");
  await accessible(team, "request-triaged");

  for (const iao of ["registrar@uni.example", "librarian@uni.example"]) {
    const p = await as(iao);
    await assert.doesNotReject(p.getByRole("heading", { name: "Requests awaiting my approval" }).waitFor());
    await p.getByRole("link", { name: url.split("/").pop(), exact: true }).first().click();
    await act(p, "Approve");
    await accessible(p, `request-approved-by-${iao.split("@")[0]}`);
  }
  const builder = await as("pl.integrations@uni.example");
  await accessible(builder, "home-product-line");
  await builder.goto(url);
  assert.equal(await state(builder), "approved");
  await act(builder, "Set the priority", (p) => p.selectOption("#priority", "high"));
  await act(builder, "Start building");
  await act(builder, "Record it complete", (p) => p.selectOption("#method", "api"));
  assert.equal(await state(builder), "completed");
  const flow = (await builder.locator("dl.facts dt:text-is('Recorded as flow') + dd").textContent()).trim();
  assert.match(flow, /^flow-req-\d+$/);
  await accessible(builder, "request-completed");

  await builder.goto(`${base}/systems/alma`);
  await assert.doesNotReject(builder.getByRole("cell", { name: flow, exact: true }).waitFor());
  const picture = builder.getByRole("img", { name: "Flows into and out of alma" });
  await assert.doesNotReject(picture.waitFor());
  assert.match(await picture.locator("desc").textContent(), /alma receives data from .*sits/);
  await accessible(builder, "system-alma");
  await builder.goto(`${base}/systems/sits`);
  await accessible(builder, "system-sits");
});

test("a request returned with a question is answered and goes back where it was", async () => {
  const requester = await as("a.researcher@uni.example");
  await requester.goto(`${base}/requests/new`);
  await requester.selectOption("#source", "sits");
  await requester.selectOption("#target", "moodle");
  await requester.selectOption("#data_items", ["student-enrolment"]);
  await requester.fill("#justification", "Course enrolments for the learning environment");
  await requester.fill("#intended_use", "Course membership");
  await act(requester, "Raise the request");
  const url = requester.url().split("?")[0];

  const team = await as("dpt.analyst@uni.example");
  await team.goto(url);
  await act(team, "Return with a question", (p) => p.fill("#question", "Which courses, and from when?"));
  assert.equal(await state(team), "returned");

  await requester.goto(`${base}/`);
  await assert.doesNotReject(requester.getByRole("heading", { name: "Questions for me to answer" }).waitFor());
  await accessible(requester, "home-question-waiting");
  await requester.goto(url);
  await assert.doesNotReject(requester.getByText("Which courses, and from when?").first().waitFor());
  await accessible(requester, "request-returned");
  await act(requester, "Send the answer", (p) => p.fill("#answer", "All taught courses, from September"));
  assert.equal(await state(requester), "with data product team");
  await accessible(requester, "request-answered");
});

test("a person who may not act is shown no button, and a forged form is refused", async () => {
  const requester = await as("a.researcher@uni.example");
  await requester.goto(`${base}/requests/req-1`);
  assert.equal(await requester.getByRole("button", { name: "Approve" }).count(), 0);
  // A form sent without the session's token changes nothing.
  const response = await requester.request.post(`${base}/requests/req-1/withdraw`, {
    form: { csrf: "forged", version: "1" },
  });
  assert.equal(response.status(), 403);
  const other = await as("dpo@uni.example");
  await other.goto(`${base}/requests/req-1`);
  await accessible(other, "request-seen-by-dpo");
  await other.goto(`${base}/notices`);
  await accessible(other, "notices");
  await other.goto(`${base}/systems?q=student`);
  await accessible(other, "systems-search");
});

test("the team records a DPIA, the waiting request moves on; the DPO reads the register's health and verifies the log", async () => {
  const requester = await as("a.researcher@uni.example");
  await requester.goto(`${base}/requests/new`);
  await requester.selectOption("#source", "sits");
  await requester.selectOption("#target", "cardax");
  await requester.selectOption("#data_items", ["student-enrolment"]);
  await requester.fill("#justification", "Building access follows enrolment");
  await requester.fill("#intended_use", "Grant and withdraw card access");
  await act(requester, "Check it");
  await assert.doesNotReject(requester.getByText("Needs review").first().waitFor());
  await act(requester, "Raise the request");
  const url = requester.url().split("?")[0];
  const id = url.split("/").pop();

  const team = await as("dpt.lead@uni.example");
  await team.goto(url);
  await act(team, "Triage: assess and pass on");
  assert.equal(await state(team), "awaiting review");
  await team.goto(`${base}/systems/cardax`);
  await team.getByText("Record a DPIA or checklist outcome").click();
  await accessible(team, "system-review-form");
  await team.selectOption("#dpia_status", "approved");
  await team.fill("#dpia_reference", "DART-2026-100");
  await team.fill("#dpia_review_due", "2028-12-31");
  await act(team, "Record it");
  await assert.doesNotReject(team.getByText(`Request ${id} was assessed again: awaiting approval.`).waitFor());
  await accessible(team, "system-review-recorded");
  await team.goto(url);
  assert.equal(await state(team), "awaiting approval");

  const dpo = await as("dpo@uni.example");
  for (const [path, name] of [["/lint", "lint"], ["/data-items", "data-items"], ["/people", "people"], ["/audit", "audit"],
                              ["/flows", "flows"], ["/requests", "requests"], ["/requests?state=completed", "requests-completed"], ["/systems?show=dpia-due", "systems-dpia-due"], ["/systems?show=external", "systems-external"]]) {
    await dpo.goto(`${base}${path}`);
    await accessible(dpo, name);
  }
  await dpo.goto(`${base}/lint`);
  assert.match(await dpo.locator("main p").first().textContent(), /^\d+ active flows: \d+ rejected, \d+ need review, \d+ proceed/);
  await dpo.goto(`${base}/audit`);
  await act(dpo, "Verify the chain and the tables now");
  await assert.doesNotReject(dpo.getByText(/^Verified: \d+ events, the chain holds/).waitFor());
  await accessible(dpo, "audit-verified");
  // The audit log is the DPO's and the administrators', not everyone's.
  await requester.goto(`${base}/audit`);
  assert.equal((await requester.request.get(`${base}/audit`)).status(), 403);
});

test("a change notice is raised, drawn, answered from a home page, and not recorded done while a target is not ready", async () => {
  const owner = await as("pl.integrations@uni.example");
  await owner.goto(`${base}/notices`);
  await owner.getByText("Raise a change notice (change owners)").click();
  await accessible(owner, "notices-raise-form");
  await owner.selectOption("#system", "sits");
  await owner.fill("#summary", "Upgrade to SITS 10.2");
  await owner.fill("#planned_for", new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 10));
  await act(owner, "Raise the notice and tell everyone downstream");
  await assert.doesNotReject(owner.getByText(/^Raised: \d+ affected systems/).waitFor());
  const url = owner.url().split("?")[0];
  const picture = owner.getByRole("img", { name: "Systems affected by the change to sits" });
  await assert.doesNotReject(picture.waitFor());
  assert.match(await picture.locator("desc").textContent(), /not yet answered/);
  await accessible(owner, "notice-raised");

  // The e-mail each IAO and IAA was sent (queued in the outbox: the demo has no SMTP server)
  // links to a page that answers without signing in.
  const outbox = JSON.parse(
    execFileSync(BIN, ["--database-url", dbUrl, "outbox", "list", "--format", "json", "--limit", "500"], { encoding: "utf8" }),
  );
  const mail = outbox.items.find((m) => m.recipient === "bi.manager@uni.example" && m.event === "notice.raised");
  assert.ok(mail, "the IAO of dw was sent the notice");
  const link = mail.body.match(/http:\/\/\S+\/answer\/[0-9a-f]+/)[0];
  const anonymous = await (await browser.newContext()).newPage();
  anonymous.on("console", (m) => m.type() === "error" && consoleErrors.push(`${anonymous.url()}: ${m.text()}`));
  await anonymous.goto(link);
  await assert.doesNotReject(anonymous.getByText("You are answering for").waitFor());
  await accessible(anonymous, "answer-link");
  await anonymous.getByRole("button", { name: "Record the answer" }).click();
  await anonymous.waitForLoadState();
  await assert.doesNotReject(anonymous.getByText(/Recorded: \S+ is acknowledged\./).waitFor());
  await accessible(anonymous, "answer-link-recorded");

  const iaa = await as("bi.dev@uni.example");
  await assert.doesNotReject(iaa.getByRole("heading", { name: "Change notices asking about my systems" }).waitFor());
  await iaa.getByRole("link", { name: url.split("/").pop(), exact: true }).click();
  await accessible(iaa, "notice-to-answer");
  await iaa.check("#notready-dw");
  await iaa.fill("#note-dw", "The ETL jobs need rewriting");
  await act(iaa, "Record the answer for dw");
  await assert.doesNotReject(iaa.getByText("Recorded: dw not ready.").waitFor());
  await accessible(iaa, "notice-answered");

  await owner.goto(url);
  await act(owner, "Record the change as done");
  await assert.doesNotReject(owner.getByText(/only an urgent change goes ahead before its targets are ready \(2\.5\)/).waitFor());
  await accessible(owner, "notice-done-refused");
});

test("one journey with the keyboard alone, focus visible throughout", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/sign-in`);
  const focusVisible = async () =>
    page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return el !== document.body && style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    });
  // The first stop is the skip link, and it shows.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to the content");
  assert.ok(await focusVisible(), "the skip link shows its focus");
  // Sign in: tab to the list, choose with the keyboard, tab to the button, press Enter.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    assert.ok(await focusVisible(), `focus visible on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))}`);
    if (await page.evaluate(() => document.activeElement.id === "person")) break;
  }
  await page.keyboard.type("Dr Alison");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Sign in");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/`);
  await assert.doesNotReject(page.getByText("Signed in as registrar@uni.example").waitFor());
  // To the systems list and into SITS, by keyboard.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    assert.ok(await focusVisible());
    if (await page.evaluate(() => document.activeElement.textContent === "Systems")) break;
  }
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/systems`);
  await page.keyboard.press("Tab"); // skip link
  await page.keyboard.press("Enter"); // to the content
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement.id === "q")) break;
  }
  await page.keyboard.type("sits");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/systems\?q=sits/);
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    assert.ok(await focusVisible());
    if (await page.evaluate(() => document.activeElement.getAttribute("href") === "/systems/sits")) break;
  }
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/systems/sits`);
  await accessible(page, "keyboard-system-sits");
});

test("sign-in through the university's identity provider (OpenID Connect, PKCE, state, nonce)", async () => {
  // A real OIDC provider process (oidc-provider-mock from PyPI) that knows two people.
  const idpPort = await freePort();
  const idp = `http://127.0.0.1:${idpPort}`;
  await start(
    "python3",
    [
      "-m", "oidc_provider_mock", "--port", String(idpPort), "--require-nonce", "true",
      "--user-claims", JSON.stringify({ sub: "areid", email: "Registrar@uni.example", name: "Alison Reid" }),
      "--user-claims", JSON.stringify({ sub: "stranger", email: "stranger@elsewhere.example" }),
    ],
    `${idp}/.well-known/openid-configuration`,
  );
  const port = await freePort();
  const sso = `http://127.0.0.1:${port}`;
  await start(
    BIN,
    ["--database-url", dbUrl, "serve", "--listen", `127.0.0.1:${port}`, "--oidc-issuer", idp,
     "--oidc-client-id", "flowgate", "--oidc-client-secret", "not-a-secret"],
    `${sso}/healthz`,
  );
  const signIn = async (sub) => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${sso}/sign-in`);
    await accessible(page, "sign-in-sso");
    assert.equal(await page.getByText("Development sign-in").count(), 0, "no dev sign-in here");
    await page.getByRole("link", { name: "Sign in with the university's single sign-on" }).click();
    await page.waitForURL(new RegExp(`^${idp}/oauth2/authorize`));
    const url = new URL(page.url());
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");
    assert.ok(url.searchParams.get("state") && url.searchParams.get("nonce"));
    await page.fill("input[name=sub]", sub);
    await page.getByRole("button", { name: "Authorize" }).click();
    await page.waitForURL(new RegExp(`^${sso}/`));
    return page;
  };
  const page = await signIn("areid");
  await assert.doesNotReject(page.getByText("Signed in as registrar@uni.example").waitFor());
  await accessible(page, "home-after-sso");
  // The same callback again (a replayed state) signs nobody in.
  const stranger = await signIn("stranger");
  await assert.doesNotReject(stranger.getByText("stranger@elsewhere.example is not in the register").waitFor());
  await accessible(stranger, "sso-refused");
  const replay = await stranger.request.get(`${sso}/sign-in/callback?code=x&state=never-issued`);
  assert.equal(replay.status(), 403);
});

test("the pages checked, and none printed an error", () => {
  // 403 and 409 are the refusals the journeys provoke on purpose; anything else is a fault.
  const unexpected = consoleErrors.filter((e) => !/status of (403|409)/.test(e));
  assert.deepEqual(unexpected, []);
  assert.ok(checked.size >= 15, `only ${checked.size} page states checked`);
});
