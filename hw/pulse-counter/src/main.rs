//! meterbench pulse counter firmware (RP2040).
//!
//! - 8 PIO state machines timestamp both edges of 8 photodiode channels against
//!   one timebase of `clk_sys / 2` = 62.5 MHz (program and cycle accounting in
//!   `pulse_counter_timing::capture`).
//! - Core 1 ([`capture`]) drains the PIO FIFOs, latches the reference counter
//!   (PWM slice 5) and extends everything to 64 bits.
//! - Core 0 runs embassy: the protocol engine (`pulse_counter_timing::engine`),
//!   USB CDC-ACM, heartbeats and the status LED.
//!
//! All timing decisions live in the `pulse-counter-timing` crate, which is tested
//! on the host; this file only wires hardware to it.
#![no_std]
#![no_main]

mod board;
mod capture;

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embassy_executor::Spawner;
use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::gpio::{Level, Output, Pull};
use embassy_rp::multicore::{Stack, spawn_core1};
use embassy_rp::peripherals::{PIO0, PIO1, USB};
use embassy_rp::pio::{Config as PioConfig, FifoJoin, Pio, ShiftConfig, ShiftDirection};
use embassy_rp::pwm::{Config as PwmConfig, InputMode, Pwm};
use embassy_rp::usb::Driver;
use embassy_rp::{bind_interrupts, pio, usb};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Instant, Ticker, Timer};
use embassy_usb::UsbDevice;
use embassy_usb::class::cdc_acm::{CdcAcmClass, ControlChanged, Receiver, Sender, State};
use meterbench_counter_protocol::{FrameDecoder, HEARTBEAT_PERIOD_MS, HostMessage, MAX_FRAME_LEN};
use pulse_counter_timing::capture::edge_program;
use pulse_counter_timing::clock::{TickClock, ticks_from_us};
use pulse_counter_timing::encode::{PacketPacker, USB_PACKET_LEN, encode_message};
use pulse_counter_timing::engine::{Action, DeviceInfo, Engine};
use pulse_counter_timing::ring::unpack_edge;
use static_cell::StaticCell;

use crate::capture::{CaptureHw, RAW};

bind_interrupts!(struct Irqs {
    USBCTRL_IRQ => usb::InterruptHandler<USB>;
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    PIO1_IRQ_0 => pio::InterruptHandler<PIO1>;
});

/// Edges the device can hold while the host is slow (PROTOCOL.md §10 asks for
/// ≥ 256): 512 × 34 bytes on the wire ≈ 35 ms of a saturated link.
const QUEUE: usize = 512;
/// QSPI flash of the Raspberry Pi Pico.
const FLASH_SIZE: usize = 2 * 1024 * 1024;

static ENGINE: Mutex<CriticalSectionRawMutex, RefCell<Engine<QUEUE>>> =
    Mutex::new(RefCell::new(Engine::new(DeviceInfo::UNKNOWN, false)));
/// Something was queued for the host.
static TX_WAKE: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// The host opened the port (DTR rose): start a session with a lone 0x00.
static SESSION: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// Arm/Disarm in progress: the ingest task leaves [`RAW`] alone meanwhile.
static COMMAND_BUSY: AtomicBool = AtomicBool::new(false);
/// Epoch of the arming whose transitions the engine accepts.
static CURRENT_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Value of [`capture::LOST`] already reported to the engine.
static LOST_SEEN: AtomicU32 = AtomicU32::new(0);

fn with_engine<R>(f: impl FnOnce(&mut Engine<QUEUE>) -> R) -> R {
    ENGINE.lock(|e| f(&mut e.borrow_mut()))
}

fn now_us() -> u64 {
    Instant::now().as_micros()
}

fn clock() -> TickClock {
    let mut c = TickClock::new();
    c.restart(capture::start_us());
    c
}

/// Ticks now (Heartbeat, Pong, Disarm).
fn now_ticks() -> u64 {
    clock().ticks_at(now_us())
}

/// Every transition before this tick has been put into [`RAW`] by core 1 (read
/// it before draining [`RAW`]). The 2 µs margin covers the PIO push latency and
/// the timer's 1 µs resolution.
fn watermark_ticks() -> u64 {
    let w32 = capture::WATERMARK_US.load(Ordering::Acquire);
    let now = now_us();
    let w = now - u64::from((now as u32).wrapping_sub(w32));
    clock().ticks_at(w).saturating_sub(ticks_from_us(2))
}

