use clap::Parser;
use meterbench::cmd::{Cli, Command};
use meterbench_session::paths::BenchHome;

fn main() {
    let cli = Cli::parse();
    let home = BenchHome::locate(cli.home.as_deref());
    let code = match cli.command {
        Command::Init(args) => meterbench::cmd::init::main(args, &home),
        Command::Run(args) => meterbench::cmd::run::main(args, &home),
        Command::Retest(args) => meterbench::cmd::retest::main(args, &home),
        Command::Validate(args) => meterbench::cmd::validate::main(args, &home),
        Command::Verify(args) => meterbench::cmd::verify::main(args, &home),
        Command::Keys(args) => meterbench::cmd::keys::main(args, &home),
        Command::Devices(args) => meterbench::cmd::devices::main(args),
        Command::Can(args) => meterbench::cmd::can::main(args, &home),
        Command::Hw(args) => meterbench::cmd::hw::main(args),
        Command::P1(args) => meterbench::cmd::p1::main(args),
        Command::Panel(args) => meterbench::cmd::panel::main(args, &home),
        Command::Runs(args) => meterbench::cmd::runs::main(args, &home),
        Command::Audit(args) => meterbench::cmd::audit::main(args, &home),
        Command::Sim(args) => meterbench::cmd::sim::main(args, &home),
        Command::Guard(args) => meterbench::cmd::guard::main(args),
    };
    std::process::exit(code);
}
