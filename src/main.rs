fn main() {
    println!("agtmux");
}
