//! Smoke run of the Python jail.
use sandbox::{start, Language, Limits};
fn main() {
    let src = std::env::args().nth(1).unwrap_or_else(|| "def strategy(b):\n    return 'up'\n".into());
    let mut l = Limits::default();
    l.python.static_check = false;
    let t = std::time::Instant::now();
    match start(Language::Python, &src, "strategy", &l) {
        Ok(mut s) => {
            println!("started in {:?}", t.elapsed());
            for _ in 0..3 {
                println!("{:?}", s.call(&[serde_json::json!([[0, 2], [2, 4]])]));
            }
            println!("output: {:?} usage {:?}", s.output(), s.usage());
        }
        Err(e) => println!("start error: {e}"),
    }
}
