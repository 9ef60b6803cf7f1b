// The station panel's page: it shows what the bench's event stream says and sends what
// the operator does. It decides nothing: verdicts, conformity and the validity of every
// answer come from the bench.
"use strict";

const TEXT = {
  en: {
    offline: "offline", online: "connected", login_title: "Panel password", login: "Log in",
    start: "Start", procedure: "Procedure", fixture: "Fixture", position: "Position",
    serial: "Serial number (scan)", ask: "Answer the prompts here (simulated bench)",
    sim_faults: "Simulated faults, one per line (YAML)",
    customer: "Customer", customer_contact: "Customer's contact", received: "Received on",
    condition: "Condition on receipt",
    loop: "Production loop: a scan starts the next device", start_run: "Start", stop: "Stop",
    station: "Station", role: "Role", instrument: "Instrument", calibration: "Calibration",
    due: "Due", key_id: "Signing key", positions: "Positions", live: "Live run", load: "Load",
    history: "History", serial_short: "Serial", verdict: "Verdict", any: "any", filter: "Filter",
    started: "Started", certificate: "Certificate", bundle: "Bundle", yes: "Yes", no: "No", ok: "OK",
    waiting: "WAITING", measuring: "MEASURING", PASS: "PASS", FAIL: "FAIL", ERROR: "ERROR",
    ABORTED: "ABORTED", NOT_DECIDABLE: "NOT DECIDABLE", IN_PROGRESS: "IN PROGRESS",
    phasor_diagram: "phasor diagram of the load",
    step: "Step", port: "Port", current: "I", pf: "PF", error: "Error %", u: "U %", mpe: "MPE %",
    conformity: "Conformity", pulses: "Pulses", left: "left", retest: "Retest",
    c_pass: "pass", c_fail: "fail", c_conditional_pass: "conditional pass",
    c_conditional_fail: "conditional fail", c_not_decidable: "not decidable",
    overdue: "overdue", due_soon: "due soon", source_on: "source on", source_off: "source off",
    step_of: "Step {i} of {n}: {name}", attempt: "attempt {n}", time_left: "{s} s left",
    elapsed: "{s} s", stopping: "Stopping: switching the source off…",
    session_done: "Session finished: {outcome}", signed: "signed bundle", not_signed: "NOT signed",
    verify: "Verify", verified: "intact, signed by {key}", not_verified: "NOT intact",
    runs_shown: "{n} of {total} runs", no_runs: "no runs yet", busy: "a session is running",
    in_position: "Position {p}", device: "device", idle: "No run yet: start one above.",
    retest_started: "Retest of {step} started",
    error_chart: "error % against current (A)", run_error: "The session ended with an error",
    question_for: "Position {p}", points: "Points", starting: "Starting: connecting the station's instruments…",
    role_source: "source", role_reference: "reference", role_counter: "counter", role_climate: "climate sensor",
    logout: "Log out",
    delivery_bundle: "Certificate not issued", delivery_store: "Not filed in the results store",
  },
  de: {
    offline: "getrennt", online: "verbunden", login_title: "Passwort des Panels", login: "Anmelden",
    start: "Start", procedure: "Prüfablauf", fixture: "Prüflingsprofil", position: "Platz",
    serial: "Seriennummer (scannen)", ask: "Abfragen hier beantworten (simulierter Prüfplatz)",
    sim_faults: "Simulierte Fehler, einer pro Zeile (YAML)",
    customer: "Kunde", customer_contact: "Kontakt des Kunden", received: "Eingangsdatum",
    condition: "Zustand bei Eingang",
    loop: "Fertigungsschleife: ein Scan startet das nächste Gerät", start_run: "Starten", stop: "Stopp",
    station: "Prüfplatz", role: "Rolle", instrument: "Gerät", calibration: "Kalibrierung",
    due: "Fällig", key_id: "Signaturschlüssel", positions: "Plätze", live: "Laufende Prüfung",
    load: "Last", history: "Verlauf", serial_short: "Seriennummer", verdict: "Ergebnis", any: "alle",
    filter: "Filtern", started: "Begonnen", certificate: "Zertifikat", bundle: "Paket",
    yes: "Ja", no: "Nein", ok: "OK",
    waiting: "WARTET", measuring: "MESSUNG", PASS: "BESTANDEN", FAIL: "NICHT BESTANDEN",
    ERROR: "FEHLER", ABORTED: "ABGEBROCHEN", NOT_DECIDABLE: "NICHT ENTSCHEIDBAR", IN_PROGRESS: "LÄUFT",
    phasor_diagram: "Zeigerdiagramm der Last",
    step: "Schritt", port: "Zähler", current: "I", pf: "LF", error: "Fehler %", u: "U %",
    mpe: "Grenze %", conformity: "Konformität", pulses: "Impulse", left: "noch", retest: "Wiederholen",
    c_pass: "erfüllt", c_fail: "nicht erfüllt", c_conditional_pass: "bedingt erfüllt",
    c_conditional_fail: "bedingt nicht erfüllt", c_not_decidable: "nicht entscheidbar",
    overdue: "überfällig", due_soon: "bald fällig", source_on: "Quelle an", source_off: "Quelle aus",
    step_of: "Schritt {i} von {n}: {name}", attempt: "Versuch {n}", time_left: "noch {s} s",
    elapsed: "{s} s", stopping: "Stopp: die Quelle wird abgeschaltet…",
    session_done: "Prüfung beendet: {outcome}", signed: "signiertes Paket", not_signed: "NICHT signiert",
    verify: "Prüfen", verified: "unverändert, signiert mit {key}", not_verified: "NICHT unverändert",
    runs_shown: "{n} von {total} Prüfungen", no_runs: "noch keine Prüfungen", busy: "eine Prüfung läuft",
    in_position: "Platz {p}", device: "Gerät", idle: "Noch keine Prüfung: oben starten.",
    retest_started: "Wiederholung von {step} gestartet",
    error_chart: "Fehler % über Strom (A)", run_error: "Die Prüfung endete mit einem Fehler",
    question_for: "Platz {p}", points: "Messpunkte", starting: "Start: die Geräte des Prüfplatzes werden verbunden…",
    role_source: "Quelle", role_reference: "Referenz", role_counter: "Impulszähler", role_climate: "Klimasensor",
    logout: "Abmelden",
    delivery_bundle: "Zertifikat nicht ausgestellt", delivery_store: "Nicht im Ergebnisspeicher abgelegt",
  },
};

