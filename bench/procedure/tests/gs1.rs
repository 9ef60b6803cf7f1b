//! GS1 codes as scanners send them: any bytes are decoded or refused, never a panic;
//! a serial found is one a record and an XML document can hold; a serial put into a
//! well-formed element string comes back out.

use meterbench_procedure::gs1::{GS, serial_of};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_input_is_decoded_or_refused(text in "(\\]d2)?[0-9\\x1d A-Za-z\\-]{0,60}") {
        if let Ok(serial) = serial_of(&text) {
            prop_assert!(!serial.is_empty() && serial.chars().count() <= 20);
            prop_assert!(serial.chars().all(|c| c.is_ascii_graphic()), "{serial:?}");
        }
    }

    #[test]
    fn a_serial_in_a_code_comes_back(
        gtin in "[0-9]{14}",
        serial in "[A-Za-z0-9\\-]{1,20}",
        expiry in "[0-9]{6}",
        serial_first in any::<bool>(),
    ) {
        let code = if serial_first {
            format!("]d221{serial}{GS}01{gtin}17{expiry}")
        } else {
            format!("01{gtin}17{expiry}21{serial}")
        };
        prop_assert_eq!(serial_of(&code), Ok(serial));
    }
}
