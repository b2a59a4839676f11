//! The synchronous facade's engine room: one current-thread tokio runtime on a thread of its
//! own per server, ended by a stop signal or by dropping the handle.
//!
//! Invariant: when [`RuntimeThread::stop`] or [`RuntimeThread::join`] returns, the thread has
//! exited and the runtime has been dropped, which drops every task it spawned and so closes
//! every socket. The runtime has no worker or blocking threads (nothing here calls
//! `spawn_blocking` or resolves names), so nothing is left behind.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::FeederError;

/// A server running on its own thread; `T` is what its future returns.
#[derive(Debug)]
pub(crate) struct RuntimeThread<T> {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> RuntimeThread<T> {
    /// Starts `serve()` on a new thread named `name`. The future is created inside the runtime,
    /// so it may register sockets with it.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> Result<Self, FeederError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(FeederError::Runtime)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let out = runtime.block_on(async move {
                    tokio::select! {
                        out = serve() => Some(out),
                        _ = stopped => None,
                    }
                });
                drop(runtime);
                out
            })
            .map_err(FeederError::Runtime)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Whether the server's future has returned (or the thread has ended).
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the server's future to return; `None` if it was stopped first.
    pub(crate) fn join(mut self) -> Result<Option<T>, FeederError> {
        self.join_thread()
    }

    /// Ends the server now (every task dropped, every socket closed) and waits for its thread;
    /// what the server returned if it had already finished.
    pub(crate) fn stop(mut self) -> Result<Option<T>, FeederError> {
        self.stop.take();
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<Option<T>, FeederError> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| FeederError::Internal("the server thread panicked".into())),
            None => Ok(None),
        }
    }
}

impl<T> Drop for RuntimeThread<T> {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