/// Moves captured transitions of the current arming into the engine.
fn deliver(e: &mut Engine<QUEUE>) {
    let epoch = CURRENT_EPOCH.load(Ordering::Acquire);
    while let Some(words) = RAW.pop() {
        let (tag, edge) = unpack_edge(words);
        if tag == epoch {
            e.edge(&edge);
        }
    }
    let lost = capture::LOST.load(Ordering::Acquire);
    let seen = LOST_SEEN.load(Ordering::Relaxed);
    for _ in 0..lost.wrapping_sub(seen).min(1_000) {
        e.record_drop();
    }
    LOST_SEEN.store(lost, Ordering::Relaxed);
}

#[embassy_executor::main(
    executor = "embassy_rp::executor::Executor",
    entry = "cortex_m_rt::entry"
)]
async fn main(spawner: Spawner) {
    let clock_source = board::ClockSource::from_strap();
    let mut config = embassy_rp::config::Config::default();
    config.clocks = clock_source.clock_config();
    let p = embassy_rp::init(config);

    // Serial number: the flash chip's 64-bit unique id in hex (16 characters).
    // Read before core 1 starts: flash commands stop execute-in-place.
    static SERIAL: StaticCell<[u8; 16]> = StaticCell::new();
    let serial = SERIAL.init([b'0'; 16]);
    let mut flash = Flash::<_, Blocking, FLASH_SIZE>::new_blocking(p.FLASH);
    let mut uid = [0u8; 8];
    if flash.blocking_unique_id(&mut uid).is_ok() {
        for (i, b) in uid.iter().enumerate() {
            serial[2 * i] = hex(b >> 4);
            serial[2 * i + 1] = hex(b & 0xF);
        }
    }
    let serial: &'static [u8; 16] = serial;
    with_engine(|e| {
        e.set_info(DeviceInfo {
            firmware_version: FIRMWARE_VERSION,
            serial_number: *serial,
            reference_input: true,
            external_clock_capable: true,
        });
        e.set_external_clock(clock_source.is_external());
    });

    // PIO: the same program in both blocks, one state machine per channel.
    let prog = edge_program();
    let mut pio0 = Pio::new(p.PIO0, Irqs);
    let mut pio1 = Pio::new(p.PIO1, Irqs);
    let loaded0 = pio0.common.load_program(&prog.program);
    let loaded1 = pio1.common.load_program(&prog.program);
    assert_eq!(loaded0.origin, loaded1.origin);
    let origin = loaded0.origin;
    macro_rules! channel {
        ($pio:ident, $loaded:ident, $sm:ident, $pin:expr) => {{
            let mut pin = $pio.common.make_pio_pin($pin);
            // An unconnected input must not count: the comparator drives the pin.
            pin.set_pull(Pull::Down);
            let mut cfg = PioConfig::default();
            cfg.use_program(&$loaded, &[]);
            cfg.set_jmp_pin(&pin);
            cfg.fifo_join = FifoJoin::RxOnly;
            cfg.shift_in = ShiftConfig {
                threshold: 32,
                direction: ShiftDirection::Left,
                auto_fill: false,
            };
            $pio.$sm.set_config(&cfg);
        }};
    }
    channel!(pio0, loaded0, sm0, p.PIN_2);
    channel!(pio0, loaded0, sm1, p.PIN_3);
    channel!(pio0, loaded0, sm2, p.PIN_4);
    channel!(pio0, loaded0, sm3, p.PIN_5);
    channel!(pio1, loaded1, sm0, p.PIN_6);
    channel!(pio1, loaded1, sm1, p.PIN_7);
    channel!(pio1, loaded1, sm2, p.PIN_8);
    channel!(pio1, loaded1, sm3, p.PIN_9);

    // Reference input: PWM slice 5 counts rising edges on GPIO 11 (B input).
    let mut pwm_cfg = PwmConfig::default();
    pwm_cfg.top = u16::MAX;
    let ref_pwm = Pwm::new_input(
        p.PWM_SLICE5,
        p.PIN_11,
        Pull::Down,
        InputMode::RisingEdge,
        pwm_cfg,
    );

    let hw = CaptureHw {
        _pio0: pio0,
        _pio1: pio1,
        origin,
        entry_high: prog.entry_high,
        entry_low: prog.entry_low,
        ref_pwm,
        sync: Output::new(p.PIN_22, Level::Low),
    };
    static CORE1_STACK: StaticCell<Stack<4096>> = StaticCell::new();
    spawn_core1(p.CORE1, CORE1_STACK.init(Stack::new()), move || {
        capture::run(hw)
    });

    // USB CDC-ACM.
    let driver = Driver::new(p.USB, Irqs);
    let mut usb_config = embassy_usb::Config::new(USB_VID, USB_PID);
    usb_config.manufacturer = Some("meterbench");
    usb_config.product = Some("meterbench pulse counter");
    usb_config.serial_number = core::str::from_utf8(serial).ok();
    usb_config.max_power = 100;
    usb_config.max_packet_size_0 = 64;
    static CONFIG_DESC: StaticCell<[u8; 256]> = StaticCell::new();
    static BOS_DESC: StaticCell<[u8; 256]> = StaticCell::new();
    static CONTROL_BUF: StaticCell<[u8; 64]> = StaticCell::new();
    static CDC_STATE: StaticCell<State> = StaticCell::new();
    let mut builder = embassy_usb::Builder::new(
        driver,
        usb_config,
        CONFIG_DESC.init([0; 256]),
        BOS_DESC.init([0; 256]),
        &mut [],
        CONTROL_BUF.init([0; 64]),
    );
    let class = CdcAcmClass::new(
        &mut builder,
        CDC_STATE.init(State::new()),
        USB_PACKET_LEN as u16,
    );
    let (tx, rx, ctl) = class.split_with_control();
    let usb = builder.build();

    spawner.spawn(usb_task(usb).unwrap());
    spawner.spawn(tx_task(tx).unwrap());
    spawner.spawn(rx_task(rx).unwrap());
    spawner.spawn(control_task(ctl).unwrap());
    spawner.spawn(ingest_task().unwrap());
    spawner.spawn(heartbeat_task().unwrap());
    spawner.spawn(led_task(Output::new(p.PIN_25, Level::Low)).unwrap());
}

