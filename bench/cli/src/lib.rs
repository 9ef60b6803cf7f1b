//! The `meterbench` command: a thin layer that binds a station's roles to drivers,
//! runs procedures and prints what happened.

pub mod bind;
pub mod cmd;
pub mod console;
pub mod dut_can;
pub mod issue;
pub mod sim_technician;
