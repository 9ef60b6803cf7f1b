//! The panel's event stream: every runner event of the current session and the panel's
//! own (questions, delivered bundles), numbered and kept, so that a page opened (or
//! reconnected) mid-run first replays what it missed and then follows live.

use meterbench_runner::{Event, Observer};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::broadcast;

/// How many messages a slow page may fall behind before its stream is cut (it then
/// reconnects and replays).
const LAG: usize = 4096;

pub(crate) struct Hub {
    inner: Arc<Mutex<Inner>>,
    /// To the hub's writer thread, in the order published.
    queue: Mutex<mpsc::Sender<Outgoing>>,
}

struct Inner {
    /// The messages of the current (or last) session, as sent.
    replay: Vec<Arc<str>>,
    next_id: u64,
    live: broadcast::Sender<Live>,
}

/// A message as the live stream carries it: its JSON, and whether it is the panel's own
/// (a question, a delivered bundle, the end of a session), which a page must get at once
/// rather than with the burst of runner events it may fall into.
#[derive(Clone)]
pub(crate) struct Live {
    pub text: Arc<str>,
    pub urgent: bool,
}

/// What the writer thread is given: messages are written to JSON there, not on the
/// runner's thread, which an event would otherwise hold up for its serialisation (a step's
/// result is kilobytes; a run's events took about 9 ms of a 0.4 s unpaced run).
enum Outgoing {
    Begin,
    Message {
        message: Value,
        sent_ms: f64,
    },
    Event {
        event: Box<Event>,
        sent_ms: f64,
    },
    /// Answered once everything before it is written (tests).
    #[cfg(test)]
    Flush(mpsc::Sender<()>),
}

/// Now, ms since the epoch: when a message was handed to the hub.
fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

impl Hub {
    pub fn new() -> Hub {
        let inner = Arc::new(Mutex::new(Inner {
            replay: Vec::new(),
            next_id: 1,
            live: broadcast::channel(LAG).0,
        }));
        let (queue, from_hub) = mpsc::channel();
        let writer = inner.clone();
        // Ends when the hub is dropped (its sender with it).
        std::thread::Builder::new()
            .name("panel-hub".into())
            .spawn(move || {
                for o in from_hub {
                    write(&writer, o);
                }
            })
            .expect("a thread for the panel's event stream");
        Hub {
            inner,
            queue: Mutex::new(queue),
        }
    }

    fn send(&self, o: Outgoing) {
        // The writer lives as long as the hub; a send fails only if it panicked.
        let _ = self.queue.lock().unwrap_or_else(|p| p.into_inner()).send(o);
    }

    /// A new session begins: the last one's messages are no longer replayed.
    pub fn begin(&self) {
        self.send(Outgoing::Begin);
    }

    /// Send `message` (an object with an `event` field) to every page: numbered
    /// (`seq`) and stamped with the wall-clock time it was handed over (`sent_ms`, ms
    /// since the epoch), from which a page measures how late it arrived.
    pub fn publish(&self, message: Value) {
        self.send(Outgoing::Message {
            message,
            sent_ms: now_ms(),
        });
    }

    /// A runner's event, as [`Hub::publish`].
    pub fn publish_event(&self, event: Event) {
        self.send(Outgoing::Event {
            event: Box::new(event),
            sent_ms: now_ms(),
        });
    }

    /// What a page that connects now must see first, and the live stream after it (taken
    /// under one lock: nothing falls between the two).
    pub fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Live>) {
        let inner = lock(&self.inner);
        (inner.replay.clone(), inner.live.subscribe())
    }

    /// Wait until everything published so far is written.
    #[cfg(test)]
    fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Outgoing::Flush(tx));
        rx.recv().unwrap();
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer thread's work: number, stamp and write one message, keep it for the
/// replay and send it to the pages listening.
fn write(inner: &Mutex<Inner>, o: Outgoing) {
    let urgent = matches!(o, Outgoing::Message { .. });
    let (mut message, sent_ms) = match o {
        Outgoing::Begin => {
            lock(inner).replay.clear();
            return;
        }
        #[cfg(test)]
        Outgoing::Flush(done) => {
            let _ = done.send(());
            return;
        }
        Outgoing::Message { message, sent_ms } => (message, sent_ms),
        Outgoing::Event { event, sent_ms } => match serde_json::to_value(&*event) {
            Ok(mut v) => {
                add_shown(&mut v);
                (v, sent_ms)
            }
            Err(e) => (
                json!({
                    "event": "panel_error",
                    "message": format!("an event could not be written: {e}"),
                }),
                sent_ms,
            ),
        },
    };
    let mut inner = lock(inner);
    if let Some(m) = message.as_object_mut() {
        m.insert("seq".into(), json!(inner.next_id));
        m.insert("sent_ms".into(), json!(sent_ms));
    }
    inner.next_id += 1;
    let text: Arc<str> = message.to_string().into();
    inner.replay.push(text.clone());
    // No page listening is not an error.
    let _ = inner.live.send(Live { text, urgent });
}

/// The runner's events, onto the hub as they are (their JSON is the stream's schema),
/// each step result's error and U also as the certificate and the console print them.
pub(crate) struct HubObserver(pub Arc<crate::Shared>);

impl Observer for HubObserver {
    fn event(&mut self, event: &Event) {
        self.0.hub.publish_event(event.clone());
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
        hub.flush();
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
        hub.flush();
        let c = live.try_recv().unwrap();
        assert!(c.urgent, "the panel's own message");
        let c: Value = serde_json::from_str(&c.text).unwrap();
        assert_eq!(
            (c["event"].as_str(), c["seq"].as_u64()),
            (Some("c"), Some(3))
        );
        assert!(c["sent_ms"].as_f64().unwrap() > 1.7e12);
        hub.begin();
        hub.flush();
        assert!(hub.subscribe().0.is_empty());
    }
}
