//! CI replays the fuzz corpora (bench/fuzz/corpus/slcan_line, isotp_uds) the way the
//! fuzz targets do: every input handled without a panic, and the seeds mean what they
//! say.
use meterbench_can::IsoTpConfig;
use meterbench_can::isotp::{Receiver, RxEvent};
use meterbench_can::slcan::{LineReader, Token, parse_command, parse_line};
use std::path::Path;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn slcan_corpus_replays() {
    let inputs = corpus("slcan_line");
    assert!(inputs.len() >= 3);
    let mut frames = 0;
    for data in inputs {
        let mut reader = LineReader::new();
        for b in data {
            if let Some(Token::Line(line)) = reader.push(b) {
                frames += usize::from(parse_line(&line).is_ok());
                let _ = parse_command(&line);
            }
        }
    }
    assert!(frames >= 2, "the seeds hold frames");
}

#[test]
fn isotp_corpus_replays() {
    let inputs = corpus("isotp_uds");
    assert!(inputs.len() >= 3);
    let mut complete = 0;
    for data in inputs {
        let mut receiver = Receiver::new(&IsoTpConfig::default());
        let mut rest = data.as_slice();
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len % 9).min(tail.len());
            if let Ok(RxEvent::Complete(_)) = receiver.on_frame(&tail[..n]) {
                complete += 1;
            }
            rest = &tail[n..];
        }
    }
    assert!(complete >= 2, "the seeds hold whole messages");
}