// The procedure's questions by key, in German (the English prompt comes from the bench).
const PROMPTS_DE = {
  "lcd.startup_fault": "Zeigt das Display „-CHARGEPOIN+“ (der Zähler hat den Bootloader nicht verlassen)?",
  "lcd.software_version": "Gesamt-Softwareversion auf dem Display",
  "lcd.software_hash": "Gesamt-Software-Hash auf dem Display",
  "lcd.lrs_hash": "Hash der eichrechtlich relevanten Software (LRS) auf dem Display",
  "serial.scan": "Seriennummer scannen (QR-Code auf dem Typenschild)",
};
const PROMPT_PATTERNS_DE = [
  // A scan again after another serial number: the two numbers from the bench's words.
  [/^serial\.rescan$/, (m, prompt) => {
    const s = prompt.match(/^The scanned serial number (.*) is not the one this run is for \((.*)\): /);
    return s ? `Die gescannte Seriennummer ${s[1]} gehört nicht zu diesem Lauf (${s[2]}): Seriennummer erneut scannen`
      : "Die gescannte Seriennummer gehört nicht zu diesem Lauf: Seriennummer erneut scannen";
  }],
  [/^lcd\.flags\.(.+)$/, (m) => `Anzeigesymbole des Zählers ${tr(m[1])} auf dem Display, wie angezeigt`],
  [/^lcd\.register_before\.(.+)$/, (m) => `Zählerstand des Zählers ${tr(m[1])} auf dem Display, kWh (vor der Dosis)`],
  [/^lcd\.register_after\.(.+)$/, (m) => `Zählerstand des Zählers ${tr(m[1])} auf dem Display, kWh (nach der Dosis)`],
  // Seals and labels in the fixture's own German where it gives one (its inspection items
  // come with the session), else the fixture's English words in a German question.
  [/^seal\.(.+)$/, (m, prompt) => {
    const seal = state.inspection && state.inspection.seals.find((x) => x.key === m[1]);
    return `${seal ? tr(seal.check) : prompt.replace(/: present and intact\?$/, "")}: vorhanden und unversehrt?`;
  }],
  [/^label\.(.+)$/, (m, prompt) => {
    const label = state.inspection && state.inspection.labels.find((x) => x.key === m[1]);
    if (!label) return `${prompt.split(":")[0]}: vorhanden, lesbar und mit allen Angaben?`;
    return `${tr(label.title)}: vorhanden, lesbar und mit allen Angaben: ${label.fields.map(tr).join("; ")}?`;
  }],
];
// The bench's reasons for a verdict, in German by their fixed openings (the points and
// the bench's own messages after them stay as the bench wrote them).
const REASONS_DE = [
  [/^out of limits: /, "außerhalb der Grenzen: "],
  [/^within limits but not accepted under the guard-banded rule \(conditional pass\): /, "innerhalb der Grenzen, aber nach der Regel mit Schutzband nicht angenommen (bedingt erfüllt): "],
  [/^no statement of conformity \(U too large for the procedure's test uncertainty ratio\): /, "keine Konformitätsaussage (U zu groß für das Unsicherheitsverhältnis des Prüfablaufs): "],
  [/^step `([^`]*)`: /, "Schritt „$1“: "],
];
const reasonText = (r) => (lang === "de" ? r.split("; ").map((part) => {
  for (const [re, de] of REASONS_DE) {
    if (!re.test(part)) continue;
    // The opening in German, then the step names it lists in the procedure's own German.
    let rest = part.replace(re, "");
    if (/^step `/.test(part)) {
      // A bench message stays as the bench wrote it, but a long text of the files in it
      // (the fixture's start-up fault instruction) is shown in the files' German.
      const long = Object.entries(state.texts[lang] || {}).filter(([en]) => en.length >= 20).sort((a, b) => b[0].length - a[0].length);
      for (const [en, translated] of long) rest = rest.split(en).join(translated);
      return de.replace("$1", tr(part.match(re)[1])) + (MESSAGES_DE[rest] || rest);
    }
    for (const name of [...state.steps.map((x) => x.name)].sort((a, b) => b.length - a.length)) rest = rest.split(name).join(tr(name));
    return de + rest;
  }
  return part;
}).join("; ") : r);

const HINTS_DE = {
  yes_no: () => "ja/nein", version: () => "z. B. 1.8.4", serial_number: () => "Seriennummer scannen oder eingeben",
  shown: () => "wie angezeigt, - wenn nichts",
  hex_hash: (q) => `${q.digits} Hexadezimalziffern`,
  reading: (q) => `Ziffern, höchstens ${q.decimals} ${q.decimals === 1 ? "Nachkommastelle" : "Nachkommastellen"}`,
};
// The bench's own fixed messages after a reason's opening, in German.
const MESSAGES_DE = {
  "stopped by the operator or a signal": "vom Bediener oder durch ein Signal abgebrochen",
};

// What a verification found wrong, by its kind (the bench's English otherwise): the
// subject is a file of the bundle or a line of the issuance log.
const PROBLEMS_DE = {
  missing: "fehlt",
  extra: "steht nicht im Manifest (hinzugefügte Datei)",
  hash_mismatch: "SHA-256 weicht vom Manifest ab (Datei verändert)",
  not_regular_file: "ist keine gewöhnliche Datei (Verknüpfung, Gerät …)",
  unreadable: "nicht lesbar",
  malformed: "nicht im erwarteten Format",
  bad_signature: "Signatur ungültig",
  key_mismatch: "Schlüsselkennung passt nicht zum Schlüssel",
  untrusted_key: "mit einem Schlüssel signiert, dem diese Station nicht vertraut",
  sequence_gap: "Ausstellungsprotokoll: eine laufende Nummer fehlt (Eintrag entfernt)",
  out_of_order: "Ausstellungsprotokoll: laufende Nummer wiederholt oder rückwärts (Einträge umgestellt)",
  chain_break: "Ausstellungsprotokoll: Verkettung unterbrochen (Hash des Vorgängers passt nicht)",
  back_dated: "Ausstellungsprotokoll: Eintrag früher datiert als sein Vorgänger",
  entry_modified: "Ausstellungsprotokoll: Eintrag verändert (sein Hash passt nicht)",
  not_in_log: "nicht im Ausstellungsprotokoll verzeichnet",
};
const deliveryText = (output) => (TEXT.en[`delivery_${output}`] ? t(`delivery_${output}`) : output);
const problemText = (p) => (lang === "de" && PROBLEMS_DE[p.kind] ? `${p.subject}: ${PROBLEMS_DE[p.kind]}` : p.text);

