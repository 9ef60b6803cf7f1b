//! Blocking ISO-TP endpoints over a [`CanBus`].

use std::time::{Duration, Instant};

use super::{IsoTpAddress, IsoTpConfig, IsoTpError, Receiver, RxEvent, Transmitter, TxStep};
use crate::bus::{CanBus, CanError};
use crate::frame::{CanFrame, CanId};
use crate::util::sleep_until;

/// The tester side: sends requests and receives responses on the ids given
/// per call, sending flow control for segmented responses.
#[derive(Debug)]
pub struct IsoTpClient<B> {
    bus: B,
    config: IsoTpConfig,
}

impl<B: CanBus> IsoTpClient<B> {
    pub fn new(bus: B, config: IsoTpConfig) -> Self {
        Self { bus, config }
    }

    pub fn config(&self) -> &IsoTpConfig {
        &self.config
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    pub fn into_inner(self) -> B {
        self.bus
    }

    /// Send one message on `address.tx_id`, taking flow control from
    /// `address.rx_id`.
    pub fn send(&mut self, address: IsoTpAddress, message: &[u8]) -> Result<(), IsoTpError> {
        transmit(&mut self.bus, &self.config, address, message)
    }

    /// Receive one message on `address.rx_id`. `None` if no frame of it
    /// arrived within `timeout`; once a first frame has arrived, N_Cr bounds
    /// the wait for each consecutive frame instead.
    pub fn recv(
        &mut self,
        address: IsoTpAddress,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, IsoTpError> {
        let mut channel = [Channel::new(address, &self.config)];
        let received = receive(&mut self.bus, &self.config, &mut channel, timeout)?;
        Ok(received.map(|(_, message)| message))
    }
}

/// A request received by an [`IsoTpServer`]: answer it on `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `rx_id` is the request id it came on, `tx_id` the response id.
    pub address: IsoTpAddress,
    pub data: Vec<u8>,
}

/// The ECU side, for simulated meters: listens on one or more request ids
/// (one per meter port, say) and answers on the paired response ids.
#[derive(Debug)]
pub struct IsoTpServer<B> {
    bus: B,
    config: IsoTpConfig,
    channels: Vec<Channel>,
}

impl<B: CanBus> IsoTpServer<B> {
    pub fn new(bus: B, config: IsoTpConfig) -> Self {
        Self {
            bus,
            config,
            channels: Vec::new(),
        }
    }