/// pid.codes test VID/PID; replace with an allocated PID before release. The
/// host finds the counter by its product string and serial number.
const USB_VID: u16 = 0x1209;
const USB_PID: u16 = 0x0001;

const FIRMWARE_VERSION: (u8, u8, u8) = (
    parse_u8(env!("CARGO_PKG_VERSION_MAJOR")),
    parse_u8(env!("CARGO_PKG_VERSION_MINOR")),
    parse_u8(env!("CARGO_PKG_VERSION_PATCH")),
);

const fn parse_u8(s: &str) -> u8 {
    let b = s.as_bytes();
    let mut v: u8 = 0;
    let mut i = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0');
        i += 1;
    }
    v
}

const fn hex(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'A' + n - 10 }
}

type UsbDriver = Driver<'static, USB>;

#[embassy_executor::task]
async fn usb_task(mut usb: UsbDevice<'static, UsbDriver>) -> ! {
    usb.run().await
}

/// Writes the engine's messages as frames packed into 64-byte packets.
#[embassy_executor::task]
async fn tx_task(mut tx: Sender<'static, UsbDriver>) -> ! {
    let mut packer = PacketPacker::<USB_PACKET_LEN>::new();
    let mut frame = [0u8; MAX_FRAME_LEN];
    loop {
        tx.wait_connection().await;
        packer.clear();
        // Session start after reset or reconnection: a lone delimiter flushes
        // whatever half frame the host's decoder holds.
        let mut session = true;
        'connected: loop {
            if core::mem::take(&mut session) || SESSION.try_take().is_some() {
                packer.fill(&[0]);
            }
            while let Some(msg) =
                with_engine(|e| e.next_message(|| (now_ticks(), capture::ref_now())))
            {
                let n = encode_message(&msg, &mut frame);
                let mut rest = &frame[..n];
                while !rest.is_empty() {
                    let k = packer.fill(rest);
                    rest = &rest[k..];
                    if let Some(packet) = packer.full_packet()
                        && tx.write_packet(packet).await.is_err()
                    {
                        break 'connected;
                    }
                }
            }
            if let Some(packet) = packer.flush()
                && tx.write_packet(packet).await.is_err()
            {
                break 'connected;
            }
            TX_WAKE.wait().await;
        }
    }
}

