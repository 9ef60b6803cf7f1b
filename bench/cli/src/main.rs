use clap::Parser;
use meterbench::cmd::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => meterbench::cmd::run::main(args),
        Command::Retest(args) => meterbench::cmd::retest::main(args),
        Command::Validate(args) => meterbench::cmd::validate::main(args),
        Command::Verify(args) => meterbench::cmd::verify::main(args),
        Command::Keys(args) => meterbench::cmd::keys::main(args),
        Command::Devices(args) => meterbench::cmd::devices::main(args),
        Command::Can(args) => meterbench::cmd::can::main(args),
        Command::Hw(args) => meterbench::cmd::hw::main(args),
        Command::P1(args) => meterbench::cmd::p1::main(args),
        Command::Runs(args) => meterbench::cmd::runs::main(args),
        Command::Audit(args) => meterbench::cmd::audit::main(args),
        Command::Sim(args) => meterbench::cmd::sim::main(args),
        Command::Guard(args) => meterbench::cmd::guard::main(args),
    };
    std::process::exit(code);
}
