fn main() {
    eprintln!("ssm-emulator: not written yet");
    std::process::exit(2)
}
