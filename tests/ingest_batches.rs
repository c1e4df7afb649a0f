//! `casegate ingest` with group commit: the messages of a folder are stored in batches of
//! `[ingest] batch_messages`, each batch in one transaction, and reported one line per message
//! in the order read — the same outcomes as one message at a time, two copies of one message
//! in one batch included.

mod support;

use std::path::Path;

use support::cli::{casegate, json_lines};

fn report(i: usize) -> String {
    format!(
        "From: r{i}@example.net\r\nTo: cert@example.test\r\nSubject: report {i}\r\n\
Message-ID: <r{i}@example.net>\r\n\r\nDetails {i}.\r\n"
    )
}

/// Ingests the same folder into a fresh data dir with `batch_messages`; the outcomes, in order.
fn ingest_with(batch_messages: usize, folder: &Path) -> (Vec<String>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!("[ingest]\nbatch_messages = {batch_messages}\n"),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let out = casegate(dir, &["ingest", "--json", folder.to_str().unwrap()]);
    let outcomes: Vec<String> = json_lines(&out)
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["source"].as_str().unwrap().rsplit('/').next().unwrap(),
                o["outcome"].as_str().unwrap()
            )
        })
        .collect();
    let reports = json_lines(&casegate(dir, &["list", "--kind", "report", "--json"])).len();
    (outcomes, reports)
}

#[test]
fn a_folder_is_stored_in_batches_with_the_outcomes_of_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("mail");
    std::fs::create_dir(&folder).unwrap();
    // 07 is a copy of 02: in the same batch of 8, in another batch of 3.
    for i in 0..10 {
        let raw = if i == 7 { report(2) } else { report(i) };
        std::fs::write(folder.join(format!("{i:02}.eml")), raw).unwrap();
    }
    let (one_at_a_time, reports) = ingest_with(1, &folder);
    assert_eq!(one_at_a_time.len(), 10, "{one_at_a_time:?}");
    assert_eq!(one_at_a_time[7], "07.eml duplicate");
    assert_eq!(
        one_at_a_time
            .iter()
            .filter(|o| o.ends_with(" routed"))
            .count(),
        9
    );
    assert_eq!(reports, 9);
    for batch in [3, 8, 100] {
        assert_eq!(
            ingest_with(batch, &folder),
            (one_at_a_time.clone(), reports),
            "batch_messages = {batch}"
        );
    }
}