// Why the bench refused an answer, by the refusal's code (the bench's English otherwise).
const REFUSALS_DE = {
  hash_length: (r) => `${r.got} Zeichen, ein Hash hat hier ${r.digits}`,
  not_hex_digit: (r) => `„${r.character}“ ist keine Hexadezimalziffer (0-9, A-F)`,
  not_version: () => "keine durch Punkte getrennten Zahlen (z. B. 1.8.4)",
  not_reading: () => "kein Zählerstand (Ziffern, wahlweise ein Punkt und Nachkommastellen)",
  too_many_decimals: (r) => `${r.got} Nachkommastellen, das Display zeigt ${r.decimals}`,
  empty: () => "leer",
  not_in_serial: (r) => `${JSON.stringify(r.character)} ist in einer Seriennummer nicht erlaubt`,
  serial_length: (r) => `${r.got} Zeichen, eine Seriennummer hat höchstens ${r.max}`,
  gs1: (r) => `GS1-Code ohne gültige Seriennummer: ${r.detail}`,
  shown_length: (r) => `${r.got} Zeichen; 1 bis 40 eingeben (- wenn nichts angezeigt wird)`,
  not_printable: (r) => `${JSON.stringify(r.character)} ist kein druckbares Zeichen`,
  not_yes_no: () => "mit ja oder nein antworten",
  // The order typed at the start.
  customer_empty: () => "Der Name des Kunden ist leer",
  too_long: (r) => `${ORDER_FIELDS_DE[r.field] || r.field}: ${r.chars} Zeichen, ein Zertifikat nimmt höchstens ${r.max} auf; bitte kürzen`,
  control_character: (r) => `${ORDER_FIELDS_DE[r.field] || r.field} enthält das Steuer- oder Formatzeichen ${r.code_point}; bitte neu eingeben`,
  received_in_future: (r) => `Eingangsdatum ${r.received} liegt nach heute (${r.today}): der Gegenstand muss vor der Kalibrierung eingegangen sein`,
  // The panel's own refusals.
  busy: () => "Eine Sitzung läuft: warten, bis sie endet, oder sie stoppen",
  not_running: () => "Es läuft keine Sitzung",
  not_asked: () => "Diese Frage wird nicht mehr gestellt (beantwortet, oder der Lauf ist beendet)",
  wrong_password: () => "Falsches Passwort",
  too_many_attempts: (r) => `Zu viele falsche Passwörter: in ${r.retry_after_s} s erneut versuchen`,
  password_needed: () => "Das Passwort des Panels wird benötigt",
  foreign_page: () => "Eine Anfrage von der Seite einer anderen Website",
  other_address: (r) => `Dies ist das Panel unter ${r.address}`,
  not_a_run_id: () => "Keine Lauf-ID",
  no_certificate: (r) => `Lauf ${r.run_id} hat hier kein Zertifikat`,
  offline: () => "Keine Verbindung zum Prüfplatz",
};
// What the bench says of its files, station and keys (with file and line) is for whoever
// keeps the bench: the page says in German that it refused, and gives the bench's words.
const BENCH_WORDS_DE = (e) => `Vom Prüfplatz abgelehnt; seine Meldung für die Laborleitung (englisch): ${e.message}`;
// The order's fields as the start form names them.
const ORDER_FIELDS_DE = {
  "--customer": "Kunde", "--customer-contact": "Kontakt des Kunden", "--condition": "Zustand bei Eingang",
};
const refusalText = (e) => {
  if (lang !== "de") return e.message;
  const code = e.refusal && e.refusal.code;
  if (!REFUSALS_DE[code]) return BENCH_WORDS_DE(e);
  // A scanned serial number's refusal names its position.
  const where = e.refusal.position != null ? `Seriennummer an Platz ${e.refusal.position}: ` : "";
  return where + REFUSALS_DE[code](e.refusal);
};

// An instrument's role in the station (its kind in the page's language, and the station's
// id for it where that differs: "counter c1").
const roleText = (i) => {
  const kind = TEXT[lang][`role_${i.kind}`] || i.kind;
  return i.id && i.id !== i.kind ? `${kind} ${i.id}` : kind;
};

// A text of the procedure or fixture (a step's name, a port, a seal, a label's field)
// in the operator's language, as the files translate it; else as written.
const tr = (text) => (text != null && state.texts[lang] && state.texts[lang][text]) || text;

let lang = localStorage.getItem("meterbench.lang") || ((navigator.language || "en").startsWith("de") ? "de" : "en");
const t = (key, vars = {}) => {
  let s = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
};
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
// A power factor as the procedures write it (1, 0.5i, 0.8c), in German as the German step
// names say it (0,5 ind., 0,8 kap.).
const pfText = (pf) => {
  if (pf == null) return "";
  const text = String(pf);
  if (lang !== "de") return text;
  const m = text.match(/^([0-9.]+)([ic]?)$/);
  return m ? `${m[1].replace(".", ",")}${{ i: " ind.", c: " kap.", "": "" }[m[2]]}` : text;
};
const fmt = (x, digits = 3) => (x == null || Number.isNaN(x) ? "–" : Number(x).toFixed(digits));

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  // The browser's own words for a bench it cannot reach ("Failed to fetch") are English.
  const r = await fetch(path, init).catch((e) => {
    throw Object.assign(new Error(`the bench does not answer: ${e.message}`), { refusal: { code: "offline" } });
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) showLogin();
  if (!r.ok) throw Object.assign(new Error(data.error || `${r.status} ${r.statusText}`), { refusal: data.refusal });
  return data;
}

