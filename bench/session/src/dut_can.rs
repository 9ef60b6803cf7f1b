//! The DUT's software identity over CAN: an SLCAN adapter, ISO-TP and UDS
//! ReadDataByIdentifier at the fixture's identifiers.

use meterbench_can::{
    Bitrate, CanId, IdentityDids, IsoTpClient, IsoTpConfig, SlcanBus, read_data_by_identifier,
    read_software_identity,
};
use meterbench_instruments::{DutSoftware, InstrumentError, InstrumentResult, SoftwareReading};
use meterbench_procedure::Fixture;
use std::io::{Read, Write};
use std::time::Duration;

pub struct CanDutSoftware<S: Read + Write + Send> {
    isotp: IsoTpClient<SlcanBus<S>>,
    dids: IdentityDids,
    /// Per port: the energy register's identifier (ASCII display text).
    register_dids: std::collections::BTreeMap<String, u16>,
    timeout: Duration,
    label: String,
}

impl<S: Read + Write + Send> CanDutSoftware<S> {
    /// Open the adapter on `stream` at the fixture's bitrate.
    pub fn open(
        stream: S,
        port_label: &str,
        fixture: &Fixture,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let profile = fixture.can.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "fixture `{}` declares no `can:` profile for the station's dut_can",
                fixture.id
            )
        })?;
        let bitrate = Bitrate::from_bits_per_second(profile.bitrate_kbps * 1000)
            .ok_or_else(|| anyhow::anyhow!("bitrate {} kbit/s", profile.bitrate_kbps))?;
        let bus = SlcanBus::open(stream, bitrate, port_label.to_string())
            .map_err(|e| anyhow::anyhow!("SLCAN adapter on {port_label}: {e}"))?;
        let can_id = |raw| CanId::new(raw, profile.extended).expect("validated by the fixture");
        Ok(CanDutSoftware {
            register_dids: profile.did_energy_register.clone(),
            isotp: IsoTpClient::new(bus, IsoTpConfig::default()),
            dids: IdentityDids {
                request_id: can_id(profile.request_id),
                response_id: can_id(profile.response_id),
                software_version: profile.did_software_version,
                software_hash: profile.did_software_hash,
                lrs_hash: fixture
                    .ports
                    .iter()
                    .filter_map(|p| {
                        profile
                            .did_lrs_hash
                            .get(&p.name)
                            .map(|d| (p.name.clone(), *d))
                    })
                    .collect(),
            },
            timeout,
            label: format!(
                "CAN via SLCAN on {port_label}, ids {}/{}",
                can_id(profile.request_id),
                can_id(profile.response_id)
            ),
        })
    }
}

impl<S: Read + Write + Send> DutSoftware for CanDutSoftware<S> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn read_identity(&mut self) -> InstrumentResult<SoftwareReading> {
        let r = read_software_identity(&mut self.isotp, &self.dids, self.timeout).map_err(|e| {
            InstrumentError::Link {
                instrument: format!("DUT ({})", self.label),
                message: e.to_string(),
            }
        })?;
        Ok(SoftwareReading {
            software_version: r.software_version,
            software_hash: r.software_hash,
            lrs_hash: r.lrs_hash,
        })
    }

    fn read_register_kwh(&mut self, port: &str) -> InstrumentResult<String> {
        let instrument = format!("DUT ({})", self.label);
        let Some(&did) = self.register_dids.get(port) else {
            return Err(InstrumentError::Link {
                instrument,
                message: format!(
                    "the fixture's CAN profile has no energy register identifier for port {port}"
                ),
            });
        };
        let data = read_data_by_identifier(
            &mut self.isotp,
            self.dids.request_id,
            self.dids.response_id,
            did,
            self.timeout,
        )
        .map_err(|e| InstrumentError::Link {
            instrument: instrument.clone(),
            message: e.to_string(),
        })?;
        // The display text, as the LCD shows it; anything else is the meter's error,
        // reported with its bytes.
        match std::str::from_utf8(&data) {
            Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(InstrumentError::Device {
                instrument,
                request: format!(
                    "ReadDataByIdentifier 0x{did:04X} (energy register of port {port})"
                ),
                reply: format!("{data:02X?}"),
            }),
        }
    }
}
