//! Board facts: pin numbers (see README "Pin assignments") and the clock set-up.

use embassy_rp::clocks::{ClockConfig, PllConfig};
use embassy_rp::pac;

// Channels 0..7 are GPIO 2..9 and the reference input is GPIO 11 (PWM slice 5,
// input B); main.rs names those pins, as embassy's typed peripherals require.
/// Strap input, read once before the clocks start: pulled up = 12 MHz crystal on
/// XIN, tied to ground (CLK jumper in EXT) = external 10 MHz reference on XIN.
pub const CLKSEL_GPIO: usize = 21;
/// Status LED (the Pico's on-board LED).
pub const LED_GPIO: u8 = 25;

/// Clock source of the timebase, decided by the CLKSEL strap at reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    /// The board's 12 MHz crystal.
    Crystal12MHz,
    /// An external 10 MHz reference driving XIN.
    External10MHz,
}

impl ClockSource {
    /// Reads the CLKSEL strap. Runs before `embassy_rp::init`, on the ring
    /// oscillator, with raw register access because no driver exists yet.
    pub fn from_strap() -> Self {
        pac::RESETS.reset().modify(|w| {
            w.set_io_bank0(false);
            w.set_pads_bank0(false);
        });
        while !(pac::RESETS.reset_done().read().io_bank0()
            && pac::RESETS.reset_done().read().pads_bank0())
        {}
        pac::PADS_BANK0.gpio(CLKSEL_GPIO).write(|w| {
            w.set_ie(true);
            w.set_pue(true);
            w.set_pde(false);
            w.set_schmitt(true);
        });
        // FUNCSEL 5 = SIO: the pad is an input of the processors.
        pac::IO_BANK0
            .gpio(CLKSEL_GPIO)
            .ctrl()
            .write(|w| w.set_funcsel(5));
        // Let the ~50 kΩ pull-up charge the strap net (ROSC ≤ 12 MHz here: ≥ 80 µs).
        cortex_m::asm::delay(1_000);
        let high = pac::SIO.gpio_in(0).read() & (1 << CLKSEL_GPIO) != 0;
        if high {
            Self::Crystal12MHz
        } else {
            Self::External10MHz
        }
    }

    /// The timebase is derived from the external reference.
    pub const fn is_external(self) -> bool {
        matches!(self, Self::External10MHz)
    }

    /// 125 MHz system clock and 48 MHz USB clock from whichever source is on
    /// XIN. The RP2040's PLLs only take their reference from XIN, which is why
    /// the external reference enters there and not through a GPIN pin.
    pub fn clock_config(self) -> ClockConfig {
        match self {
            Self::Crystal12MHz => ClockConfig::crystal(12_000_000),
            Self::External10MHz => {
                let mut c = ClockConfig::crystal(10_000_000);
                if let Some(x) = c.xosc.as_mut() {
                    // 10 MHz × 150 = 1500 MHz VCO / (6 × 2) = 125 MHz.
                    x.sys_pll = Some(PllConfig {
                        refdiv: 1,
                        fbdiv: 150,
                        post_div1: 6,
                        post_div2: 2,
                    });
                    // 10 MHz × 120 = 1200 MHz VCO / (5 × 5) = 48 MHz.
                    x.usb_pll = Some(PllConfig {
                        refdiv: 1,
                        fbdiv: 120,
                        post_div1: 5,
                        post_div2: 5,
                    });
                }
                c
            }
        }
    }
}