// ---- state built from the event stream ----
const state = {
  station: null, session: null, steps: [], positions: new Map(), load: null, loadOn: false,
  question: null, running: false, busy: false, replaying: 0,
  // The files' translations and inspection items of the session (from panel_started).
  texts: {}, inspection: null,
};
// For the browser test and the figures: how late each live message arrived, ms.
window.meterbenchLatencies = [];
window.meterbenchMessages = 0;
window.meterbenchHistoryLoads = 0;
// When each live message arrived (ms since the epoch): the longest silence during a run.
window.meterbenchArrivals = [];
// When the last message of each kind left the bench (ms since the epoch).
window.meterbenchSent = {};
window.meterbenchReceived = {};
window.meterbenchLast = {};
// The page's own errors, for a test that fails to say why.
window.meterbenchErrors = [];
window.addEventListener("error", (e) => window.meterbenchErrors.push(`${e.message} (${e.filename}:${e.lineno})`));

// A new session's state; its view is drawn with the next drawing (`draw`: at once).
function resetSession(draw = true) {
  state.session = null; state.steps = []; state.positions = new Map(); state.load = null; state.loadOn = false;
  state.finished = null; state.step = null;
  if (state.station) {
    for (const p of state.station.positions) Object.assign(position(p.id), { serial: p.simulated_serial || "" });
  }
  if (!draw) return;
  $("positions").replaceChildren(el("p", { class: "muted", text: t("idle") }));
  $("step-line").textContent = ""; $("session-id").textContent = "";
  drawLoad();
  // Before a session: the rack's positions, waiting (with the simulated devices' serials).
  if (state.station) scheduleRender();
}

function position(p) {
  if (!state.positions.has(p)) {
    state.positions.set(p, { id: p, serial: "", run_id: "", state: "waiting", reason: null, progress: null, rows: new Map(), rowsVersion: 0, delivered: null, dom: null });
  }
  return state.positions.get(p);
}

function handle(m) {
  switch (m.event) {
    case "panel_hello":
      resetSession(); closeQuestion();
      state.replaying = m.replayed; state.running = false; state.busy = false;
      return;
    case "panel_started":
      // Accepted: the station is being bound; the previous session's view goes (busy
      // first: the new view is drawn a refresh later, not while the bench starts).
      state.busy = true;
      lastRender = performance.now(); // resetSession shows the empty view itself
      resetSession();
      state.texts = m.texts || {}; state.inspection = m.inspection || null;
      $("step-line").textContent = t("starting");
      break;
    case "session_started":
      // The page was cleared when the session was accepted (panel_started); what the
      // session is comes with the next drawing, not in a frame of its own while the
      // bench binds its instruments on the same cores.
      resetSession(state.replaying > 0);
      state.running = true; state.busy = true;
      state.session = m; state.steps = m.steps;
      for (const p of m.positions) Object.assign(position(p.position), { serial: p.serial, run_id: p.run_id, state: "measuring" });
      break;
    case "step_started":
      state.step = m;
      for (const p of m.positions) { const pos = position(p); pos.progress = null; pos.step = m.name; }
      break;
    case "load":
      state.load = m.setpoint; state.loadOn = m.on; state.loadVersion = (state.loadVersion || 0) + 1;
      break;
    case "progress":
      state.progressAt = m;
      for (const pp of m.ports) {
        const pos = position(pp.position);
        pos.progress = pos.progress || {};
        pos.progress[pp.port] = pp;
        pos.remaining_s = m.remaining_s; pos.elapsed_s = m.elapsed_s;
      }
      break;
    case "step_finished": {
      const pos = position(m.position);
      for (const port of m.step.ports) pos.rows.set(`${m.step.index}/${port.port}`, row(m.step, port));
      pos.rowsVersion += 1;
      break;
    }
    case "position_finished":
      Object.assign(position(m.position), { state: m.outcome, reason: m.reason, run_id: m.run_id });
      break;
    case "session_finished":
      state.running = false; state.finished = m.outcome;
      break;
    case "panel_question": showQuestion(m); return;
    case "panel_question_closed": if (state.question && state.question.id === m.id) closeQuestion(); return;
    case "panel_stopping": $("step-line").textContent = t("stopping"); return;
    case "panel_delivered": position(m.position ?? firstPosition()).delivered = m; break;
    case "panel_error":
      $("start-error").textContent = `${t("run_error")}: ${m.message}`;
      break;
    case "panel_idle":
      state.running = false; state.busy = false; closeQuestion(); setBusy(false); loadHistory();
      if ($("loop").checked && !state.replaying) nextInLoop();
      break;
    default: break;
  }
  // Busy from the session's start until its bundles are issued and filed.
  if (!state.replaying) setBusy(state.busy);
  scheduleRender();
}

// While a session runs the page is drawn at most every REFRESH_MS: at once when that
// long has passed since the last drawing, else when it has. A technician reads a bench's
// state in seconds (a paced bench sends an event every half second or so), and an unpaced
// simulated run, which sends a hundred events in a blink and then signs its bundle on
// every core, is not slowed by the browser drawing on the same cores. When no session
// runs (the session is over, its bundles issued), at once; a replay, when it is through.
const REFRESH_MS = 750;
let renderTimer = null;
let lastRender = -Infinity;
function drawNow() {
  if (renderTimer !== null) { clearTimeout(renderTimer); renderTimer = null; }
  lastRender = performance.now();
  render();
}
function scheduleRender() {
  if (!state.busy && !state.replaying) { drawNow(); return; }
  if (renderTimer !== null) return;
  renderTimer = setTimeout(drawNow, Math.max(0, lastRender + REFRESH_MS - performance.now()));
}

function firstPosition() { return state.positions.keys().next().value; }

// The bench's conformity values (the DCC's words) as the page's keys (`c_…` texts, `c-…`
// row classes); a value the page does not know is shown as the bench sent it.
const CONFORMITY = {
  pass: "pass", fail: "fail", conditionalPass: "conditional_pass",
  conditionalFail: "conditional_fail", noStatement: "not_decidable",
};
const conformityKey = (c) => (c == null ? null : CONFORMITY[c] || c);
const conformityText = (c) => (TEXT.en[`c_${c}`] ? t(`c_${c}`) : c);

