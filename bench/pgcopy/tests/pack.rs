//! The pack reader against a pack a PostgreSQL server built (tests/data/run.pack) and the
//! same run's point rows as the server printed them (tests/data/run.pack.txt).
use meterbench_pgcopy::pack::points;

#[test]
fn a_pack_the_server_built_reads_as_its_rows() {
    let pack = include_bytes!("data/run.pack");
    let rows = include_str!("data/run.pack.txt");
    let read: Vec<_> = points(pack).map(Result::unwrap).collect();
    let want: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(read.len(), 22);
    assert_eq!(read.len(), want.len());
    for (p, w) in read.iter().zip(&want) {
        let accepted = match w[5] {
            "t" => true,
            "f" => false,
            other => panic!("{other} for a bool"),
        };
        assert_eq!(
            (
                p.step_index,
                std::str::from_utf8(p.step_name).unwrap(),
                std::str::from_utf8(p.port).unwrap(),
                p.mpe_percent.to_bits(),
                p.error_percent.to_bits(),
                p.accepted,
            ),
            (
                w[0].parse().unwrap(),
                w[1],
                w[2],
                w[3].parse::<f64>().unwrap().to_bits(),
                w[4].parse::<f64>().unwrap().to_bits(),
                accepted,
            )
        );
    }
}
