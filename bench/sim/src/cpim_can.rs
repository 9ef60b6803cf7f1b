//! The simulated CPIM1000's CAN node behind a simulated SLCAN adapter on the far end of
//! a pseudo-terminal: it answers UDS ReadDataByIdentifier (over ISO-TP) with its
//! software version, software hash and per-port LRS hashes at the identifiers the
//! fixture profile declares. A silent node (a meter that never answers) takes the
//! adapter's commands but never answers on the bus.

use crate::world::SharedWorld;
use meterbench_can::{
    CanError, CanId, IsoTpConfig, IsoTpError, IsoTpServer, SlcanDevice, UdsServer, hash_bytes,
};
use meterbench_procedure::CanProfile;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the simulated meter's software reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpimSoftware {
    pub software_version: String,
    /// Upper-case hex.
    pub software_hash: String,
    /// Per port, upper-case hex.
    pub lrs_hash: BTreeMap<String, String>,
    /// The meter never answers on CAN.
    pub silent: bool,
}

/// A CAN id as the fixture profile means it (validated there: in range).
pub fn can_id(raw: u32, extended: bool) -> CanId {
    CanId::new(raw, extended).expect("validated by the fixture")
}

/// Where the node's energy registers come from: the simulated world's meters, shown
/// with the display's decimals.
#[derive(Clone)]
pub struct CpimRegisters {
    pub world: SharedWorld,
    /// The rack position of this meter.
    pub position: u32,
    pub decimals: u32,
}

/// Start the node on `stream` (a PTY master). It ends when the far end closes or
/// `stop` is set. With `registers`, it also answers the profile's energy register
/// identifiers with the display text of the port's register at that moment.
pub fn spawn_cpim_can_node<S: Read + Write + Send + 'static>(
    stream: S,
    profile: &CanProfile,
    software: CpimSoftware,
    registers: Option<CpimRegisters>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let register_dids: Vec<(u16, String)> = profile
        .did_energy_register
        .iter()
        .map(|(port, did)| (*did, port.clone()))
        .collect();
    let mut uds = UdsServer::new()
        .with_did(
            profile.did_software_version,
            software.software_version.as_bytes(),
        )
        .with_did(
            profile.did_software_hash,
            hash_bytes(&software.software_hash).unwrap_or_default(),
        );
    for (port, did) in &profile.did_lrs_hash {
        if let Some(h) = software.lrs_hash.get(port) {
            uds.set_did(*did, hash_bytes(h).unwrap_or_default());
        }
    }
    let request = can_id(profile.request_id, profile.extended);
    let response = can_id(profile.response_id, profile.extended);
    let silent = software.silent;
    std::thread::Builder::new()
        .name("sim-cpim-can".into())
        .spawn(move || {
            let adapter = SlcanDevice::new(stream).with_identity("1010", "SIMCAN01");
            let mut server =
                IsoTpServer::new(adapter, IsoTpConfig::default()).listen(request, response);
            while !stop.load(Ordering::SeqCst) {
                let served = server.serve_once(Duration::from_millis(20), |r| {
                    if silent {
                        return None;
                    }
                    // Registers change as energy flows: read at the moment of the request.
                    if let (Some(regs), [0x22, hi, lo]) = (&registers, r.data.as_slice()) {
                        let did = u16::from_be_bytes([*hi, *lo]);
                        if let Some((_, port)) = register_dids.iter().find(|(d, _)| *d == did) {
                            let text = regs.world.lock().unwrap().display_register_kwh(
                                regs.position,
                                port,
                                regs.decimals,
                            )?;
                            let mut answer = vec![0x62, *hi, *lo];
                            answer.extend_from_slice(text.as_bytes());
                            return Some(answer);
                        }
                    }
                    uds.handle(&r.data)
                });
                // The link is gone (far end closed): the node is unplugged. Protocol
                // errors (a broken ISO-TP exchange) leave it listening.
                if let Err(IsoTpError::Bus(CanError::Io { .. })) = served {
                    return;
                }
            }
        })
        .expect("spawn the simulated CPIM1000 CAN node")
}
