use super::*;
use crate::trace::{ForkPoint, Summary};

fn row(id: &str, parent: Option<&str>) -> RunRow {
    RunRow {
        id: id.into(),
        question: String::new(),
        outcome: Outcome::Unknown,
        summary: Summary {
            forked_from: parent.map(|p| ForkPoint {
                run: p.into(),
                step: 1,
            }),
            ..Default::default()
        },
        offset: 0,
        len: 0,
    }
}

#[test]
fn forks_sort_under_their_parents() {
    let rows = vec![
        row("a", None),
        row("b", None),
        row("fork-of-b", Some("b")),
        row("fork-of-a", Some("a")),
        row("fork-of-fork", Some("fork-of-a")),
        row("orphan", Some("gone")),
    ];
    let d = fork_depths(&rows);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (d[i].0, d[i].1.clone(), i));
    let ids: Vec<&str> = order.iter().map(|&i| rows[i].id.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "fork-of-a", "fork-of-fork", "b", "fork-of-b", "orphan"]
    );
}
