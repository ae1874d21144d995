fn main() {
    eprintln!("sf-emulator: not written yet");
    std::process::exit(2)
}