// One row of the point table from a port's result.
function row(step, port) {
  const r = port.result || {};
  const decision = r.decision || (r.comparison && r.comparison.decision) || null;
  const conformity = decision ? conformityKey(decision.conformity) : (r.passed === true ? "pass" : r.passed === false ? "fail" : null);
  const repeats = r.repeats || [];
  return {
    index: step.index, attempt: step.attempt, name: step.name, kind: step.kind, port: port.port,
    current_a: r.reference_a ?? (step.load ? step.load.current_a : null),
    pf: step.load ? step.load.power_factor : null,
    error: r.error_percent ?? r.mean_error_percent ?? (r.comparison ? r.comparison.error_percent : null),
    u: r.expanded_u_percent ?? null,
    mpe: r.limit ? r.limit.mpe_percent : (r.limit_percent ?? null),
    conformity, outcome: step.outcome, message: step.message,
    // As the certificate prints them (rounded by the bench, never here).
    shown: port.shown || null,
    pulses: repeats.length ? repeats.reduce((a, x) => a + (x.dut_pulses || 0), 0) : null,
  };
}

function setBusy(busy) {
  // Only a change: every event comes through here, and each write restyles the page.
  if ($("start").disabled !== busy) $("start").disabled = busy;
  if ($("stop").disabled !== !busy) $("stop").disabled = !busy;
}

// ---- rendering ----
function render() {
  const session = state.session ? `${state.session.session_id} · ${state.session.procedure}` : "";
  if ($("session-id").textContent !== session) $("session-id").textContent = session;
  const s = state.step;
  if (state.running && s) {
    const n = state.steps.length;
    const p = state.progressAt && state.progressAt.index === s.index ? state.progressAt : null;
    let line = t("step_of", { i: s.index + 1, n, name: tr(s.name) });
    if (s.attempt > 1) line += ` (${t("attempt", { n: s.attempt })})`;
    if (p) line += ` · ${t("elapsed", { s: p.elapsed_s.toFixed(0) })} · ${t("time_left", { s: p.remaining_s.toFixed(0) })}`;
    $("step-line").textContent = line;
  } else if (state.finished) {
    $("step-line").textContent = t("session_done", { outcome: t(state.finished) });
  }
  const loadKey = `${state.loadVersion}|${lang}`;
  if (state.drawnLoad !== loadKey) { state.drawnLoad = loadKey; drawLoad(); }
  renderOverview();
  const box = $("positions");
  if (!state.positions.size) return;
  const cards = [...state.positions.values()].sort((a, b) => a.id - b.id).map(renderPosition);
  if (cards.length !== box.children.length || cards.some((c, k) => box.children[k] !== c)) box.replaceChildren(...cards);
}

// A rack at a glance: a tile per position (its state, serial and reason); a tile leads to
// the position's card. One position needs none.
function renderOverview() {
  const box = $("overview");
  const all = [...state.positions.values()].sort((a, b) => a.id - b.id);
  const key = all.length > 1 ? all.map((p) => `${p.id}|${p.state}|${p.serial}|${p.reason}`).join(";") + lang : "";
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (all.length <= 1) { box.replaceChildren(); return; }
  box.replaceChildren(...all.map((p) => el("a", {
    class: `tile ${p.state.toLowerCase()}`, href: `#position-${p.id}`, "data-tile": p.id,
    title: p.reason ? reasonText(p.reason) : "",
  }, el("small", { text: t("in_position", { p: p.id }) }), el("b", { text: t(p.state) }), el("small", { text: p.serial }))));
}

// A position's card, kept between renders: each part is rebuilt only when what it shows
// has changed (a progress event moves the bars, not the table and the chart).
function renderPosition(pos) {
  if (!pos.dom) {
    const dom = { keys: {} };
    dom.head = el("div");
    dom.reason = el("div");
    dom.progress = el("div");
    dom.delivered = el("div");
    dom.points = el("div");
    dom.root = el("div", { class: "position", "data-position": pos.id, id: `position-${pos.id}` }, dom.head,
      el("div", { class: "body" }, dom.reason, dom.progress, dom.delivered, dom.points));
    pos.dom = dom;
  }
  const dom = pos.dom;
  const part = (name, key, build) => {
    if (dom.keys[name] === key) return;
    dom.keys[name] = key;
    dom[name].replaceChildren(...build());
  };
  part("head", `${pos.state}|${pos.serial}|${lang}`, () => [
    el("div", { class: `state ${pos.state.toLowerCase()}`, "data-testid": `state-${pos.id}` },
      el("span", { text: t(pos.state) }),
      el("small", { text: `${t("in_position", { p: pos.id })} · ${pos.serial}` }))]);
  part("reason", `${pos.reason}|${lang}`, () => (pos.reason ? [el("p", { class: "reason", text: reasonText(pos.reason) })] : []));
  const measuring = pos.state === "measuring" && pos.progress;
  part("progress", measuring ? `${JSON.stringify(pos.progress)}|${pos.remaining_s}|${lang}` : "", () => {
    if (!measuring) return [];
    return Object.values(pos.progress).map((pp) => {
      const bar = el("div", { class: "bar" }, el("div"));
      const share = pp.needed ? Math.min(1, pp.counted / pp.needed) : (pos.elapsed_s / Math.max(1e-9, pos.elapsed_s + pos.remaining_s));
      bar.firstChild.style.width = `${(100 * share).toFixed(1)}%`;
      const counted = pp.needed ? `${pp.counted} / ${pp.needed} ${t("pulses")}` : `${pp.counted} ${t("pulses")}`;
      return el("div", { class: "progress" }, el("span", { text: tr(pp.port) }), bar,
        el("span", { text: `${counted} · ${t("time_left", { s: (pos.remaining_s || 0).toFixed(0) })}` }));
    });
  });
  const d = pos.delivered;
  part("delivered", d ? `${d.seq}|${lang}` : "", () => {
    if (!d) return [];
    const p = el("p", { class: "muted" }, `${d.run_id} · `, el("b", { text: d.signed ? t("signed") : t("not_signed") }));
    if (d.signed) { p.append(" · "); p.append(el("a", { href: `/runs/${d.run_id}/certificate.pdf`, target: "_blank", text: t("certificate") })); }
    // What failed in the operator's language, then the bench's words: the cause and
    // what to do (the command that files a queued run).
    for (const r of d.results) if (!r.ok) p.append(el("div", { class: "error", text: `${deliveryText(r.output)}: ${r.message}` }));
    return [p];
  });
  // On a rack the points of a position that passed are folded away: the failures stand out.
  const folded = state.positions.size > 1 && ["PASS", "measuring", "waiting"].includes(pos.state);
  // The point being measured is in the table too, its pulses and time left moving.
  const now = measuring && state.step ? `${state.step.index}|${JSON.stringify(pos.progress)}|${pos.remaining_s}` : "";
  part("points", `${pos.rowsVersion}|${state.running}|${pos.state}|${pos.run_id}|${folded}|${now}|${lang}`, () => {
    if (!pos.rows.size && !now) return [];
    if (!folded) return [pointsTable(pos), chart(pos)];
    return [el("details", {}, el("summary", { text: t("points") }), pointsTable(pos), chart(pos))];
  });
  return dom.root;
}

