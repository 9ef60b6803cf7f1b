//! The panel's event stream: every runner event of the current session and the panel's
//! own (questions, delivered bundles), numbered and kept, so that a page opened (or
//! reconnected) mid-run first replays what it missed and then follows live.

use meterbench_runner::{Event, Observer};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many messages a slow page may fall behind before its stream is cut (it then
/// reconnects and replays).
const LAG: usize = 4096;

pub(crate) struct Hub {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The messages of the current (or last) session, as sent.
    replay: Vec<Arc<str>>,
    next_id: u64,
    live: broadcast::Sender<Arc<str>>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            inner: Mutex::new(Inner {
                replay: Vec::new(),
                next_id: 1,
                live: broadcast::channel(LAG).0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session begins: the last one's messages are no longer replayed.
    pub fn begin(&self) {
        self.lock().replay.clear();
    }

    /// Send `message` (an object with an `event` field) to every page: numbered
    /// (`seq`) and stamped with the wall-clock time it left (`sent_ms`, ms since the
    /// epoch), from which a page measures how late it arrived.
    pub fn publish(&self, mut message: Value) {
        let mut inner = self.lock();
        let sent_ms = chrono::Utc::now().timestamp_micros() as f64 / 1000.0;
        if let Some(m) = message.as_object_mut() {
            m.insert("seq".into(), json!(inner.next_id));
            m.insert("sent_ms".into(), json!(sent_ms));
        }
        inner.next_id += 1;
        let text: Arc<str> = message.to_string().into();
        inner.replay.push(text.clone());
        // No page listening is not an error.
        let _ = inner.live.send(text);
    }

    /// What a page that connects now must see first, and the live stream after it (taken
    /// under one lock: nothing falls between the two).
    pub fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let inner = self.lock();
        (inner.replay.clone(), inner.live.subscribe())
    }
}

/// The runner's events, onto the hub as they are (their JSON is the stream's schema),
/// each step result's error and U also as the certificate and the console print them.
pub(crate) struct HubObserver(pub Arc<crate::Shared>);

impl Observer for HubObserver {
    fn event(&mut self, event: &Event) {
        match serde_json::to_value(event) {
            Ok(mut v) => {
                add_shown(&mut v);
                self.0.hub.publish(v)
            }
            Err(e) => self.0.hub.publish(json!({
                "event": "panel_error",
                "message": format!("an event could not be written: {e}"),
            })),
        }
    }
}

/// To every port result of a finished step that has an error and its U, add `shown`:
/// both rounded as every output of the bench rounds them (EA-4/02: U to two significant
/// digits, the error to U's last digit), so the page never rounds on its own.
fn add_shown(event: &mut Value) {
    let Some(ports) = event
        .pointer_mut("/step/ports")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for port in ports {
        let result = &port["result"];
        let error = [
            "/error_percent",
            "/mean_error_percent",
            "/comparison/error_percent",
        ]
        .iter()
        .find_map(|p| result.pointer(p).and_then(Value::as_f64));
        let u = result.get("expanded_u_percent").and_then(Value::as_f64);
        if let (Some(error), Some(u)) = (error, u) {
            let r = meterbench_report::round_result(error, u);
            port["shown"] = json!({"error": r.signed, "u": r.u});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_shown_rounded_as_the_certificate_rounds_them() {
        let mut e = json!({"event": "step_finished", "step": {"ports": [
            {"port": "left", "result": {"error_percent": 0.35843, "expanded_u_percent": 0.0051914}},
            {"port": "right", "result": {"kind": "pulse_check", "passed": true}},
        ]}});
        add_shown(&mut e);
        assert_eq!(
            e["step"]["ports"][0]["shown"],
            json!({"error": "+0.3584", "u": "0.0052"})
        );
        assert!(e["step"]["ports"][1].get("shown").is_none());
    }

    #[test]
    fn a_late_page_replays_then_follows_and_a_new_session_starts_afresh() {
        let hub = Hub::new();
        hub.publish(json!({"event": "a"}));
        hub.publish(json!({"event": "b"}));
        let (replay, mut live) = hub.subscribe();
        let seqs: Vec<u64> = replay
            .iter()
            .map(|m| {
                serde_json::from_str::<Value>(m).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [1, 2]);
        hub.publish(json!({"event": "c"}));
        let c: Value = serde_json::from_str(&live.try_recv().unwrap()).unwrap();
        assert_eq!(
            (c["event"].as_str(), c["seq"].as_u64()),
            (Some("c"), Some(3))
        );
        assert!(c["sent_ms"].as_f64().unwrap() > 1.7e12);
        hub.begin();
        assert!(hub.subscribe().0.is_empty());
    }
}
