//! Config parsing: TOML text to a validated `Config`, as `casegate --config FILE` reads it.
//! Never panics; a config that validates gives limits that validate too.
#![no_main]

use casegate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml(text)
        && config.validate().is_ok()
    {
        assert!(config.limits().validate().is_ok());
        let _ = casegate::pipeline::Rules::from_settings(&casegate::config::Settings {
            config,
            data_dir: "casegate-data".into(),
            source: None,
        });
    }
});