    /// Accept requests on `request_id`, answering on `response_id`.
    pub fn listen(mut self, request_id: CanId, response_id: CanId) -> Self {
        let address = IsoTpAddress::new(response_id, request_id);
        self.channels.push(Channel::new(address, &self.config));
        self
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    pub fn into_inner(self) -> B {
        self.bus
    }

    /// The next complete request, or `None` if none started within
    /// `timeout`. Receptions in progress carry over between calls.
    pub fn recv_request(&mut self, timeout: Duration) -> Result<Option<Request>, IsoTpError> {
        let received = receive(&mut self.bus, &self.config, &mut self.channels, timeout)?;
        Ok(received.map(|(index, data)| Request {
            address: self.channels[index].address,
            data,
        }))
    }

    /// Send a response on `address.tx_id`.
    pub fn send_response(&mut self, address: IsoTpAddress, data: &[u8]) -> Result<(), IsoTpError> {
        transmit(&mut self.bus, &self.config, address, data)
    }

    /// Wait up to `timeout` for one request and send what `handler` answers
    /// (nothing for `None`). `true` if a request was handled.
    pub fn serve_once(
        &mut self,
        timeout: Duration,
        mut handler: impl FnMut(&Request) -> Option<Vec<u8>>,
    ) -> Result<bool, IsoTpError> {
        let Some(request) = self.recv_request(timeout)? else {
            return Ok(false);
        };
        if let Some(response) = handler(&request) {
            self.send_response(request.address, &response)?;
        }
        Ok(true)
    }
}

#[derive(Debug)]
struct Channel {
    address: IsoTpAddress,
    rx: Receiver,
    /// N_Cr deadline of a reception in progress.
    deadline: Option<Instant>,
}

impl Channel {
    fn new(address: IsoTpAddress, config: &IsoTpConfig) -> Self {
        Self {
            address,
            rx: Receiver::new(config),
            deadline: None,
        }
    }
}

fn can_frame(id: CanId, payload: &[u8]) -> Result<CanFrame, IsoTpError> {
    CanFrame::new(id, payload).map_err(|e| IsoTpError::Bus(CanError::from(e)))
}

fn transmit<B: CanBus>(
    bus: &mut B,
    config: &IsoTpConfig,
    address: IsoTpAddress,
    message: &[u8],
) -> Result<(), IsoTpError> {
    let mut tx = Transmitter::new(message, config)?;
    let mut last_sent: Option<Instant> = None;
    loop {
        match tx.next_step() {
            TxStep::Send { payload, gap } => {
                if let Some(last) = last_sent.filter(|_| !gap.is_zero()) {
                    sleep_until(last + gap);
                }
                bus.send(&can_frame(address.tx_id, &payload)?)?;
                last_sent = Some(Instant::now());
            }
            TxStep::AwaitFlowControl => await_flow_control(bus, config, address, &mut tx)?,
            TxStep::Done => return Ok(()),
        }
    }
}

fn await_flow_control<B: CanBus>(
    bus: &mut B,
    config: &IsoTpConfig,
    address: IsoTpAddress,
    tx: &mut Transmitter,
) -> Result<(), IsoTpError> {
    let mut deadline = Instant::now() + config.n_bs;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(IsoTpError::FlowControlTimeout {
                timeout: config.n_bs,
                sent: tx.sent(),
                total: tx.total(),
            });
        }
        let Some(frame) = bus.recv(deadline - now)? else {
            continue;
        };
        if frame.id() != address.rx_id || frame.is_remote() {
            continue;
        }
        match tx.on_flow_control(frame.data())? {
            super::FlowOutcome::Continue => return Ok(()),
            super::FlowOutcome::Wait => deadline = Instant::now() + config.n_bs,
        }
    }
}

/// Receive one message on any of `channels`: `(channel index, message)`.
fn receive<B: CanBus>(
    bus: &mut B,
    config: &IsoTpConfig,
    channels: &mut [Channel],
    timeout: Duration,
) -> Result<Option<(usize, Vec<u8>)>, IsoTpError> {
    let idle_deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        for channel in channels.iter_mut() {
            if channel.deadline.is_some_and(|d| now >= d) {
                let (received, total) = channel.rx.progress().unwrap_or_default();
                channel.rx.reset();
                channel.deadline = None;
                return Err(IsoTpError::ConsecutiveFrameTimeout {
                    timeout: config.n_cr,
                    received,
                    total,
                });
            }
        }
        // A message in progress is waited for up to N_Cr, even past `timeout`.
        let until = channels
            .iter()
            .filter_map(|c| c.deadline)
            .min()
            .unwrap_or(idle_deadline);
        if now >= until {
            return Ok(None);
        }
        let Some(frame) = bus.recv(until - now)? else {
            continue;
        };
        if frame.is_remote() {
            continue;
        }
        let Some(index) = channels.iter().position(|c| c.address.rx_id == frame.id()) else {
            continue;
        };
        let channel = &mut channels[index];
        let event = channel.rx.on_frame(frame.data());
        channel.deadline = None;
        match event? {
            RxEvent::Complete(message) => return Ok(Some((index, message))),
            RxEvent::SendFlowControl(fc) => {
                bus.send(&can_frame(
                    channel.address.tx_id,
                    &fc.encode(config.padding),
                )?)?;
                channel.deadline = Some(Instant::now() + config.n_cr);
            }
            RxEvent::Continue => channel.deadline = Some(Instant::now() + config.n_cr),
            RxEvent::Overflow { flow_control, len } => {
                bus.send(&can_frame(
                    channel.address.tx_id,
                    &flow_control.encode(config.padding),
                )?)?;
                return Err(IsoTpError::MessageTooLong {
                    len: len as usize,
                    max: config.max_message_len,
                });
            }
        }
    }
}
