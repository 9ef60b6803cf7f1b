//! Comparing a DUT's software identity with the certified ones (a type-examination
//! certificate lists them).

use meterbench_instruments::SoftwareReading;
use meterbench_procedure::CertifiedIdentity;

/// One difference between what the meter reports and what is certified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityMismatch {
    /// The port it concerns (`None`: the whole meter: version, software hash).
    pub port: Option<String>,
    /// `software version`, `software hash`, `LRS hash of port right`.
    pub what: String,
    pub reported: String,
    pub certified: String,
}

impl std::fmt::Display for IdentityMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {}, the certified one is {}",
            self.what, self.reported, self.certified
        )
    }
}

/// The certified identity of the reported version (hex case ignored in hashes), and
/// every field that differs from it. An uncertified version is itself the mismatch.
pub fn check_identity<'c>(
    reported: &SoftwareReading,
    certified: &'c [CertifiedIdentity],
) -> (Option<&'c CertifiedIdentity>, Vec<IdentityMismatch>) {
    let Some(c) = certified
        .iter()
        .find(|c| c.software_version == reported.software_version)
    else {
        let versions: Vec<&str> = certified
            .iter()
            .map(|c| c.software_version.as_str())
            .collect();
        return (
            None,
            vec![IdentityMismatch {
                port: None,
                what: "software version".into(),
                reported: reported.software_version.clone(),
                certified: versions.join(" or "),
            }],
        );
    };
    let mut out = Vec::new();
    if !c
        .software_hash
        .eq_ignore_ascii_case(&reported.software_hash)
    {
        out.push(IdentityMismatch {
            port: None,
            what: "software hash".into(),
            reported: reported.software_hash.clone(),
            certified: c.software_hash.to_ascii_uppercase(),
        });
    }
    for (port, h) in &reported.lrs_hash {
        if !c.lrs_hash.eq_ignore_ascii_case(h) {
            out.push(IdentityMismatch {
                port: Some(port.clone()),
                what: format!("LRS hash of port {port}"),
                reported: h.clone(),
                certified: c.lrs_hash.to_ascii_uppercase(),
            });
        }
    }
    (Some(c), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certified() -> Vec<CertifiedIdentity> {
        vec![CertifiedIdentity {
            software_version: "1.8.4".into(),
            software_hash: "5D2C8A17".into(),
            lrs_hash: "A3F09C4E".into(),
        }]
    }

    fn reading(version: &str, right_lrs: &str) -> SoftwareReading {
        SoftwareReading {
            software_version: version.into(),
            software_hash: "5d2c8a17".into(),
            lrs_hash: vec![
                ("left".into(), "A3F09C4E".into()),
                ("right".into(), right_lrs.into()),
            ],
        }
    }

    #[test]
    fn certified_identity_has_no_mismatch() {
        let c = certified();
        let (found, m) = check_identity(&reading("1.8.4", "a3f09c4e"), &c);
        assert_eq!(found, Some(&c[0]));
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn a_wrong_lrs_hash_names_its_port_and_both_hashes() {
        let (_, m) = check_identity(&reading("1.8.4", "A3F09C4F"), &certified());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].port.as_deref(), Some("right"));
        assert_eq!(
            m[0].to_string(),
            "LRS hash of port right is A3F09C4F, the certified one is A3F09C4E"
        );
    }

    #[test]
    fn an_uncertified_version_is_the_mismatch() {
        let c = certified();
        let (found, m) = check_identity(&reading("1.9.0", "A3F09C4E"), &c);
        assert!(found.is_none());
        assert_eq!(
            m[0].to_string(),
            "software version is 1.9.0, the certified one is 1.8.4"
        );
    }
}
