//! Where requests meet the store: a few [`Context`]s (one store connection each), lent to one
//! request at a time on a blocking thread. A `Context` is not `Sync` and store calls block, so
//! no async worker ever touches one; requests beyond the pool wait for a turn instead of
//! opening connections without bound.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::ops::{Context, OpsError};

#[derive(Clone)]
pub struct Desk {
    inner: Arc<DeskInner>,
}

struct DeskInner {
    settings: Settings,
    idle: Mutex<Vec<Context>>,
    turns: Arc<Semaphore>,
}

impl Desk {
    /// At most `connections` (at least 1) contexts, opened when first needed.
    pub fn new(settings: Settings, connections: usize) -> Desk {
        Desk {
            inner: Arc::new(DeskInner {
                settings,
                idle: Mutex::new(Vec::new()),
                turns: Arc::new(Semaphore::new(connections.max(1))),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Runs `f` with a context on a blocking thread. The turn is held until `f` returns, even
    /// when the request that asked is gone (its client hung up), so the pool stays bounded.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Context) -> Result<T, OpsError> + Send + 'static,
    ) -> Result<T, OpsError> {
        let turn = self
            .inner
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| OpsError::Internal("casegate is shutting down".into()))?;
        let inner = self.inner.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let idle = inner.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut cx = match idle {
                Some(cx) => cx,
                None => Context::open(inner.settings.clone())?,
            };
            let result = f(&mut cx);
            // A context whose operation failed in the store may be in any state: only
            // contexts that just succeeded or failed cleanly go back.
            if !matches!(&result, Err(OpsError::Internal(_))) {
                inner
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(cx);
            }
            result
        })
        .await;
        match done {
            Ok(r) => r,
            Err(e) => Err(OpsError::Internal(format!(
                "the request's work failed ({e}); nothing was half-done: each change is one transaction"
            ))),
        }
    }
}
