//! The DCC document itself, element by element. The order of elements follows
//! dcc-3.2.1.xsd (a sequence: a misplaced element fails validation); the test suite
//! validates the output with xmllint.

use super::ne;
use super::xml::{DccWriter, MetaData, Unc};
use crate::view::{AccuracyRow, View};

/// Everything the document shows, checked and defaulted by `render_dcc_xml`.
pub(super) struct Doc<'a> {
    pub v: &'a View,
    pub lang: &'a str,
    pub signer: &'a str,
    pub signer_role: Option<&'a str>,
    pub customer_name: &'a str,
    pub customer_address: &'a str,
    pub customer_placeholder: bool,
    pub laboratory_address: &'a str,
    pub laboratory_code: Option<&'a str>,
    pub country: &'a str,
    pub issue_date: Option<String>,
    pub schema_version: &'a str,
    /// The embedded PDF: file name and base64.
    pub document: Option<(&'a str, &'a str)>,
}

const NAMESPACES: [(&str, &str); 4] = [
    ("xmlns:dcc", "https://ptb.de/dcc"),
    ("xmlns:si", "https://ptb.de/si"),
    ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
    (
        "xsi:schemaLocation",
        "https://ptb.de/dcc https://ptb.de/dcc/v3.2.1/dcc.xsd",
    ),
];