function pointsTable(pos) {
  const head = el("tr", {}, ...["step", "port", "current", "pf", "error", "u", "mpe", "conformity", "pulses", ""].map((k) => el("th", { text: k ? t(k) : "" })));
  const rows = [...pos.rows.values()].sort((a, b) => a.index - b.index || a.port.localeCompare(b.port));
  const body = rows.map((r) => {
    const c = r.conformity || "";
    const line = el("tr", { class: `c-${c}`, "data-step": r.name, "data-port": r.port },
      el("td", { text: r.attempt > 1 ? `${tr(r.name)} (${t("attempt", { n: r.attempt })})` : tr(r.name) }),
      el("td", { text: tr(r.port) }),
      el("td", { class: "num", text: r.current_a == null ? "" : fmt(r.current_a, 2) }),
      el("td", { text: pfText(r.pf) }),
      el("td", { class: "num", text: r.shown ? r.shown.error : "" }),
      el("td", { class: "num", text: r.shown ? r.shown.u : "" }),
      el("td", { class: "num", text: r.mpe == null ? "" : fmt(r.mpe, 1) }),
      el("td", { class: "conformity", text: c ? conformityText(c) : (r.outcome ? t(r.outcome) : "") }),
      el("td", { class: "num", text: r.pulses == null ? "" : String(r.pulses) }),
      el("td"));
    const failed = c === "fail" || c === "conditional_fail";
    if (failed && !state.running && pos.run_id && (pos.state === "FAIL")) {
      const b = el("button", { class: "small", type: "button", text: t("retest") });
      b.addEventListener("click", () => retest(pos.run_id, r.name));
      line.lastChild.append(b);
    }
    return line;
  });
  // The point under way: per port, the pulses counted of those needed and the time left.
  const s = state.step;
  if (pos.state === "measuring" && pos.progress && s) {
    for (const pp of Object.values(pos.progress)) {
      body.push(el("tr", { class: "measuring", "data-step": s.name, "data-port": pp.port },
        el("td", { text: s.attempt > 1 ? `${tr(s.name)} (${t("attempt", { n: s.attempt })})` : tr(s.name) }),
        el("td", { text: tr(pp.port) }),
        el("td"), el("td"), el("td"), el("td"), el("td"),
        el("td", { class: "conformity", text: t("time_left", { s: (pos.remaining_s || 0).toFixed(0) }) }),
        el("td", { class: "num", text: pp.needed ? `${pp.counted} / ${pp.needed}` : String(pp.counted) }),
        el("td")));
    }
  }
  return el("table", { class: "points" }, el("thead", {}, head), el("tbody", {}, ...body));
}

// Error against current, point by point, each with its U bar and the limit band.
function chart(pos) {
  const pts = [...pos.rows.values()].filter((r) => r.error != null && r.current_a > 0);
  const box = svg("svg", { class: "chart", viewBox: "0 0 480 180", role: "img", "aria-label": t("error_chart") });
  if (!pts.length) return box;
  const xs = pts.map((p) => Math.log10(p.current_a));
  const x0 = Math.min(...xs) - 0.1, x1 = Math.max(...xs) + 0.1;
  const lim = Math.max(1, ...pts.map((p) => Math.abs(p.mpe || 0)), ...pts.map((p) => Math.abs(p.error) + (p.u || 0)));
  const X = (a) => 40 + (430 * (Math.log10(a) - x0)) / Math.max(1e-9, x1 - x0);
  const Y = (e) => 90 - (80 * e) / (lim * 1.1);
  box.append(svg("line", { x1: 40, x2: 470, y1: Y(0), y2: Y(0), stroke: "#9ca3af" }));
  const label = svg("text", { x: 470, y: 176, "text-anchor": "end", "font-size": 11, fill: "#6b7280" }); label.textContent = t("error_chart"); box.append(label);
  for (const [e, txt] of [[lim, `+${fmt(lim, 1)}`], [-lim, `-${fmt(lim, 1)}`]]) {
    const l = svg("text", { x: 2, y: Y(e) + 4, "font-size": 10, fill: "#6b7280" }); l.textContent = txt; box.append(l);
  }
  const ports = [...new Set(pts.map((p) => p.port))];
  const colours = ["#1d4ed8", "#c2410c", "#047857", "#7c3aed"];
  for (const p of pts) {
    const x = X(p.current_a) + (ports.indexOf(p.port) - (ports.length - 1) / 2) * 5;
    if (p.mpe) box.append(svg("line", { x1: x - 6, x2: x + 6, y1: Y(p.mpe), y2: Y(p.mpe), stroke: "#b91c1c" }),
      svg("line", { x1: x - 6, x2: x + 6, y1: Y(-p.mpe), y2: Y(-p.mpe), stroke: "#b91c1c" }));
    const colour = colours[ports.indexOf(p.port) % colours.length];
    if (p.u) box.append(svg("line", { x1: x, x2: x, y1: Y(p.error - p.u), y2: Y(p.error + p.u), stroke: colour, "stroke-width": 2 }));
    const dot = svg("circle", { cx: x, cy: Y(p.error), r: 3, fill: colour });
    const title = svg("title"); title.textContent = `${tr(p.name)} ${tr(p.port)}` + (p.shown ? `: ${p.shown.error} % ± ${p.shown.u} %` : ""); dot.append(title);
    box.append(dot);
  }
  return box;
}

