//! The whole pipeline (parse, open, route, verdict, store) on a temporary store: one case
//! (`VU#409117`) whose vendor contact is the participant, the coordinator's key and the
//! participant's certificate made once. Whatever the bytes, `process` stores the message
//! (routed, triage, quarantine or duplicate) and never fails: a `PipelineError` means the
//! store refused a write, which an in-memory store never should.
#![no_main]

use std::sync::{LazyLock, Mutex};

use casegate::pipeline::Pipeline;
use casegate::store::MessageSource;
use libfuzzer_sys::fuzz_target;

/// Messages a store takes before a fresh one replaces it (keeps memory flat over hours).
const STORE_MESSAGES: u32 = 5_000;

struct State {
    pipeline: Pipeline,
    processed: u32,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    Mutex::new(State {
        pipeline: casegate_fuzz::pipeline(),
        processed: 0,
    })
});

fuzz_target!(|raw: &[u8]| {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if state.processed >= STORE_MESSAGES {
        state.pipeline = casegate_fuzz::pipeline();
        state.processed = 0;
    }
    state.processed += 1;
    let outcome = state
        .pipeline
        .process(raw, MessageSource::File("fuzz.eml".into()))
        .expect("the pipeline stores every message");
    // For triage: `CASEGATE_FUZZ_SHOW=1 cargo fuzz run pipeline FILE` prints what became of it.
    if std::env::var_os("CASEGATE_FUZZ_SHOW").is_some() {
        eprintln!("{outcome:?}");
    }
    assert!(
        ["routed", "triage", "quarantine", "duplicate"].contains(&outcome.outcome),
        "{outcome:?}"
    );
    if outcome.outcome == "quarantine" {
        assert!(!outcome.reason.is_empty(), "quarantined without a reason");
    }
});