/// The view's empty strings are "absent", as the certificate templates read them.
fn given(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

pub(super) fn write(x: &mut DccWriter, d: &Doc) {
    let mut root = NAMESPACES.to_vec();
    root.push(("schemaVersion", d.schema_version));
    x.element_with("dcc:digitalCalibrationCertificate", &root, |x| {
        x.element("dcc:administrativeData", |x| {
            software(x, d.v);
            core_data(x, d);
            items(x, d.v);
            calibration_laboratory(x, d);
            resp_persons(x, d);
            x.element("dcc:customer", |x| {
                x.name(d.customer_name);
                x.element("dcc:location", |x| {
                    x.content("dcc:further", d.customer_address);
                });
            });
            statements(x, d);
        });
        x.element("dcc:measurementResults", |x| {
            x.element("dcc:measurementResult", |x| measurement_result(x, d.v));
        });
        if let Some((file_name, base64)) = d.document {
            x.element_with("dcc:document", &[("id", "certificatePdf")], |x| {
                x.name("This certificate as a PDF document, rendered from the same run record");
                x.text_element("dcc:fileName", file_name);
                x.text_element("dcc:mimeType", "application/pdf");
                x.text_element("dcc:dataBase64", base64);
            });
        }
    });
}

fn software(x: &mut DccWriter, v: &View) {
    x.element("dcc:dccSoftware", |x| {
        x.element("dcc:software", |x| {
            x.name("meterbench");
            x.text_element("dcc:release", &ne(&v.bench_version));
            x.text_element("dcc:type", "application");
            x.description(&format!(
                "Calibration bench software that ran the measurement (bench version {}) and rendered this certificate from the stored run record (meterbench-report {}).",
                v.bench_version, v.renderer_version
            ));
        });
    });
}

fn core_data(x: &mut DccWriter, d: &Doc) {
    let v = d.v;
    let finished = v.finished.as_ref().unwrap_or(&v.started);
    x.element("dcc:coreData", |x| {
        x.text_element("dcc:countryCodeISO3166_1", d.country);
        x.text_element("dcc:usedLangCodeISO639_1", d.lang);
        x.text_element("dcc:mandatoryLangCodeISO639_1", d.lang);
        x.text_element("dcc:uniqueIdentifier", &ne(&v.run_id));
        x.element("dcc:identifications", |x| {
            x.element("dcc:identification", |x| {
                x.text_element("dcc:issuer", "calibrationLaboratory");
                x.text_element(
                    "dcc:value",
                    &format!("{} {}", ne(&v.procedure.id), ne(&v.procedure.version)),
                );
                x.name(&format!(
                    "Procedure (id and version); file {}, SHA-256 {}",
                    v.procedure.path, v.procedure.sha256
                ));
            });
            x.element("dcc:identification", |x| {
                x.text_element("dcc:issuer", "calibrationLaboratory");
                x.text_element("dcc:value", &ne(&v.station.id));
                x.name(&format!(
                    "Calibration station {}; file {}, SHA-256 {}",
                    v.station.name, v.station.path, v.station.sha256
                ));
            });
        });
        if let Some(received) = v.order.received_date.as_deref() {
            x.text_element("dcc:receiptDate", received);
        }
        x.text_element("dcc:beginPerformanceDate", &v.started.date);
        x.text_element("dcc:endPerformanceDate", &finished.date);
        // A station that stands elsewhere than the laboratory (a line, a customer's
        // site) says where in the place-of-calibration statement.
        x.text_element(
            "dcc:performanceLocation",
            if v.station.located_elsewhere {
                "other"
            } else {
                "laboratory"
            },
        );
        if let Some(date) = &d.issue_date {
            x.text_element("dcc:issueDate", date);
        }
        // ISO/IEC 17025 7.8.8: a run that continues a stored one (a retest in a later
        // session) replaces that run's certificate and names it; the deviations say why.
        if let Some(replaced) = v.amends.as_deref() {
            x.element("dcc:reportAmendedSubstituted", |x| {
                x.text_element("dcc:typeOfChange", "amended");
                x.text_element("dcc:replacedUniqueIdentifier", &ne(replaced));
            });
        }
    });
}

fn items(x: &mut DccWriter, v: &View) {
    let dut = &v.dut;
    x.element("dcc:items", |x| {
        x.element_with("dcc:item", &[("id", "dut")], |x| {
            x.name(&format!(
                "Active electrical energy meter {} (measuring ports: {})",
                dut.device_type,
                dut.ports.join(", ")
            ));
            x.description(&format!(
                "Accuracy class {} ({}); meter constant {} imp/kWh; fixture profile {} ({}, SHA-256 {}).",
                dut.accuracy_class,
                v.method.norm,
                dut.meter_constant,
                v.fixture.id,
                v.fixture.path,
                v.fixture.sha256
            ));
            x.element("dcc:manufacturer", |x| x.name(&dut.manufacturer));
            x.text_element("dcc:model", &ne(&dut.device_type));
            x.element("dcc:identifications", |x| {
                x.element("dcc:identification", |x| {
                    x.text_element("dcc:issuer", "manufacturer");
                    x.text_element("dcc:value", &ne(&dut.serial_number));
                    x.name("Serial number");
                });
            });
            x.element("dcc:itemQuantities", |x| {
                x.element("dcc:itemQuantity", |x| {
                    x.name("Meter constant (test output), impulses per kilowatt hour");
                    x.real(&dut.meter_constant, r"\one\per\kilo\watt\hour", None);
                });
                x.element("dcc:itemQuantity", |x| {
                    x.name("Accuracy class");
                    x.content("dcc:noQuantity", &dut.accuracy_class);
                });
            });
        });
    });
}

fn calibration_laboratory(x: &mut DccWriter, d: &Doc) {
    x.element("dcc:calibrationLaboratory", |x| {
        if let Some(code) = d.laboratory_code {
            x.text_element("dcc:calibrationLaboratoryCode", code);
        }
        x.element("dcc:contact", |x| {
            x.name(&d.v.station.laboratory);
            x.element("dcc:location", |x| {
                x.text_element("dcc:countryCode", d.country);
                x.content("dcc:further", d.laboratory_address);
            });
        });
    });
}

fn resp_persons(x: &mut DccWriter, d: &Doc) {
    x.element("dcc:respPersons", |x| {
        x.element("dcc:respPerson", |x| {
            x.element("dcc:person", |x| x.name(d.signer));
            if let Some(role) = d.signer_role {
                x.text_element("dcc:role", role);
            }
            x.text_element("dcc:mainSigner", "true");
        });
    });
}

fn statements(x: &mut DccWriter, d: &Doc) {
    let v = d.v;
    x.element("dcc:statements", |x| {
        if v.simulated {
            x.element_with("dcc:statement", &[("id", "simulated")], |x| {
                x.name("Simulated bench");
                x.content(
                    "dcc:declaration",
                    "The instruments of this run were the simulated bench's (driver \"sim\"). The values demonstrate the bench software; they are not a calibration of a physical meter.",
                );
            });
        }
        if d.customer_placeholder {
            x.element_with("dcc:statement", &[("id", "customerPlaceholder")], |x| {
                x.name("Customer");
                x.content(
                    "dcc:declaration",
                    "No customer was recorded for this run (none was given when it was started): the customer entry says so and names nobody.",
                );
            });
        }
        x.element_with("dcc:statement", &[("id", "placeOfCalibration")], |x| {
            x.name("Place of calibration");
            x.content("dcc:declaration", &v.station.place);
        });
        x.element_with("dcc:statement", &[("id", "receipt")], |x| {
            x.name("Receipt of the item");
            x.content(
                "dcc:declaration",
                &format!(
                    "Date of receipt: {}. Condition on receipt: {}.",
                    v.order.received, v.order.condition
                ),
            );
        });
        x.element_with("dcc:statement", &[("id", "traceability")], |x| {
            x.name("Metrological traceability");
            x.content("dcc:declaration", &v.traceability);
        });
        x.element_with("dcc:statement", &[("id", "decisionRule")], |x| {
            x.name("Decision rule and conformity with the maximum permissible errors");
            x.text_element("dcc:norm", v.decision.norm);
            for source in &v.limit_sources {
                x.text_element("dcc:reference", &ne(source));
            }
            let reason = v
                .outcome_reason
                .as_deref()
                .and_then(given)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            // Signed: a record never has more failures than points, but the count must
            // not wrap if one did.
            let accepted = v.point_count as i64 - v.fail_count as i64;
            x.content(
                "dcc:declaration",
                &format!(
                    "{}: {} A point whose U is too large for a statement gets none: {}. Result of the run: {}{reason}; {accepted} of {} accuracy points accepted.",
                    v.decision.name,
                    v.decision.description,
                    v.no_statement_rule,
                    v.outcome,
                    v.point_count
                ),
            );
            if let Some(c) = v.overall_conformity.and_then(given) {
                x.text_element("dcc:conformity", c);
            }
        });
        x.element_with("dcc:statement", &[("id", "uncertainty")], |x| {
            x.name("Measurement uncertainty");
            x.text_element("dcc:norm", v.uncertainty_norm);
            x.content("dcc:declaration", &uncertainty_declaration(v));
        });
    });
}

/// What the expanded uncertainty includes, which depends on the kind of device and on
/// how its points were decided.
fn uncertainty_declaration(v: &View) -> String {
    let includes = if v.dut.kind == "current_sensor" {
        let mut s = String::from(
            "It includes the reference current (from the source's calibration certificate)",
        );
        if v.sensor_readings_decided {
            s.push_str(", for readings at a fixed current the sensor's reading resolution and the scatter of its readings");
        }
        if !v.transitions.is_empty() {
            s.push_str(if v.sensor_readings_decided { ";" } else { "," });
            s.push_str(" at transition points the search's standard uncertainty of the transition current, which includes the sensor's noise (the reading resolution does not enter)");
        }
        s.push_str("; it does not include the sensor's long-term stability.");
        s
    } else {
        "It includes the reference standard (from its calibration certificate), the counter timebase, the count quantisation and the timing of the meter's pulses over the repeats (jitter and noise carried in its energy accumulation), checked against the scatter of the repeats; it does not include the meter's long-term stability.".to_string()
    };
    format!(
        "The expanded uncertainty U is the combined standard uncertainty multiplied by the coverage factor k stated with each result: Student's t at the result's effective degrees of freedom (Welch–Satterthwaite) for a coverage probability of {} (k = 2 when the degrees of freedom are many; EA-4/02). {includes}",
        v.coverage_probability
    )
}

fn measurement_result(x: &mut DccWriter, v: &View) {
    let finished = v.finished.as_ref().unwrap_or(&v.started);
    x.name(&v.procedure.title);
    x.description(&format!(
        "Procedure {} version {} (SHA-256 {}). Run {}, {} to {}. Errors e in percent of the reference energy: e = (E_meter − E_ref) / E_ref × 100 %.",
        v.procedure.id,
        v.procedure.version,
        v.procedure.sha256,
        v.run_id,
        v.started.display,
        finished.display
    ));
    used_methods(x, v);
    measuring_equipments(x, v);
    influence_conditions(x, v);
    x.element("dcc:results", |x| results(x, v));
}

fn used_methods(x: &mut DccWriter, v: &View) {
    x.element("dcc:usedMethods", |x| {
        x.element_with("dcc:usedMethod", &[("id", "method")], |x| {
            x.name(v.method.name);
            x.description(&v.method.description);
            x.text_element("dcc:norm", v.method.norm);
        });
        if !v.transitions.is_empty() {
            x.element_with("dcc:usedMethod", &[("id", "transition")], |x| {
                x.name("Transition points of a quantised reading");
                x.description(&v.transition_method);
            });
        }
        x.element_with("dcc:usedMethod", &[("id", "decision")], |x| {
            x.name(&format!("Decision rule: {}", v.decision.name));
            x.description(v.decision.description);
            x.text_element("dcc:norm", v.decision.norm);
        });
    });
}

fn measuring_equipments(x: &mut DccWriter, v: &View) {
    x.element("dcc:measuringEquipments", |x| {
        for i in &v.instruments {
            x.element("dcc:measuringEquipment", |x| {
                x.name(&format!("{}: {}", i.role, i.declared_model));
                let port = i
                    .port
                    .as_deref()
                    .and_then(given)
                    .map(|p| format!(", port {p}"))
                    .unwrap_or_default();
                let overdue = if i.overdue {
                    " (OVERDUE at the time of the run)"
                } else {
                    ""
                };
                let identity = match &i.reported {
                    Some(r) => format!(
                        "As reported on the wire: {} {}, serial {}, firmware {}{}.",
                        r.manufacturer,
                        r.model,
                        r.serial,
                        r.firmware,
                        if i.serial_mismatch {
                            " (SERIAL DIFFERS FROM THE STATION FILE)"
                        } else {
                            ""
                        }
                    ),
                    None => "The instrument did not report its identity.".to_string(),
                };
                x.description(&format!(
                    "Role {}, driver {}{port}. Calibration certificate {} issued by {}, due {}{overdue}. {identity}",
                    i.role, i.driver, i.calibration_id, i.issued_by, i.due
                ));
                if let Some(r) = &i.reported {
                    x.element("dcc:manufacturer", |x| x.name(&r.manufacturer));
                }
                x.text_element("dcc:model", &ne(&i.declared_model));
                x.element("dcc:identifications", |x| {
                    x.element("dcc:identification", |x| {
                        x.text_element("dcc:issuer", "manufacturer");
                        x.text_element("dcc:value", &ne(&i.declared_serial));
                        x.name("Serial number (station file)");
                    });
                    if let Some(r) = &i.reported {
                        x.element("dcc:identification", |x| {
                            x.text_element("dcc:issuer", "manufacturer");
                            x.text_element("dcc:value", &ne(&r.serial));
                            x.name("Serial number (as reported by the instrument)");
                        });
                    }
                    x.element("dcc:identification", |x| {
                        x.text_element("dcc:issuer", "other");
                        x.text_element("dcc:value", &ne(&i.calibration_id));
                        x.name(&format!(
                            "Calibration certificate, issued by {}, due {}",
                            i.issued_by, i.due
                        ));
                    });
                });
            });
        }
    });
}

fn influence_conditions(x: &mut DccWriter, v: &View) {
    let setpoint = |x: &mut DccWriter, name: &str, value: &str, unit: &str| {
        x.element("dcc:influenceCondition", |x| {
            x.name(name);
            x.element("dcc:data", |x| {
                x.element("dcc:quantity", |x| x.real(value, unit, None));
            });
        });
    };
    x.element("dcc:influenceConditions", |x| {
        for f in &v.frequencies_hz {
            setpoint(x, "Mains frequency (source setpoint)", f, r"\hertz");
        }
        for u in &v.voltages_v {
            setpoint(
                x,
                "Voltage per phase at the accuracy points (source setpoint)",
                u,
                r"\volt",
            );
        }
        match &v.ambient {
            Some(a) => {
                let measured = |x: &mut DccWriter, name: &str, lo: &str, hi: &str, unit: &str, u: &str| {
                    x.element("dcc:influenceCondition", |x| {
                        x.name(name);
                        x.description(&format!(
                            "Measured with {} before switch-on and as each point began and ended; reference conditions {}; source: {}",
                            a.instrument, a.reference, a.reference_source
                        ));
                        x.element("dcc:data", |x| {
                            for (which, value) in [("lowest", lo), ("highest", hi)] {
                                x.quantity(&format!("{name}, {which} reading"), |x| {
                                    x.real(
                                        value,
                                        unit,
                                        Some(Unc {
                                            uncertainty: u,
                                            coverage_factor: "2",
                                            coverage_probability: &v.coverage_probability,
                                        }),
                                    )
                                });
                            }
                        });
                    });
                };
                if let (Some(lo), Some(hi)) = (&a.temperature_min, &a.temperature_max) {
                    measured(x, "Ambient temperature", lo, hi, r"\degreeCelsius", &a.u_temperature_c);
                }
                if let (Some(lo), Some(hi)) = (&a.humidity_min, &a.humidity_max) {
                    measured(x, "Relative humidity", lo, hi, r"\percent", &a.u_humidity_percent_rh);
                }
            }
            None => x.element("dcc:influenceCondition", |x| {
                x.name("Ambient temperature");
                x.element("dcc:data", |x| {
                    x.content(
                        "dcc:text",
                        "Not measured: the procedure declares no reference conditions.",
                    );
                });
            }),
        }
    });
}

/// `dcc:result` with an `id` (an `xs:ID`: unique in the document, so numbered per kind).
fn result_with_id(x: &mut DccWriter, id: &str, body: impl FnOnce(&mut DccWriter)) {
    x.element_with("dcc:result", &[("id", id)], body);
}

fn results(x: &mut DccWriter, v: &View) {
    for (n, t) in v.ports.iter().enumerate() {
        result_with_id(x, &format!("accuracy-{}", n + 1), |x| {
            x.name(&format!(
                "Port {}: error of the registered active energy",
                t.port
            ));
            x.element("dcc:data", |x| {
                for p in &t.rows {
                    accuracy_point(x, v, p);
                }
            });
        });
    }
    starting(x, v);
    no_load(x, v);
    inspection(x, v);
    register(x, v);
    load_differences(x, v);
    sensor(x, v);
    transitions(x, v);
    telegrams(x, v);
    for u in &v.unmeasured {
        x.element("dcc:result", |x| {
            x.name(&format!("{}: not measured", u.name));
            let message = given(&u.message)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            x.element("dcc:data", |x| {
                x.content(
                    "dcc:text",
                    &format!("The step ended with {}{message}.", u.outcome),
                );
            });
        });
    }
    // The schema wants at least one result: a run that ended before any says so. (The
    // scanned serial alone writes an inspection result but does not count here.)
    let nothing = v.ports.is_empty()
        && v.starting.is_empty()
        && v.no_load.is_empty()
        && v.unmeasured.is_empty()
        && v.sensor.is_empty()
        && v.transitions.is_empty()
        && v.register.is_empty()
        && v.inspection.is_empty()
        && v.telegrams.is_none()
        && v.load_differences.is_empty();
    if nothing {
        x.element("dcc:result", |x| {
            x.name("No results");
            let reason = v
                .outcome_reason
                .as_deref()
                .and_then(given)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            x.element("dcc:data", |x| {
                x.content(
                    "dcc:text",
                    &format!(
                        "The run ended with {}{reason} before any result was measured.",
                        v.outcome
                    ),
                );
            });
        });
    }
}

fn accuracy_point(x: &mut DccWriter, v: &View, p: &AccuracyRow) {
    let phases = given(&p.phases);
    x.element("dcc:list", |x| {
        x.name(&p.name);
        x.description(&format!(
            "{}, {} load on {}, power factor {}; mean of {} repeats of {} meter pulses.",
            p.current_name,
            p.load,
            phases.unwrap_or("no phase"),
            p.pf,
            p.repeats,
            p.pulses_per_repeat
        ));
        x.real_quantity("Current per phase", &p.current_a, r"\ampere");
        x.real_quantity("Voltage per phase", &p.voltage_v, r"\volt");
        x.real_quantity(
            &format!("Power factor cos φ ({})", p.pf_character),
            &p.cos_phi,
            r"\one",
        );
        x.quantity("Current-carrying phases", |x| {
            x.text_element("dcc:charsXMLList", phases.unwrap_or("none"));
        });
        // ILAC-G8 "no statement" has no value in the DCC's conformity list: the point
        // carries the declaration and no dcc:conformity.
        let no_statement = p.conformity == "noStatement";
        x.quantity("Error", |x| {
            x.real(
                &p.error_value,
                r"\percent",
                Some(Unc {
                    uncertainty: &p.u,
                    coverage_factor: &p.k,
                    coverage_probability: &v.coverage_probability,
                }),
            );
            let not_decidable = if no_statement {
                no_statement_reason(v, p.outside_air.as_deref())
            } else {
                String::new()
            };
            x.meta_data(MetaData {
                name: "Conformity with the maximum permissible error",
                norm: Some(v.decision.norm),
                declaration: Some(format!(
                    "{}; MPE ±{} % ({}).{not_decidable}",
                    v.decision.name, p.mpe, p.limit_name
                )),
                conformity: (!no_statement).then_some(p.conformity),
            });
        });
        x.quantity("Maximum permissible error (±)", |x| {
            x.description(&format!("{}; source: {}", p.limit_name, p.limit_source));
            x.real(&p.mpe, r"\percent", None);
        });
    });
}

fn starting(x: &mut DccWriter, v: &View) {
    for (n, s) in v.starting.iter().enumerate() {
        result_with_id(x, &format!("starting-{}", n + 1), |x| {
            x.name(&format!("Port {}: starting current test", s.port));
            x.description(&format!(
                "At the starting current the meter must register at least {} pulses, each within 1.5 τ = {} s (τ = {} s, one pulse period at the starting current).",
                s.required, s.window_s, s.tau_s
            ));
            x.element("dcc:data", |x| {
                x.real_quantity("Starting current per phase", &s.current_a, r"\ampere");
                x.quantity("Pulses registered", |x| {
                    x.real(&s.seen.to_string(), r"\one", None);
                    x.meta_data(MetaData {
                        name: "Meter starts and keeps registering",
                        conformity: Some(s.conformity),
                        ..MetaData::default()
                    });
                });
            });
        });
    }
}

fn no_load(x: &mut DccWriter, v: &View) {
    for (n, t) in v.no_load.iter().enumerate() {
        result_with_id(x, &format!("noload-{}", n + 1), |x| {
            x.name(&format!("Port {}: no-load (creep) test", t.port));
            x.description(&format!(
                "Current circuit open, {} V applied for {} s; at most {} pulse(s) allowed.",
                t.voltage_v, t.duration_s, t.max_pulses
            ));
            x.element("dcc:data", |x| {
                x.real_quantity("Test voltage per phase", &t.voltage_v, r"\volt");
                x.real_quantity("Test duration", &t.duration_s, r"\second");
                x.quantity("Pulses registered", |x| {
                    x.real(&t.pulses.to_string(), r"\one", None);
                    x.meta_data(MetaData {
                        name: "No creep",
                        conformity: Some(t.conformity),
                        ..MetaData::default()
                    });
                });
            });
        });
    }
}

fn inspection(x: &mut DccWriter, v: &View) {
    let scanned = v.scanned_serial.as_deref().and_then(given);
    if v.inspection.is_empty() && scanned.is_none() {
        return;
    }
    let mut description = String::new();
    if let Some(serial) = scanned {
        description.push_str(&format!("Serial number scanned: {serial}. "));
    }
    let checks: Vec<String> = v
        .inspection
        .iter()
        .map(|i| {
            let state = if i.confirmed {
                "confirmed"
            } else {
                "NOT confirmed"
            };
            format!("{}: {state}", i.what)
        })
        .collect();
    description.push_str(&checks.join("; "));
    if !v.inspection_problems.is_empty() {
        description.push_str(&format!(". Problems: {}", v.inspection_problems.join("; ")));
    }
    let confirmed = v.inspection.iter().filter(|i| i.confirmed).count();
    result_with_id(x, "inspection", |x| {
        x.name("Inspection: serial number, seals and labels");
        x.description(&description);
        x.element("dcc:data", |x| {
            x.quantity("Checks confirmed", |x| {
                x.real(&confirmed.to_string(), r"\one", None);
                x.meta_data(MetaData {
                    name: "Seals intact, labels complete, serial number matches",
                    conformity: Some(if v.inspection_failed { "fail" } else { "pass" }),
                    ..MetaData::default()
                });
            });
        });
    });
}

fn register(x: &mut DccWriter, v: &View) {
    for (n, g) in v.register.iter().enumerate() {
        result_with_id(x, &format!("register-{}", n + 1), |x| {
            x.name(&format!("Port {}: register (meter constant) test", g.port));
            x.description(&format!(
                "Register read from the {} before and after a dosed run: {} kWh and {} kWh; {} LED pulses ({} Wh) over the dose; register minus pulses {} Wh, at most {} Wh allowed.",
                g.read_from,
                g.before_kwh,
                g.after_kwh,
                g.pulses,
                g.pulses_wh,
                g.register_minus_pulses_wh,
                g.pulses_tolerance_wh
            ));
            x.element("dcc:data", |x| {
                x.real_quantity("Register advance", &g.register_value_wh, r"\watt\hour");
                x.real_quantity("Reference energy", &g.reference_value_wh, r"\watt\hour");
                x.quantity("Error of the register", |x| {
                    x.real(
                        &g.error_value,
                        r"\percent",
                        Some(Unc {
                            uncertainty: &g.u_value,
                            coverage_factor: &v.coverage_factor,
                            coverage_probability: &v.coverage_probability,
                        }),
                    );
                    x.meta_data(MetaData {
                        name: "Register agrees with the pulses and, within the MPE, with the reference",
                        declaration: Some(format!("MPE ±{} %; {}", g.mpe_value, g.conformity)),
                        conformity: given(g.dcc_conformity),
                        ..MetaData::default()
                    });
                });
            });
        });
    }
}

fn load_differences(x: &mut DccWriter, v: &View) {
    for (n, d) in v.load_differences.iter().enumerate() {
        result_with_id(x, &format!("load-difference-{}", n + 1), |x| {
            x.name(&format!(
                "Port {}: {} (load on {}) against {} (balanced load){}",
                d.port,
                d.single_phase,
                d.phase,
                d.balanced,
                if d.superseded { ", superseded" } else { "" }
            ));
            x.description(&format!(
                "Error with single-phase load {} %, with balanced load {} %. U of the difference: {}.",
                d.single_phase_error, d.balanced_error, v.load_difference_method
            ));
            x.element("dcc:data", |x| {
                x.quantity(
                    "Difference of the errors, single-phase minus balanced load",
                    |x| {
                        x.real(
                            &d.difference_value,
                            r"\percent",
                            Some(Unc {
                                uncertainty: &d.u_value,
                                coverage_factor: &d.k_value,
                                coverage_probability: &v.coverage_probability,
                            }),
                        );
                        x.meta_data(MetaData {
                            name: "Difference within the limit",
                            declaration: Some(format!(
                                "Limit ±{} %; {}",
                                d.limit_value, d.conformity_label
                            )),
                            conformity: Some(d.conformity),
                            ..MetaData::default()
                        });
                    },
                );
            });
        });
    }
}

/// The declaration of a point decided against an accuracy limit, with the reason when
/// no statement of conformity is made.
fn limit_declaration(v: &View, limit: &str, conformity: &str, outside: Option<&str>) -> String {
    let mut s = format!("{}; limit ±{limit} %.", v.decision.name);
    if conformity.is_empty() {
        s.push_str(&no_statement_reason(v, outside));
    }
    s
}

/// Why a point has no statement of conformity: the air it was measured in, else its U.
fn no_statement_reason(v: &View, outside: Option<&str>) -> String {
    match outside {
        Some(why) => format!(
            " Measured outside the reference conditions ({why}): no statement of conformity."
        ),
        None => format!(
            " Not decidable at this uncertainty: no statement of conformity ({}).",
            v.no_statement_rule
        ),
    }
}

fn sensor(x: &mut DccWriter, v: &View) {
    for (n, s) in v.sensor.iter().enumerate() {
        // A channel without current has no error: it is only checked to read 0 A.
        let error = given(&s.error_value);
        result_with_id(x, &format!("current-{}", n + 1), |x| {
            x.name(&format!("Channel {}, {}", s.channel, s.point));
            x.description(&format!("Readings as sent (A): {}", s.readings));
            x.element("dcc:data", |x| {
                x.quantity("Reference current", |x| {
                    x.real(&s.reference_a, r"\ampere", None);
                    if error.is_none() {
                        x.meta_data(MetaData {
                            name: "A channel without current reads 0 A",
                            conformity: given(s.dcc_conformity),
                            ..MetaData::default()
                        });
                    }
                });
                if let Some(error) = error {
                    x.quantity("Mean error of the readings", |x| {
                        x.real(
                            error,
                            r"\percent",
                            Some(Unc {
                                uncertainty: &s.u_value,
                                coverage_factor: &s.k,
                                coverage_probability: &v.coverage_probability,
                            }),
                        );
                        x.meta_data(MetaData {
                            name: "Conformity with the accuracy limit",
                            norm: Some(v.decision.norm),
                            declaration: Some(limit_declaration(
                                v,
                                &s.limit_value,
                                s.dcc_conformity,
                                s.outside_air.as_deref(),
                            )),
                            conformity: given(s.dcc_conformity),
                        });
                    });
                }
            });
        });
    }
}

fn transitions(x: &mut DccWriter, v: &View) {
    for (n, t) in v.transitions.iter().enumerate() {
        // Not located: no error to state, the decision goes with the telegram count.
        let error = given(&t.error_value);
        result_with_id(x, &format!("transition-{}", n + 1), |x| {
            x.name(&format!(
                "Channel {}, {}: transition point",
                t.channel, t.point
            ));
            let problem = given(&t.problem)
                .map(|p| format!(" {p}."))
                .unwrap_or_default();
            x.description(&format!(
                "The reference current at which the reading flips from {} A, where the sensor's value is {} A; searched over {} telegrams ({} s).{problem}",
                t.readings, t.boundary_a, t.telegrams, t.seconds
            ));
            x.element("dcc:data", |x| {
                x.real_quantity(
                    "Sensor value at the transition (boundary b)",
                    &t.boundary_value,
                    r"\ampere",
                );
                x.quantity("Telegrams taken (one per current set)", |x| {
                    x.real(&t.telegrams.to_string(), r"\one", None);
                    if error.is_none() {
                        x.meta_data(MetaData {
                            name: "Conformity with the accuracy limit",
                            norm: Some(v.decision.norm),
                            declaration: Some(format!(
                                "{}; limit ±{} %. {}.",
                                v.decision.name, t.limit_value, t.conformity
                            )),
                            conformity: given(t.dcc_conformity),
                        });
                    }
                });
                if let Some(error) = error {
                    x.quantity(
                        "Reference current at the transition (μ), with its standard uncertainty",
                        |x| {
                            // A standard uncertainty: k = 1, about 68 %.
                            x.real(
                                &t.mu_value,
                                r"\ampere",
                                Some(Unc {
                                    uncertainty: &t.u_mu_value,
                                    coverage_factor: "1",
                                    coverage_probability: "0.6827",
                                }),
                            );
                        },
                    );
                    x.quantity("Error at the transition, e = (b − μ) / μ", |x| {
                        x.real(
                            error,
                            r"\percent",
                            Some(Unc {
                                uncertainty: &t.u_value,
                                coverage_factor: &t.k,
                                coverage_probability: &v.coverage_probability,
                            }),
                        );
                        x.meta_data(MetaData {
                            name: "Conformity with the accuracy limit",
                            norm: Some(v.decision.norm),
                            declaration: Some(limit_declaration(
                                v,
                                &t.limit_value,
                                t.dcc_conformity,
                                t.outside_air.as_deref(),
                            )),
                            conformity: given(t.dcc_conformity),
                        });
                    });
                }
            });
        });
    }
}

fn telegrams(x: &mut DccWriter, v: &View) {
    let Some(t) = &v.telegrams else { return };
    result_with_id(x, "telegrams", |x| {
        x.name("Telegram stream: period, firmware id, CRC");
        let problems = if t.problems.is_empty() {
            String::new()
        } else {
            format!(" {}", t.problems.join("; "))
        };
        x.description(&format!(
            "Period {}; firmware {} (expected {}); {} CRC failures ({} %).{problems}",
            t.period, t.firmware_seen, t.firmware_certified, t.crc_failures, t.crc_error_percent
        ));
        x.element("dcc:data", |x| {
            x.quantity("Telegrams received with a valid CRC", |x| {
                x.real(&t.telegrams.to_string(), r"\one", None);
                x.meta_data(MetaData {
                    name: "Period, firmware id and CRC error rate as the fixture requires",
                    conformity: Some(if t.passed { "pass" } else { "fail" }),
                    ..MetaData::default()
                });
            });
        });
    });
}