// The load the source holds: a phasor per phase (voltage and current) and the numbers.
function drawLoad() {
  const s = state.load;
  const box = $("phasors");
  box.replaceChildren(svg("circle", { cx: 0, cy: 0, r: 100, fill: "none", stroke: "#e5e7eb" }));
  const tbody = $("load");
  tbody.replaceChildren();
  $("load-state").textContent = s ? (state.loadOn ? t("source_on") : t("source_off")) : "";
  if (!s) return;
  const colours = ["#92400e", "#111827", "#6b7280"];
  const vmax = Math.max(...s.phases.map((p) => p.voltage_v), 1);
  const imax = Math.max(...s.phases.map((p) => p.current_a), 1e-9);
  s.phases.forEach((p, k) => {
    const base = (-120 * k * Math.PI) / 180;
    const phi = (p.current_lag_deg * Math.PI) / 180;
    const on = state.loadOn;
    const v = on ? (95 * p.voltage_v) / vmax : 0;
    const i = on ? (70 * p.current_a) / imax : 0;
    box.append(
      svg("line", { x1: 0, y1: 0, x2: v * Math.cos(base), y2: -v * Math.sin(base), stroke: colours[k], "stroke-width": 3 }),
      svg("line", { x1: 0, y1: 0, x2: i * Math.cos(base - phi), y2: -i * Math.sin(base - phi), stroke: colours[k], "stroke-width": 2, "stroke-dasharray": "5 3" }));
    tbody.append(el("tr", {}, el("td", { text: `L${k + 1}` }), el("td", { class: "num", text: on ? fmt(p.voltage_v, 1) : "0" }),
      el("td", { class: "num", text: on ? fmt(p.current_a, 3) : "0" }), el("td", { class: "num", text: fmt(p.current_lag_deg, 1) })));
  });
}

// ---- questions ----
function promptText(q) {
  if (lang !== "de") return q.prompt;
  if (PROMPTS_DE[q.key]) return PROMPTS_DE[q.key];
  for (const [re, f] of PROMPT_PATTERNS_DE) { const m = q.key.match(re); if (m) return f(m, q.prompt); }
  return q.prompt;
}

function showQuestion(q) {
  state.question = q;
  if (state.replaying) return; // shown once the replay is through, if still open
  const d = $("question");
  d.dataset.key = q.key;
  $("question-position").textContent = q.position != null && state.positions.size > 1 ? t("question_for", { p: q.position }) : "";
  $("question-prompt").textContent = promptText(q);
  $("question-hint").textContent = lang === "de" && HINTS_DE[q.format] ? HINTS_DE[q.format](q) : q.hint;
  $("question-error").textContent = "";
  const yesno = q.format === "yes_no";
  $("question-yesno").hidden = !yesno;
  $("question-text").hidden = yesno;
  $("question-input").value = "";
  if (!d.open) d.showModal();
  if (!yesno) $("question-input").focus();
}

function closeQuestion() {
  state.question = null;
  const d = $("question");
  if (d.open) d.close();
}

async function sendAnswer(text) {
  const q = state.question;
  if (!q) return;
  try {
    await api("/api/answer", { id: q.id, answer: text });
  } catch (e) {
    $("question-error").textContent = refusalText(e);
    $("question-input").select();
  }
}

// ---- actions ----
async function startRun(ev) {
  if (ev) ev.preventDefault();
  $("start-error").textContent = "";
  const serials = {};
  for (const input of document.querySelectorAll("#serials input")) {
    if (input.value.trim()) serials[input.dataset.position] = input.value;
  }
  const simFaults = $("sim-faults").value.split("\n").map((l) => l.trim()).filter(Boolean);
  // The order behind the calibration, printed on the certificate; the bench checks it.
  const text = (id) => $(id).value.trim() || null;
  // Any field typed sends the order, so a receipt without a customer is refused by
  // the bench as it is at the terminal, never dropped.
  const fields = ["customer", "customer-contact", "received", "condition"];
  const order = fields.some(text) && {
    customer: $("customer").value, contact: text("customer-contact"),
    received: text("received"), condition: text("condition"),
  };
  try {
    setBusy(true);
    await api("/api/start", {
      procedure: $("procedure").value, fixture: $("fixture").value, serials,
      ask: $("ask").checked, sim_faults: simFaults, order: order || null,
    });
  } catch (e) {
    setBusy(state.busy);
    $("start-error").textContent = refusalText(e);
  }
}

async function stopRun() {
  try { await api("/api/stop", {}); } catch (e) { $("start-error").textContent = refusalText(e); }
}

async function retest(runId, step) {
  $("start-error").textContent = "";
  try {
    setBusy(true);
    await api("/api/retest", { run_id: runId, step });
    $("step-line").textContent = t("retest_started", { step: tr(step) });
  } catch (e) {
    setBusy(state.busy);
    $("start-error").textContent = refusalText(e);
  }
}

function nextInLoop() {
  for (const input of document.querySelectorAll("#serials input")) input.value = "";
  const first = document.querySelector("#serials input");
  if (first) first.focus();
}

async function loadHistory(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({ serial: $("history-serial").value, verdict: $("history-verdict").value });
  try {
    const h = await api(`/api/history?${q}`);
    $("history").replaceChildren(...h.runs.map((r) => {
      const verify = el("button", { class: "small", type: "button", text: t("verify") });
      const result = el("span");
      verify.addEventListener("click", async () => {
        try {
          const v = await api(`/api/runs/${encodeURIComponent(r.run_id)}/verify`);
          const problems = v.problems || [];
          result.textContent = v.ok ? ` ${t("verified", { key: v.key_id })}` : ` ${t("not_verified")}: ${problems.map(problemText).join("; ")}`;
          // The bench's own words (its hashes, its lines) stay a hover away.
          result.title = problems.map((p) => p.text).join("\n");
          result.className = v.ok ? "verdict PASS" : "verdict FAIL";
        } catch (e) {
          result.textContent = ` ${refusalText(e)}`;
          result.className = "verdict ERROR";
        }
      });
      return el("tr", { "data-run": r.run_id },
        el("td", { text: r.started_utc.replace("T", " ").slice(0, 19) }),
        el("td", { text: r.serial }), el("td", { text: r.procedure }),
        el("td", { class: `verdict ${r.outcome}`, text: t(r.outcome) }),
        el("td", {}, r.certificate ? el("a", { href: r.certificate, target: "_blank", text: "PDF" }) : ""),
        el("td", {}, verify, result));
    }));
    $("history-note").textContent = h.total ? t("runs_shown", { n: h.runs.length, total: h.total }) : t("no_runs");
    window.meterbenchHistoryLoads += 1;
  } catch (e) {
    $("history-note").textContent = refusalText(e);
  }
}