/// Decodes host frames and carries out the commands.
#[embassy_executor::task]
async fn rx_task(mut rx: Receiver<'static, UsbDriver>) -> ! {
    let mut buf = [0u8; USB_PACKET_LEN];
    loop {
        rx.wait_connection().await;
        // Host messages are at most 8 + 4 bytes decoded (PROTOCOL.md §2).
        let mut decoder = FrameDecoder::<HostMessage, 16>::new();
        while let Ok(n) = rx.read_packet(&mut buf).await {
            for &b in &buf[..n] {
                if let Some(frame) = decoder.push(b) {
                    let t = now_ticks();
                    let action = with_engine(|e| e.handle(frame, t));
                    perform(action).await;
                    TX_WAKE.signal(());
                }
            }
        }
    }
}

async fn perform(action: Action) {
    match action {
        Action::Done => {}
        Action::Arm {
            channel_mask,
            low_entry_mask,
        } => {
            COMMAND_BUSY.store(true, Ordering::Release);
            capture::arm(low_entry_mask).await;
            let epoch = capture::EPOCH.load(Ordering::Acquire);
            with_engine(|e| {
                CURRENT_EPOCH.store(epoch, Ordering::Release);
                LOST_SEEN.store(capture::LOST.load(Ordering::Acquire), Ordering::Relaxed);
                e.armed(channel_mask);
            });
            COMMAND_BUSY.store(false, Ordering::Release);
        }
        Action::Disarm => {
            COMMAND_BUSY.store(true, Ordering::Release);
            let t_stop = now_ticks();
            capture::disarm().await;
            with_engine(|e| {
                deliver(e);
                e.disarmed(t_stop);
            });
            COMMAND_BUSY.store(false, Ordering::Release);
        }
        Action::Ping { token, t_ping } => {
            // Two completed passes of core 1 after this point have delivered every
            // transition pushed before the Ping was decoded.
            let p0 = capture::PASSES.load(Ordering::Acquire);
            while capture::PASSES.load(Ordering::Acquire).wrapping_sub(p0) < 2 {
                Timer::after_micros(10).await;
            }
            loop {
                let w = watermark_ticks();
                let done = with_engine(|e| {
                    deliver(e);
                    e.flush(t_ping, w)
                });
                if done {
                    break;
                }
                TX_WAKE.signal(());
                Timer::after_micros(100).await;
            }
            with_engine(|e| e.pong(token, t_ping));
        }
    }
}

/// Notices the host opening the port (DTR rising).
#[embassy_executor::task]
async fn control_task(ctl: ControlChanged<'static>) -> ! {
    let mut dtr = false;
    loop {
        ctl.control_changed().await;
        let now = ctl.dtr();
        if now && !dtr {
            SESSION.signal(());
            TX_WAKE.signal(());
        }
        dtr = now;
    }
}

/// Feeds captured transitions to the engine and runs its time-driven decisions.
#[embassy_executor::task]
async fn ingest_task() -> ! {
    loop {
        // Every 200 µs: deliver what core 1 captured, then run the time-driven
        // decisions (glitch filters, stuck inputs). RAW holds 512 transitions.
        Timer::after_micros(200).await;
        if COMMAND_BUSY.load(Ordering::Acquire) {
            continue;
        }
        let w = watermark_ticks();
        let before = with_engine(|e| {
            let idle = e.is_idle();
            deliver(e);
            e.poll(w);
            idle && !e.is_idle()
        });
        if before {
            TX_WAKE.signal(());
        }
    }
}

#[embassy_executor::task]
async fn heartbeat_task() -> ! {
    let mut ticker = Ticker::every(embassy_time::Duration::from_millis(u64::from(
        HEARTBEAT_PERIOD_MS,
    )));
    loop {
        ticker.next().await;
        with_engine(|e| e.request_heartbeat());
        TX_WAKE.signal(());
    }
}

/// Idle: short blink every 2 s; armed: 2 Hz blink; events lost: solid.
#[embassy_executor::task]
async fn led_task(mut led: Output<'static>) -> ! {
    let mut ticker = Ticker::every(embassy_time::Duration::from_millis(10));
    loop {
        ticker.next().await;
        let on = with_engine(|e| e.indicator()).led_on(Instant::now().as_millis());
        led.set_level(if on { Level::High } else { Level::Low });
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Solid LED, then stop: the host sees the link go silent and ends the run
    // as an ERROR; a reset (USB replug) restarts the counter.
    cortex_m::interrupt::disable();
    embassy_rp::pac::SIO
        .gpio_oe(0)
        .value_set()
        .write_value(1 << board::LED_GPIO);
    embassy_rp::pac::SIO
        .gpio_out(0)
        .value_set()
        .write_value(1 << board::LED_GPIO);
    loop {
        cortex_m::asm::nop();
    }
}