// ---- station ----
async function loadStation() {
  const s = await api("/api/station");
  state.station = s;
  $("station-title").textContent = `${s.name} (${s.id}) · ${s.laboratory}`;
  $("key-id").textContent = s.key_id;
  $("logout").hidden = !s.login;
  $("instruments").replaceChildren(...s.instruments.map((i) => el("tr", { class: `due-${i.state}` },
    el("td", { text: roleText(i) }), el("td", { text: `${i.model} · ${i.serial_number}` }),
    el("td", { text: i.calibration }),
    el("td", { class: "due", text: i.state === "ok" ? i.due : `${i.due} (${t(i.state)})` }))));
  $("rack").textContent = s.positions.map((p) => p.id).join(", ");
  const fill = (select, names, prefer) => {
    const keep = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n.replace(/\.yaml$/, "") })));
    select.value = names.includes(keep) ? keep : (names.includes(prefer) ? prefer : names[0]);
  };
  fill($("procedure"), s.procedures, "en50470-3-class-b.yaml");
  fill($("fixture"), s.fixtures, "cpim1000.yaml");
  $("serials").replaceChildren(...s.positions.map((p) => {
    const input = el("input", { "data-position": p.id, placeholder: p.simulated_serial || "", autocomplete: "off" });
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      const inputs = [...document.querySelectorAll("#serials input")];
      const next = inputs[inputs.indexOf(input) + 1];
      if (next) next.focus(); else startRun();
    });
    return el("tr", {}, el("td", { text: String(p.id) }), el("td", {}, input));
  }));
  for (const e of document.querySelectorAll(".sim-only")) e.hidden = !s.simulated;
  setBusy(s.busy);
}

function applyLanguage() {
  document.documentElement.lang = lang;
  $("lang").textContent = lang === "de" ? "EN" : "DE";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
  if (state.station) loadStation().catch(() => {});
  showConnection($("connection").classList.contains("on"));
  drawLoad();
  render();
  if (state.question) showQuestion(state.question);
  loadHistory();
}

// ---- the stream ----
let stream = null;
function connect() {
  if (stream) stream.close();
  const es = new EventSource("/api/events");
  stream = es;
  es.onopen = () => showConnection(true);
  es.onerror = () => {
    showConnection(false);
    // The browser gives up on a stream the bench refuses (its login has ended: the bench
    // ends the stream, and refuses it again): ask the bench why, which shows the login
    // form for that reason, or else open the stream again after a while.
    if (es.readyState === EventSource.CLOSED && stream === es) {
      api("/api/station").then(() => setTimeout(() => { if (stream === es) connect(); }, 3000), () => {});
    }
  };
  // Each event holds the messages of a burst, in order.
  es.onmessage = (e) => { for (const m of JSON.parse(e.data)) receive(m); };
}

function receive(m) {
  const replayed = state.replaying > 0 && m.event !== "panel_hello";
  if (!replayed && m.sent_ms) {
    window.meterbenchLatencies.push(Date.now() - m.sent_ms);
    window.meterbenchArrivals.push(Date.now());
  }
  window.meterbenchMessages += 1;
  window.meterbenchSent[m.event] = m.sent_ms;
  window.meterbenchReceived[m.event] = Date.now();
  window.meterbenchLast[m.event] = m;
  handle(m);
  if (replayed) {
    state.replaying -= 1;
    if (state.replaying === 0) { if (state.question) showQuestion(state.question); setBusy(state.busy); drawNow(); }
  }
}

function showConnection(on) {
  $("connection").className = on ? "connection on" : "connection off";
  $("connection").textContent = t(on ? "online" : "offline");
}

function showLogin() {
  // The login has ended (or was never given): no dialog stays over the form, and the
  // stream (which a new login opens again) stops.
  closeQuestion();
  if (stream) { stream.close(); stream = null; showConnection(false); }
  $("login").hidden = false; $("main").hidden = true; $("logout").hidden = true;
  // What the last login saw goes from the page too (a new login replays and reloads it).
  $("positions").replaceChildren(); $("overview").replaceChildren(); $("history").replaceChildren();
  $("step-line").textContent = ""; $("session-id").textContent = "";
  $("login-password").focus();
}

async function start() {
  applyLanguageStatic();
  try {
    await loadStation();
  } catch (e) {
    if ($("login").hidden) document.body.append(el("p", { class: "error", text: refusalText(e) }));
    return;
  }
  $("login").hidden = true; $("main").hidden = false;
  resetSession();
  connect();
  loadHistory();
}

function applyLanguageStatic() {
  document.documentElement.lang = lang;
  $("lang").textContent = lang === "de" ? "EN" : "DE";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
}

document.addEventListener("DOMContentLoaded", () => {
  $("start-form").addEventListener("submit", startRun);
  // Stop acts at once: the source goes off, the records are kept.
  $("stop").addEventListener("click", stopRun);
  $("question-stop").addEventListener("click", stopRun);
  $("answer-yes").addEventListener("click", () => sendAnswer("yes"));
  $("answer-no").addEventListener("click", () => sendAnswer("no"));
  $("question-form").addEventListener("submit", (e) => { e.preventDefault(); sendAnswer($("question-input").value); });
  $("question").addEventListener("cancel", (e) => e.preventDefault());
  $("history-form").addEventListener("submit", loadHistory);
  $("lang").addEventListener("click", () => {
    lang = lang === "de" ? "en" : "de";
    localStorage.setItem("meterbench.lang", lang);
    applyLanguage();
  });
  $("logout").addEventListener("click", async () => {
    await api("/api/logout", {}).catch(() => {});
    showLogin();
  });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/login", { password: $("login-password").value });
      // The password does not stay in the form (for whoever comes after a logout).
      $("login-password").value = ""; $("login-error").textContent = "";
      start();
    } catch (err) {
      $("login-error").textContent = refusalText(err);
    }
  });
  start();
});
